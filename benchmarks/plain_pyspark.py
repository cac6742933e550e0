"""The same logic as the asset graph as one plain PySpark script: no Dagster, no checks, no row accounting.

    python -m benchmarks.plain_pyspark LAKE_ROOT OUT_ROOT [since|flag]

It calls the same pure transforms and writes the same tables, so that timing it next to a materialization
shows what the orchestration, the contract checks and the accounting cost.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame, SparkSession

from stedi_assets import tables as t
from stedi_assets.assets.landing_files import LocalFiles, probe_files, read_lines
from stedi_assets.resources.spark import spark_config
from stedi_assets.resources.storage import list_files
from stedi_assets.settings import DEVELOPMENT_PSEUDONYM_KEY, from_env
from stedi_assets.transforms.classify import kept
from stedi_assets.transforms.customers import classify_customer_curated, classify_customer_trusted, current_customers
from stedi_assets.transforms.landing import parse_landing
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.readings import (
    ConsentPolicy,
    classify_accelerometer_trusted,
    classify_step_trainer_trusted,
)


def main(lake: str, out: str, policy: ConsentPolicy) -> None:
    builder = SparkSession.builder
    for key, value in spark_config(from_env()).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()

    def landing(table: t.ZoneTable) -> DataFrame:
        # A local lake; files Spark could not read are skipped (the assets quarantine them).
        listed = list_files(f"{lake}/{table.path}")
        unreadable = probe_files(listed, LocalFiles().open)
        lines = read_lines(spark, {uri: 0 for uri in listed if uri not in unreadable})
        return kept(parse_landing(lines, table)).select(*table.columns).cache()

    def save(table: t.ZoneTable, classified: DataFrame) -> DataFrame:
        kept(classified).select(*table.columns).write.mode("overwrite").parquet(f"{out}/{table.path}")
        return spark.read.parquet(f"{out}/{table.path}")

    customers, phone, device = (landing(table) for table in t.LANDING_TABLES)
    current = current_customers(customers).cache()
    customer_trusted = save(t.CUSTOMER_TRUSTED, classify_customer_trusted(customers))
    accelerometer_trusted = save(
        t.ACCELEROMETER_TRUSTED, classify_accelerometer_trusted(phone, current, customer_trusted, policy)
    )
    customer_curated = save(t.CUSTOMER_CURATED, classify_customer_curated(customer_trusted, accelerometer_trusted))
    step_trainer_trusted = save(
        t.STEP_TRAINER_TRUSTED, classify_step_trainer_trusted(device, current, customer_curated, policy)
    )
    key = DEVELOPMENT_PSEUDONYM_KEY.encode()
    save(
        t.MACHINE_LEARNING_CURATED,
        classify_machine_learning_curated(step_trainer_trusted, accelerometer_trusted, customer_curated, key),
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], ConsentPolicy(sys.argv[3] if len(sys.argv) > 3 else "since"))
