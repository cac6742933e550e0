"""Pandera contracts: one pandera.pyspark DataFrameModel per zone table.

Each model is the single declaration of its table's columns: types, nullability, value checks, uniqueness,
column docs and each column's severity. The Spark schema (`spark_schema`), the landing parser's value rules
(`column_rules`), the asset checks and the docs are all derived from these classes.

Severity. A column is **required** unless declared with `descriptive(...)`. A required column is needed to
place the row (identity, times, device serial, research consent, the readings): a landing row whose required
field is missing, of the wrong type or invalid is quarantined, and the blocking contract checks hold every
table to it. A **descriptive** column is carried as delivered and used by no rule of the pipeline (names,
phone, birth date, the public/friends sharing dates): when it fails its rule the row is kept, the failure is
counted by a non-blocking warning check, and the value stays as delivered, or null where the column's type
cannot hold it (text in a long column). The severity lives in the column's pandera metadata
(`{"severity": "descriptive"}`), and its checks are declared `raise_warning=True`, so that pandera itself
would only warn about them too.
"""

from __future__ import annotations

from typing import Any

import pyspark.sql.types as T
from pandera.pyspark import DataFrameModel, Field
from pyspark.sql import Column
from pyspark.sql import functions as F

# Plausible epoch-millisecond bounds: 2000-01-01 .. 2100-01-01 (UTC). A reading outside is a unit error.
EPOCH_MS_MIN = 946_684_800_000
EPOCH_MS_MAX = 4_102_444_800_000
# Far beyond what a phone accelerometer measures (about 16 g); a finite bound that rejects NaN and infinities.
ACCELERATION_LIMIT = 1000.0
# Characters that may surround an e-mail as delivered without changing whose it is: Unicode White_Space and the
# zero-width ones (ZWSP, ZWNJ, ZWJ, WORD JOINER, BOM). One Java regex class: the identity key strips the same set.
SURROUNDING_SPACE = r"[\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200D\u2028\u2029\u202F\u205F\u2060\u3000\uFEFF]"
EMAIL_PATTERN = rf"^{SURROUNDING_SPACE}*[^@\s]+@[^@\s]+{SURROUNDING_SPACE}*$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# YYYY-MM-DD with a month 01-12 and a day 01-31 (the day is not checked against the month's length).
DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
# Digits only, optionally after a +: 7 to 15 of them (E.164 allows at most 15).
PHONE_PATTERN = r"^\+?\d{7,15}$"
# At least one character that is not white space.
NAME_PATTERN = r"^\s*\S"
HEX64_PATTERN = r"^[0-9a-f]{64}$"

SEVERITY = "severity"
REQUIRED = "required"
DESCRIPTIVE = "descriptive"
# A column's unit, in its pandera metadata (`column_units`): what the dataset card of the training table shows.
UNIT = "unit"
EPOCH_MS_UNIT = "milliseconds since 1970-01-01T00:00:00Z (UTC)"
# The feeds state no unit for these: they are the sensors' own numbers, carried as delivered.
ACCELERATION_UNIT = "as the phone app reports it (the feed states no unit)"
DISTANCE_UNIT = "as the step trainer reports it, a whole number (the feed states no unit)"


def descriptive(description: str, **checks: Any) -> Any:
    """A descriptive column: nullable, its checks only warn, and the severity is in the column's metadata."""
    return Field(nullable=True, raise_warning=True, metadata={SEVERITY: DESCRIPTIVE}, description=description, **checks)


def epoch_ms(description: str, nullable: bool = False) -> Any:
    return Field(
        ge=EPOCH_MS_MIN, le=EPOCH_MS_MAX, nullable=nullable, description=description, metadata={UNIT: EPOCH_MS_UNIT}
    )


def descriptive_epoch_ms(description: str) -> Any:
    return descriptive(description, ge=EPOCH_MS_MIN, le=EPOCH_MS_MAX)


def acceleration(axis: str) -> Any:
    # Spark orders NaN above every number, so the upper bound also rejects NaN and infinities.
    return Field(
        ge=-ACCELERATION_LIMIT,
        le=ACCELERATION_LIMIT,
        description=f"Acceleration along {axis}",
        metadata={UNIT: ACCELERATION_UNIT},
    )


class CustomerRecord(DataFrameModel):
    """A customer record as the website exports it."""

    customerName: T.StringType = descriptive("Full name (direct identifier)", str_matches=NAME_PATTERN)
    email: T.StringType = Field(str_matches=EMAIL_PATTERN, description="The customer's identity (direct identifier)")
    phone: T.StringType = descriptive(
        "Phone number, digits with an optional + (direct identifier)", str_matches=PHONE_PATTERN
    )
    birthDay: T.StringType = descriptive("Birth date, YYYY-MM-DD", str_matches=DATE_PATTERN)
    serialNumber: T.StringType = Field(str_matches=UUID_PATTERN, description="UUID of the customer's step trainer")
    registrationDate: T.LongType = epoch_ms("Registration time, epoch ms")
    lastUpdateDate: T.LongType = epoch_ms("Time of this version of the record, epoch ms")
    shareWithResearchAsOfDate: T.LongType = epoch_ms("Research consent given at, epoch ms; null: none", True)
    shareWithPublicAsOfDate: T.LongType = descriptive_epoch_ms("Public sharing consent given at, epoch ms")
    shareWithFriendsAsOfDate: T.LongType = descriptive_epoch_ms("Friends sharing consent given at, epoch ms")

    class Config:
        strict = True


class AccelerometerReading(DataFrameModel):
    """One accelerometer reading from the phone app."""

    user: T.StringType = Field(str_matches=EMAIL_PATTERN, description="The customer's email (direct identifier)")
    timestamp: T.LongType = epoch_ms("Reading time, epoch ms (exports may spell the field timeStamp)")
    x: T.DoubleType = acceleration("x")
    y: T.DoubleType = acceleration("y")
    z: T.DoubleType = acceleration("z")

    class Config:
        strict = True


class StepTrainerReading(DataFrameModel):
    """One distance reading from a step trainer."""

    sensorReadingTime: T.LongType = epoch_ms("Reading time, epoch ms")
    serialNumber: T.StringType = Field(str_matches=UUID_PATTERN, description="UUID of the device")
    distanceFromObject: T.IntegerType = Field(
        ge=0, description="Distance measured by the sensor", metadata={UNIT: DISTANCE_UNIT}
    )

    class Config:
        strict = True


LINE_NUMBER_DOC = (
    "1-based number of the line in the file as delivered (after decompression); lines end at LF, CRLF or a lone CR"
)
ARRIVED_AT_DOC = "When the landing file arrived (its modification time), epoch ms"


class Lineage(DataFrameModel):
    """Where a landing row came from."""

    source_file: T.StringType = Field(description="URI of the landing file")
    line_number: T.LongType = Field(ge=1, description=LINE_NUMBER_DOC)
    arrived_at: T.LongType = Field(ge=0, description=ARRIVED_AT_DOC)


class CustomerLanding(Lineage, CustomerRecord):
    pass


class AccelerometerLanding(Lineage, AccelerometerReading):
    pass


class StepTrainerLanding(Lineage, StepTrainerReading):
    pass


class CustomerTrusted(CustomerRecord):
    """Current state of a customer whose current record consents to research."""

    shareWithResearchAsOfDate: T.LongType = epoch_ms("Research consent given at, epoch ms")

    class Config:
        strict = True
        unique = ["email"]


class CustomerCurated(CustomerTrusted):
    pass


class AccelerometerTrusted(AccelerometerReading):
    class Config:
        strict = True
        unique = ["user", "timestamp", "x", "y", "z"]


class StepTrainerTrusted(StepTrainerReading):
    class Config:
        strict = True
        unique = ["sensorReadingTime", "serialNumber", "distanceFromObject"]


class MachineLearningCurated(DataFrameModel):
    """A step-trainer reading paired with its owner's accelerometer reading at the same millisecond."""

    sensorReadingTime: T.LongType = epoch_ms("Reading time of both readings, epoch ms")
    distanceFromObject: T.IntegerType = Field(
        ge=0, description="Distance measured by the step trainer", metadata={UNIT: DISTANCE_UNIT}
    )
    x: T.DoubleType = acceleration("x")
    y: T.DoubleType = acceleration("y")
    z: T.DoubleType = acceleration("z")
    subject_key: T.StringType = Field(
        str_matches=HEX64_PATTERN, description="HMAC-SHA256 pseudonym of the customer (not reversible without the key)"
    )

    class Config:
        strict = True
        unique = ["subject_key", "sensorReadingTime", "distanceFromObject", "x", "y", "z"]


class Quarantine(DataFrameModel):
    """A rejected row, with why and where it came from."""

    raw: T.StringType = Field(
        nullable=True,
        description="The landing line as delivered (re-serialised after landing; null for a rejected file)",
    )
    source_file: T.StringType = Field(description="URI of the landing file")
    line_number: T.LongType = Field(
        ge=1, nullable=True, description=LINE_NUMBER_DOC + "; null when the whole file was rejected"
    )
    arrived_at: T.LongType = Field(ge=0, description=ARRIVED_AT_DOC)
    reason: T.StringType = Field(description="Why it was rejected, e.g. not_json, wrong_type, corrupt_file")
    detail: T.StringType = Field(
        nullable=True, description="The offending field or key; for a file, what is wrong with it"
    )
    rejected_by: T.StringType = Field(description="The asset that rejected it")
    run_id: T.StringType = Field(description="The Dagster run that rejected it")

    class Config:
        strict = True


def spark_schema(model: type[DataFrameModel]) -> T.StructType:
    """The model's columns as a Spark schema, nullability included (to_structtype drops it)."""
    schema = model.to_schema()
    return T.StructType([T.StructField(name, col.dtype.type, col.nullable) for name, col in schema.columns.items()])


def severity(model: type[DataFrameModel], column: str) -> str:
    """REQUIRED or DESCRIPTIVE, as the column is declared."""
    metadata = model.to_schema().columns[column].metadata or {}
    return metadata.get(SEVERITY, REQUIRED)


def descriptive_columns(model: type[DataFrameModel]) -> list[str]:
    return [name for name in model.to_schema().columns if severity(model, name) == DESCRIPTIVE]


DESCRIPTIVE_DOC = "Descriptive: kept as delivered when it fails its rule (a warning, not a rejection)."


def column_docs(model: type[DataFrameModel]) -> dict[str, str]:
    """Each column's description; a descriptive column's says so."""
    docs = {}
    for name, col in model.to_schema().columns.items():
        text = col.description or ""
        docs[name] = f"{text}. {DESCRIPTIVE_DOC}" if severity(model, name) == DESCRIPTIVE else text
    return docs


def column_units(model: type[DataFrameModel]) -> dict[str, str]:
    """Each column's unit, as declared in its metadata ("" for a column without one, such as a key)."""
    return {name: (col.metadata or {}).get(UNIT, "") for name, col in model.to_schema().columns.items()}


def unique_columns(model: type[DataFrameModel]) -> list[str]:
    return list(model.to_schema().unique or [])


def _check_predicate(column: Column, name: str, stats: dict) -> Column:
    """A Spark predicate that is true where a value passes one of pandera's built-in checks."""
    if name == "greater_than_or_equal_to":
        return column >= stats["min_value"]
    if name == "less_than_or_equal_to":
        return column <= stats["max_value"]
    if name == "str_matches":
        return column.rlike(stats["pattern"])
    raise NotImplementedError(f"pandera check {name!r} has no Spark predicate yet; add it here")


def check_names(model: type[DataFrameModel], only: str | None = None) -> dict[str, list[str]]:
    """For each column (of severity `only`, when given), the names of its value checks (no Spark needed)."""
    return {
        name: [check.name for check in col.checks]
        for name, col in model.to_schema().columns.items()
        if only is None or severity(model, name) == only
    }


def column_rules(model: type[DataFrameModel], only: str | None = None) -> dict[str, list[tuple[str, Column]]]:
    """For each column (of severity `only`, when given), its value checks as (check name, predicate true where
    the row passes).

    Nulls pass value checks here: nullability is a rule of its own.
    """
    rules: dict[str, list[tuple[str, Column]]] = {}
    for name, col in model.to_schema().columns.items():
        if only is not None and severity(model, name) != only:
            continue
        rules[name] = [
            (f"{check.name}", F.col(name).isNull() | _check_predicate(F.col(name), check.name, check.statistics))
            for check in col.checks
        ]
    return rules


class ErasureTombstone(DataFrameModel):
    """What is kept of an erasure request: keyed hashes (pseudonymous), never an e-mail or a device serial."""

    kind: T.StringType = Field(
        str_matches=r"^(identity|subject|device)$",
        description="identity: the customer; subject: their training-table pseudonym; device: a trainer they held",
    )
    tombstone: T.StringType = Field(
        str_matches=HEX64_PATTERN,
        description="HMAC-SHA256 of the identity key, the subject_key or the serial, under the pseudonym key",
    )
    claimed_from: T.LongType = Field(nullable=True, description="device: held by the customer from, epoch ms")
    claimed_until: T.LongType = Field(nullable=True, description="device: held until (null: still), epoch ms")
    requested_at: T.LongType = Field(nullable=True, description="When the customer asked, as the request says")
    recorded_at: T.LongType = epoch_ms("When a run recorded the request, epoch ms")
    key_fingerprint: T.StringType = Field(description="Fingerprint of the key the tombstone was made with")

    class Config:
        strict = True
        unique = ["kind", "tombstone", "claimed_from"]
