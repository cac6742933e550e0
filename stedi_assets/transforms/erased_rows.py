"""Which rows belong to an erased customer: pure functions of a frame and small frames of erased keys.

A row belongs to an erased customer when it names them (an e-mail column, or any e-mail in a raw line, as
identity keys), when it is a reading of a device at a time the customer held it (the serial column, or a serial
in a raw line of a readings feed; a raw reading whose time cannot be read counts, to fail closed), or when it
carries their subject_key. A customer record is erased only by its own identity: the device it claims may have
been an erased customer's before. The erased keys come as data (small frames), never as literals: Spark plans
print literals.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.contracts import EPOCH_MS_MIN
from stedi_assets.transforms.identity import IDENTITY_KEY, identity_key
from stedi_assets.transforms.parsing import RAW
from stedi_assets.transforms.pseudonyms import SUBJECT_KEY

ERASED = "_erased"
SERIAL = "serialNumber"
READING_TIME = "sensorReadingTime"
# White space as Python's str.isspace() has it, spelled out: Java's \s (Spark's regexes) is ASCII only, so `\s`
# would let Spark and Python (tombstones.py) cut a raw line into different tokens.
WHITE_SPACE = "\\t\\n\\x0b\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# What in a raw line may be an e-mail address: a token between the punctuation that delimits values in JSON,
# CSV and mail headers (with and without the apostrophe, which may quote a value or be part of an address), and
# a token between white space only, as the e-mail rule has it (`[^@\s]+@[^@\s]+`: a bracket or a comma may be
# part of an address). All are candidates; only an erased customer's identity key matches.
_DELIMITERS = '"<>(),;:\\[\\]{}@\\\\'
_DELIMITED = f"[^{WHITE_SPACE}{_DELIMITERS}']+@[^{WHITE_SPACE}{_DELIMITERS}']+"
_DELIMITED_WITH_APOSTROPHES = f"[^{WHITE_SPACE}{_DELIMITERS}]+@[^{WHITE_SPACE}{_DELIMITERS}]+"
_SPACED = f"[^{WHITE_SPACE}@]+@[^{WHITE_SPACE}@]+"
EMAIL_TOKEN_PATTERNS = (_DELIMITED, _DELIMITED_WITH_APOSTROPHES, _SPACED)
EMAIL_TOKENS = tuple(re.compile(pattern) for pattern in EMAIL_TOKEN_PATTERNS)
# A JSON string literal, quotes included, its loop unrolled with possessive quantifiers: Java's regex engine
# recurses once per character through an alternation and would overflow its stack on a long line.
JSON_STRING_PATTERN = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
JSON_STRING = re.compile(JSON_STRING_PATTERN)
SERIAL_TOKEN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
READING_TIME_TOKEN = r"(?i)\"sensorReadingTime\"\s*:\s*\"?(-?\d+)"
IDENTITY_COLUMNS = ("email", "user")
ERASED_IDENTITIES_SCHEMA = f"{IDENTITY_KEY} string"
ERASED_DEVICES_SCHEMA = f"{SERIAL} string, claimed_from long, claimed_until long"
ERASED_SUBJECTS_SCHEMA = f"{SUBJECT_KEY} string"


def raw_emails() -> Column:
    """Every spelling of an address a raw line may hold (`raw_email_candidates` in Python): e-mail-like tokens of
    the line, and of each JSON string in it with its escapes decoded (`\u0040` is `@`), and each such string
    holding an `@` whole (an address with an apostrophe, or another character that ends a token)."""
    raw = F.coalesce(F.col(RAW), F.lit(""))
    literals = F.regexp_extract_all(raw, F.lit(JSON_STRING_PATTERN), 0)
    # A string literal in a one-element JSON array: Spark's JSON reader decodes its escapes (null if invalid).
    decoded = F.transform(literals, lambda s: F.from_json(F.concat(F.lit("["), s, F.lit("]")), "array<string>")[0])
    strings = F.filter(decoded, lambda value: value.isNotNull())
    texts = F.concat(F.array(raw), strings)
    tokens = [F.flatten(F.transform(texts, _tokens_of(pattern))) for pattern in EMAIL_TOKEN_PATTERNS]
    return F.concat(*tokens, F.filter(strings, lambda value: value.contains("@")))


def _tokens_of(pattern: str) -> Callable[[Column], Column]:
    return lambda text: F.regexp_extract_all(text, F.lit(pattern), 0)


def raw_email_candidates(line: str) -> list[str]:
    """`raw_emails` in Python, for files no parser can read: the same candidates, in the same order."""
    strings = []
    for literal in JSON_STRING.findall(line):
        try:
            strings.append(json.loads(literal))
        except ValueError:  # not a JSON string after all (an invalid escape): Spark's reader gives null
            continue
    tokens = [token for pattern in EMAIL_TOKENS for text in (line, *strings) for token in pattern.findall(text)]
    return tokens + [value for value in strings if "@" in value]


def _raw_serials() -> Column:
    return F.regexp_extract_all(F.coalesce(F.col(RAW), F.lit("")), F.lit(SERIAL_TOKEN), 0)


def column_identities(frame: DataFrame) -> list[DataFrame]:
    """The identity keys of the frame's e-mail columns (`IDENTITY_COLUMNS` it has), one frame of `IDENTITY_KEY`
    per column."""
    return [frame.select(identity_key(c).alias(IDENTITY_KEY)) for c in IDENTITY_COLUMNS if c in frame.columns]


def identity_candidates(frame: DataFrame) -> DataFrame:
    """Every identity key the frame's rows name (e-mail columns, e-mails in raw lines), once each."""
    parts = column_identities(frame)
    if RAW in frame.columns:
        tokens = frame.select(F.explode(raw_emails()).alias("_token"))
        parts.append(tokens.select(identity_key("_token").alias(IDENTITY_KEY)))
    if not parts:
        return frame.sparkSession.createDataFrame([], ERASED_IDENTITIES_SCHEMA)
    return reduce(DataFrame.unionByName, parts).where(F.col(IDENTITY_KEY) != "").distinct()


def serial_candidates(frame: DataFrame) -> DataFrame:
    """Every device serial the frame's rows name (the serial column, serials in raw lines), once each."""
    parts = [frame.select(F.col(SERIAL))] if SERIAL in frame.columns else []
    if RAW in frame.columns:
        parts.append(frame.select(F.explode(_raw_serials()).alias(SERIAL)))
    if not parts:
        return frame.sparkSession.createDataFrame([], f"{SERIAL} string")
    return reduce(DataFrame.unionByName, parts).where(F.col(SERIAL).isNotNull()).distinct()


def mark_erased(
    frame: DataFrame,
    identities: DataFrame,
    devices: DataFrame,
    subjects: DataFrame | None = None,
    *,
    raw_readings: bool,
) -> DataFrame:
    """The frame with a boolean column `_erased`: true for the rows of erased customers.

    `identities`: erased identity keys; `devices`: serial, claimed_from, claimed_until (null: still held) of
    devices they held; `subjects`: their subject keys (for the training table); `raw_readings`: whether the
    frame's raw lines are device readings (the step trainer's feed), which a device's serial alone can erase.
    Rows with a raw line are told apart by their lineage (file and line), which is unique for such rows.
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
        emails = frame.select(*lineage, F.explode(raw_emails()).alias("_token"))
        named = emails.select(*lineage, identity_key("_token").alias(IDENTITY_KEY)).join(ids, IDENTITY_KEY, "left_semi")
        hits = named.select(*lineage)
        if raw_readings:
            time = F.regexp_extract(F.coalesce(F.col(RAW), F.lit("")), READING_TIME_TOKEN, 1)
            serials = frame.select(*lineage, F.explode(_raw_serials()).alias(SERIAL), time.alias("_text"))
            timed = serials.withColumn("_time", F.when(F.col("_text") != "", F.col("_text").try_cast("long")))
            # A time that cannot be read counts as held: an erased customer's reading is never kept on a doubt.
            held_then = F.col("_time").isNull() | _held_at("_time")
            hits = hits.unionByName(timed.join(held, SERIAL).where(held_then).select(*lineage))
        hits = hits.distinct().withColumn("_erased_raw", F.lit(True))
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


def erased_holdings(claims: DataFrame, erased: DataFrame) -> DataFrame:
    """The device holdings to tombstone for erased customers: `claims` as customers.device_claims gives them,
    `erased` their identity keys. Each claim of theirs; and for a device they held first, everything before
    anyone else's first claim of it (from EPOCH_MS_MIN): a reading before a device's first claim is its first
    holder's, and would otherwise pass to the next holder once the erased records are gone (readings in that
    span were theirs, nobody's or ambiguous: no one else's is touched)."""
    holding = claims.where(F.col("claimed_until").isNull() | (F.col("claimed_until") > F.col("claimed_from")))
    is_erased = F.coalesce(F.col("_erased"), F.lit(False))
    flagged = holding.join(
        F.broadcast(erased.select(IDENTITY_KEY).withColumn("_erased", F.lit(True))), IDENTITY_KEY, "left"
    )
    per_device = flagged.groupBy(SERIAL).agg(
        F.min(F.when(is_erased, F.col("claimed_from"))).alias("_theirs"),
        F.min(F.when(~is_erased, F.col("claimed_from"))).alias("_others"),
    )
    first = per_device.where(
        F.col("_theirs").isNotNull() & (F.col("_others").isNull() | (F.col("_theirs") <= F.col("_others")))
    )
    before = first.select(SERIAL, F.lit(EPOCH_MS_MIN).alias("claimed_from"), F.col("_others").alias("claimed_until"))
    own = claims.join(F.broadcast(erased.select(IDENTITY_KEY)), IDENTITY_KEY, "left_semi")
    return own.select(SERIAL, "claimed_from", "claimed_until").unionByName(before)
