"""The classic shape: five separate Spark jobs, as five Glue jobs would run, each rereading its inputs.

    python -m benchmarks.five_jobs JOB LAKE_ROOT OUT_ROOT        JOB: one of JOBS, in that order

Each job is its own process with its own SparkSession: it reads the raw JSON it needs and the previous jobs'
Parquet output, applies the baseline's rules (`plain_spark`, the same functions) and writes one table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pyspark.sql import SparkSession

from benchmarks import plain_spark as p
from stedi_assets import tables as t


def customer_trusted(spark: SparkSession, lake: str, out: str) -> None:
    current = p.current_records(p.read_customers(spark, lake))
    p.write_table(p.customer_trusted(current, p.as_of_now()), out, t.CUSTOMER_TRUSTED)


def accelerometer_trusted(spark: SparkSession, lake: str, out: str) -> None:
    trusted = p.read_table(spark, out, t.CUSTOMER_TRUSTED)
    p.write_table(p.accelerometer_trusted(p.read_accelerometer(spark, lake), trusted), out, t.ACCELEROMETER_TRUSTED)


def customer_curated(spark: SparkSession, lake: str, out: str) -> None:
    trusted = p.read_table(spark, out, t.CUSTOMER_TRUSTED)
    readings = p.read_table(spark, out, t.ACCELEROMETER_TRUSTED)
    p.write_table(p.customer_curated(trusted, readings), out, t.CUSTOMER_CURATED)


def step_trainer_trusted(spark: SparkSession, lake: str, out: str) -> None:
    # Who owns a device comes from every customer's current record, consenting or not: the raw feed again.
    owners = p.device_owners(p.current_records(p.read_customers(spark, lake)))
    curated = p.read_table(spark, out, t.CUSTOMER_CURATED)
    p.write_table(
        p.step_trainer_trusted(p.read_step_trainer(spark, lake), owners, curated), out, t.STEP_TRAINER_TRUSTED
    )


def machine_learning_curated(spark: SparkSession, lake: str, out: str) -> None:
    curated = p.read_table(spark, out, t.CUSTOMER_CURATED)
    table = p.machine_learning_curated(
        p.read_table(spark, out, t.STEP_TRAINER_TRUSTED),
        p.read_table(spark, out, t.ACCELEROMETER_TRUSTED),
        curated,
        p.subjects(spark, curated),
    )
    p.write_table(table, out, t.MACHINE_LEARNING_CURATED)


JOBS: dict[str, Callable[[SparkSession, str, str], None]] = {
    job.__name__: job
    for job in (
        customer_trusted,
        accelerometer_trusted,
        customer_curated,
        step_trainer_trusted,
        machine_learning_curated,
    )
}


def main(job: str, lake: str, out: str) -> None:
    spark = p.session(f"stedi-job-{job}")
    JOBS[job](spark, lake, out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
