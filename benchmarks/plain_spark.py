"""The baseline: the pipeline's rules written by hand as one plain PySpark script, the way a Spark user would.

    python -m benchmarks.plain_spark LAKE_ROOT OUT_ROOT

`spark.read.json` with an explicit schema over each feed's raw files, the joins and filters below, one Parquet
write per table under OUT_ROOT at the table's registry path. Nothing of the project's parser, transforms,
contracts or Spark settings is imported (the registry gives paths only), so none of their costs come along.

The rules it implements (the same as the pipeline's, simplified):
- a customer is their e-mail lower-cased, without the space around it (SPACES); their current record has the
  greatest `lastUpdateDate`, then `registrationDate`, then (equal times) the one without research consent;
  customer_trusted: current records whose research consent is set and not in the future;
- accelerometer_trusted: readings (either spelling of `timestamp`) of trusted customers, taken at or after their
  consent (the `since` policy), one copy of each; the customer's e-mail as their current record spells it;
- customer_curated: trusted customers with at least one trusted reading;
- step_trainer_trusted: readings of a device that exactly one customer's current record claims, that customer
  curated, taken at or after consent, one copy of each;
- machine_learning_curated: each of those paired with its owner's trusted readings at the same millisecond,
  with `subject_key` = HMAC-SHA256 of the owner's identity, computed in the driver (the key never enters a plan).

What it skips (the pipeline does these; the generator's rates for them are 0 where the two must agree):
no quarantine tables (a line that is not JSON, lacks a required field or has a wrong type is just dropped; no
value-range checks), no row accounting or contract checks, no landing lineage (file, line, arrival), ties of
equal times decided by arrival order (file, line), quarantined newer records keeping a customer out, device
ownership history (who held a device at the reading's time), the `flag`
policy, and incremental runs (every run reads everything).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from stedi_assets import tables as t

KEY_ENV = "STEDI_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "stedi-bench-development-key"

CUSTOMER_SCHEMA = (
    "customerName string, email string, phone string, birthDay string, serialNumber string,"
    " registrationDate long, lastUpdateDate long, shareWithResearchAsOfDate long,"
    " shareWithPublicAsOfDate long, shareWithFriendsAsOfDate long"
)
CUSTOMER_COLUMNS = [column.split()[0] for column in CUSTOMER_SCHEMA.split(",")]
# Phone exports spell the time field either way: both are read (spark.sql.caseSensitive) and coalesced.
ACCELEROMETER_SCHEMA = "user string, timestamp long, timeStamp long, x double, y double, z double"
STEP_TRAINER_SCHEMA = "sensorReadingTime long, serialNumber string, distanceFromObject int"
CONSENT = "shareWithResearchAsOfDate"
# Equal times, both with or without consent: any total order, only so that every engine picks the same record.
TIE_BREAK = (
    "phone",
    "customerName",
    "email",
    "birthDay",
    "serialNumber",
    "shareWithResearchAsOfDate",
    "shareWithPublicAsOfDate",
    "shareWithFriendsAsOfDate",
)
# What the feeds put around an e-mail (space, tab, no-break and zero-width spaces): trimmed, as every engine's
# default trim differs (Spark's takes only ' ', DuckDB's also U+00A0).
SPACES = " \t\n\r\u00a0\u200b\u200c\u200d\u2060\ufeff"

# What this script sets on its session: the same basic choices as the pipeline's local runs.
SPARK_CONF = {
    "spark.master": "local[*]",
    "spark.sql.shuffle.partitions": "16",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.caseSensitive": "true",
}


def session(app: str) -> SparkSession:
    builder = SparkSession.builder.appName(app)
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def identity(column: str) -> F.Column:
    return F.lower(F.btrim(F.col(column), F.lit(SPACES)))


# --- reading ---------------------------------------------------------------------------------------------------


def read_customers(spark: SparkSession, lake: str) -> DataFrame:
    raw = spark.read.schema(CUSTOMER_SCHEMA).json(f"{lake}/{t.CUSTOMER_LANDING.files_path}")
    required = ("customerName", "email", "serialNumber", "registrationDate", "lastUpdateDate")
    return raw.where(" and ".join(f"{c} is not null" for c in required))


def read_accelerometer(spark: SparkSession, lake: str) -> DataFrame:
    raw = spark.read.schema(ACCELEROMETER_SCHEMA).json(f"{lake}/{t.ACCELEROMETER_LANDING.files_path}")
    readings = raw.select("user", F.coalesce("timestamp", "timeStamp").alias("timestamp"), "x", "y", "z")
    return readings.dropna()


def read_step_trainer(spark: SparkSession, lake: str) -> DataFrame:
    raw = spark.read.schema(STEP_TRAINER_SCHEMA).json(f"{lake}/{t.STEP_TRAINER_LANDING.files_path}")
    return raw.dropna()


def read_table(spark: SparkSession, out: str, table: t.ZoneTable) -> DataFrame:
    return spark.read.parquet(f"{out}/{table.path}")


def write_table(frame: DataFrame, out: str, table: t.ZoneTable) -> None:
    frame.write.mode("overwrite").parquet(f"{out}/{table.path}")


# --- the rules -------------------------------------------------------------------------------------------------


def current_records(customers: DataFrame) -> DataFrame:
    """Each customer's newest record (all columns, plus `_id`)."""
    newest_first = Window.partitionBy("_id").orderBy(
        F.desc("lastUpdateDate"),
        F.desc("registrationDate"),
        F.col(CONSENT).isNull().desc(),  # equal times: the record without consent (fail closed)
        *(F.desc_nulls_last(c) for c in TIE_BREAK),
    )
    ranked = customers.withColumn("_id", identity("email")).withColumn("_n", F.row_number().over(newest_first))
    return ranked.where("_n = 1").drop("_n")


def customer_trusted(current: DataFrame, as_of: int) -> DataFrame:
    return current.where(F.col(CONSENT).isNotNull() & (F.col(CONSENT) <= as_of)).select(*CUSTOMER_COLUMNS)


def accelerometer_trusted(readings: DataFrame, trusted: DataFrame) -> DataFrame:
    customers = trusted.select(identity("email").alias("_id"), F.col("email").alias("_email"), F.col(CONSENT))
    unique = readings.withColumn("_id", identity("user")).dropDuplicates(["_id", "timestamp", "x", "y", "z"])
    joined = unique.join(customers, "_id").where(F.col("timestamp") >= F.col(CONSENT))
    return joined.select(F.col("_email").alias("user"), "timestamp", "x", "y", "z")


def customer_curated(trusted: DataFrame, readings_trusted: DataFrame) -> DataFrame:
    with_readings = readings_trusted.select(identity("user").alias("_id")).distinct()
    return trusted.withColumn("_id", identity("email")).join(with_readings, "_id", "left_semi").drop("_id")


def device_owners(current: DataFrame) -> DataFrame:
    """serialNumber -> `_owner`, for serials that exactly one customer's current record claims."""
    claims = current.groupBy("serialNumber").agg(F.count_distinct("_id").alias("_n"), F.min("_id").alias("_owner"))
    return claims.where("_n = 1").select("serialNumber", "_owner")


def step_trainer_trusted(readings: DataFrame, owners: DataFrame, curated: DataFrame) -> DataFrame:
    consenting = curated.select(identity("email").alias("_owner"), F.col(CONSENT))
    joined = readings.dropDuplicates().join(owners, "serialNumber").join(consenting, "_owner")
    return joined.where(F.col("sensorReadingTime") >= F.col(CONSENT)).select(
        "sensorReadingTime", "serialNumber", "distanceFromObject"
    )


def subjects(spark: SparkSession, curated: DataFrame) -> DataFrame:
    """identity -> subject_key for the curated customers, HMAC computed here in the driver."""
    key = os.environ.get(KEY_ENV, DEVELOPMENT_KEY).encode()
    ids = [row[0] for row in curated.select(identity("email")).distinct().collect()]
    pairs = [(i, hmac.new(key, i.encode(), hashlib.sha256).hexdigest()) for i in ids]
    return spark.createDataFrame(pairs, "_owner string, subject_key string")


def machine_learning_curated(
    steps: DataFrame, readings_trusted: DataFrame, curated: DataFrame, subject_keys: DataFrame
) -> DataFrame:
    """A kept step reading's serial is claimed by exactly one current record, a curated one: the join on the
    serial through customer_curated finds that owner."""
    owners = curated.select("serialNumber", identity("email").alias("_owner"))
    phone = readings_trusted.select(
        identity("user").alias("_owner"), F.col("timestamp").alias("sensorReadingTime"), "x", "y", "z"
    )
    joined = steps.join(owners, "serialNumber").join(phone, ["_owner", "sensorReadingTime"])
    return joined.join(subject_keys, "_owner").select(
        "sensorReadingTime", "distanceFromObject", "x", "y", "z", "subject_key"
    )


def as_of_now() -> int:
    return int(time.time() * 1000)


def main(lake: str, out: str) -> None:
    spark = session("stedi-plain-spark")
    current = current_records(read_customers(spark, lake)).cache()
    trusted = customer_trusted(current, as_of_now()).cache()
    write_table(trusted, out, t.CUSTOMER_TRUSTED)
    readings = accelerometer_trusted(read_accelerometer(spark, lake), trusted).cache()
    write_table(readings, out, t.ACCELEROMETER_TRUSTED)
    curated = customer_curated(trusted, readings).cache()
    write_table(curated, out, t.CUSTOMER_CURATED)
    steps = step_trainer_trusted(read_step_trainer(spark, lake), device_owners(current), curated).cache()
    write_table(steps, out, t.STEP_TRAINER_TRUSTED)
    write_table(
        machine_learning_curated(steps, readings, curated, subjects(spark, curated)), out, t.MACHINE_LEARNING_CURATED
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
