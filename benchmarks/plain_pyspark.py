"""The same logic as the asset graph as one plain PySpark script: no Dagster, no checks, no row accounting.

    python -m benchmarks.plain_pyspark LAKE_ROOT OUT_ROOT [since|flag]

It calls the same pure transforms and writes the same tables, so that timing it next to a materialization
shows what the orchestration, the contract checks and the accounting cost.
"""

from __future__ import annotations

import sys
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from stedi_assets.settings import DEVELOPMENT_PSEUDONYM_KEY, from_env

from stedi_assets import tables as t
from stedi_assets.resources.spark import spark_config
from stedi_assets.transforms.classify import QUARANTINE_REASONS, REASON, kept
from stedi_assets.transforms.customers import classify_customer_curated, classify_customer_trusted
from stedi_assets.transforms.identity import IDENTITY_KEY, identities
from stedi_assets.transforms.landing import parse_landing, split_lines
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.pseudonyms import subject_keys, subjects_frame
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

    def parsed(table: t.ZoneTable) -> DataFrame:
        files = spark.read.text(f"{lake}/{table.path}", wholetext=True, recursiveFileLookup=True)
        lines = split_lines(
            files.selectExpr(
                "_metadata.file_path as path",
                "value as content",
                "unix_millis(_metadata.file_modification_time) as arrived_at",
            )
        )
        return parse_landing(lines, table).cache()

    def save(table: t.ZoneTable, classified: DataFrame) -> DataFrame:
        kept(classified).select(*table.columns).write.mode("overwrite").parquet(f"{out}/{table.path}")
        return spark.read.parquet(f"{out}/{table.path}")

    parses = [parsed(table) for table in t.LANDING_TABLES]
    customers, phone, device = (
        kept(frame).select(*table.columns) for frame, table in zip(parses, t.LANDING_TABLES, strict=True)
    )
    rejected = parses[0].where(F.col(REASON).isin(*QUARANTINE_REASONS))  # customer_landing_quarantine
    as_of = int(time.time() * 1000)
    customer_trusted = save(t.CUSTOMER_TRUSTED, classify_customer_trusted(customers, rejected, as_of))
    accelerometer_trusted = save(
        t.ACCELEROMETER_TRUSTED, classify_accelerometer_trusted(phone, customers, customer_trusted, policy)
    )
    customer_curated = save(t.CUSTOMER_CURATED, classify_customer_curated(customer_trusted, accelerometer_trusted))
    step_trainer_trusted = save(
        t.STEP_TRAINER_TRUSTED,
        classify_step_trainer_trusted(device, customers, customer_trusted, customer_curated, policy),
    )
    keys = [row[IDENTITY_KEY] for row in identities(customer_curated).collect()]
    subjects = subjects_frame(spark, subject_keys(keys, DEVELOPMENT_PSEUDONYM_KEY.encode()))
    save(
        t.MACHINE_LEARNING_CURATED,
        classify_machine_learning_curated(step_trainer_trusted, accelerometer_trusted, customers, subjects),
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], ConsentPolicy(sys.argv[3] if len(sys.argv) > 3 else "since"))
