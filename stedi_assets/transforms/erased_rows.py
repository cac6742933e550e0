"""Which rows belong to an erased customer: pure functions of a frame and small frames of erased keys.

A row belongs to an erased customer when it names them (an e-mail column, or any e-mail in a raw line, as
identity keys), when it is a reading of a device at a time the customer held it (the serial column or a serial
in a raw line; a raw line whose time cannot be read counts, to fail closed), or when it carries their
subject_key. The erased keys come as data (small frames), never as literals: Spark plans print literals.
"""

from __future__ import annotations

import operator
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.transforms.identity import IDENTITY_KEY, identity_key
from stedi_assets.transforms.parsing import RAW
from stedi_assets.transforms.pseudonyms import SUBJECT_KEY

ERASED = "_erased"
SERIAL = "serialNumber"
READING_TIME = "sensorReadingTime"
# White space as Python's str.isspace() has it, spelled out: Java's \s (Spark's regexes) is ASCII only, so `\s`
# would let Spark and Python (tombstones.py) cut a raw line into different tokens.
WHITE_SPACE = "\\t\\n\\x0b\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Anything in a raw line that looks like an e-mail address, or a device serial (UUID), or a reading time.
EMAIL_TOKEN_PATTERN = f"[^{WHITE_SPACE}\"'<>(),;:\\[\\]{{}}@\\\\]+@[^{WHITE_SPACE}\"'<>(),;:\\[\\]{{}}@\\\\]+"
SERIAL_TOKEN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
READING_TIME_TOKEN = r"(?i)\"sensorReadingTime\"\s*:\s*\"?(-?\d+)"
IDENTITY_COLUMNS = ("email", "user")
ERASED_IDENTITIES_SCHEMA = f"{IDENTITY_KEY} string"
ERASED_DEVICES_SCHEMA = f"{SERIAL} string, claimed_from long, claimed_until long"
ERASED_SUBJECTS_SCHEMA = f"{SUBJECT_KEY} string"


def _raw_emails(frame: DataFrame) -> Column:
    return F.regexp_extract_all(F.coalesce(F.col(RAW), F.lit("")), F.lit(EMAIL_TOKEN_PATTERN), 0)


def _raw_serials(frame: DataFrame) -> Column:
    return F.regexp_extract_all(F.coalesce(F.col(RAW), F.lit("")), F.lit(SERIAL_TOKEN), 0)


def identity_candidates(frame: DataFrame) -> DataFrame:
    """Every identity key the frame's rows name (e-mail columns, e-mails in raw lines), once each."""
    parts = [frame.select(identity_key(c).alias(IDENTITY_KEY)) for c in IDENTITY_COLUMNS if c in frame.columns]
    if RAW in frame.columns:
        tokens = frame.select(F.explode(_raw_emails(frame)).alias("_token"))
        parts.append(tokens.select(identity_key("_token").alias(IDENTITY_KEY)))
    if not parts:
        return frame.sparkSession.createDataFrame([], ERASED_IDENTITIES_SCHEMA)
    return reduce(DataFrame.unionByName, parts).where(F.col(IDENTITY_KEY) != "").distinct()


def serial_candidates(frame: DataFrame) -> DataFrame:
    """Every device serial the frame's rows name (the serial column, serials in raw lines), once each."""
    parts = [frame.select(F.col(SERIAL))] if SERIAL in frame.columns else []
    if RAW in frame.columns:
        parts.append(frame.select(F.explode(_raw_serials(frame)).alias(SERIAL)))
    if not parts:
        return frame.sparkSession.createDataFrame([], f"{SERIAL} string")
    return reduce(DataFrame.unionByName, parts).where(F.col(SERIAL).isNotNull()).distinct()


def mark_erased(
    frame: DataFrame, identities: DataFrame, devices: DataFrame, subjects: DataFrame | None = None
) -> DataFrame:
    """The frame with a boolean column `_erased`: true for the rows of erased customers.

    `identities`: erased identity keys; `devices`: serial, claimed_from, claimed_until (null: still held) of
    devices they held; `subjects`: their subject keys (for the training table). Rows with a raw line are told
    apart by their lineage (file and line), which is unique for such rows.
    """
    ids = F.broadcast(identities.select(IDENTITY_KEY).distinct())
    held = F.broadcast(devices.select(SERIAL, "claimed_from", "claimed_until"))
    flags: list[str] = []
    marked = frame
    for column in (c for c in IDENTITY_COLUMNS if c in frame.columns):
        flag = f"_erased_{column}"
        hits = ids.select(F.col(IDENTITY_KEY).alias(f"_key_{column}"), F.lit(True).alias(flag))
        marked = marked.withColumn(f"_key_{column}", identity_key(column)).join(hits, f"_key_{column}", "left")
        flags.append(flag)
    if SERIAL in frame.columns and READING_TIME in frame.columns:
        readings = frame.select(SERIAL, READING_TIME).distinct().join(held, SERIAL)
        hits = readings.where(_held_at(READING_TIME)).select(SERIAL, READING_TIME).distinct()
        marked = marked.join(hits.withColumn("_erased_device", F.lit(True)), [SERIAL, READING_TIME], "left")
        flags.append("_erased_device")
    if RAW in frame.columns:
        lineage = ["source_file", "line_number"]
        emails = frame.select(*lineage, F.explode(_raw_emails(frame)).alias("_token"))
        named = emails.select(*lineage, identity_key("_token").alias(IDENTITY_KEY)).join(ids, IDENTITY_KEY, "left_semi")
        time = F.regexp_extract(F.coalesce(F.col(RAW), F.lit("")), READING_TIME_TOKEN, 1)
        serials = frame.select(*lineage, F.explode(_raw_serials(frame)).alias(SERIAL), time.alias("_text"))
        timed = serials.withColumn("_time", F.when(F.col("_text") != "", F.col("_text").try_cast("long")))
        # A time that cannot be read counts as held: an erased customer's line is never kept on a doubt.
        device_lines = timed.join(held, SERIAL).where(F.col("_time").isNull() | _held_at("_time")).select(*lineage)
        hits = named.select(*lineage).unionByName(device_lines).distinct().withColumn("_erased_raw", F.lit(True))
        marked = marked.join(hits, lineage, "left")
        flags.append("_erased_raw")
    if subjects is not None and SUBJECT_KEY in frame.columns:
        hits = F.broadcast(subjects.select(SUBJECT_KEY).distinct().withColumn("_erased_subject", F.lit(True)))
        marked = marked.join(hits, SUBJECT_KEY, "left")
        flags.append("_erased_subject")
    erased = reduce(operator.or_, (F.coalesce(F.col(f), F.lit(False)) for f in flags), F.lit(False))
    return marked.select(*frame.columns, erased.alias(ERASED))


def _held_at(time: str) -> Column:
    held_from = F.col(time) >= F.col("claimed_from")
    return held_from & (F.col("claimed_until").isNull() | (F.col(time) < F.col("claimed_until")))
