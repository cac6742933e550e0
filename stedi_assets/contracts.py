"""Pandera contracts: one pandera.pyspark DataFrameModel per zone table.

Each model is the single declaration of its table's columns: types, nullability, value checks, uniqueness
and column docs. The Spark schema (`spark_schema`), the landing parser's value rules (`column_rules`), the
asset checks and the docs are all derived from these classes.
"""

from __future__ import annotations

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
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
HEX64_PATTERN = r"^[0-9a-f]{64}$"


def epoch_ms(description: str, nullable: bool = False) -> object:
    return Field(ge=EPOCH_MS_MIN, le=EPOCH_MS_MAX, nullable=nullable, description=description)


def acceleration(axis: str) -> object:
    # Spark orders NaN above every number, so the upper bound also rejects NaN and infinities.
    return Field(ge=-ACCELERATION_LIMIT, le=ACCELERATION_LIMIT, description=f"Acceleration along {axis}")


class CustomerRecord(DataFrameModel):
    """A customer record as the website exports it."""

    customerName: T.StringType = Field(description="Full name (direct identifier)")
    email: T.StringType = Field(str_matches=EMAIL_PATTERN, description="The customer's identity (direct identifier)")
    phone: T.StringType = Field(nullable=True, description="Phone number (direct identifier)")
    birthDay: T.StringType = Field(nullable=True, str_matches=DATE_PATTERN, description="Birth date, YYYY-MM-DD")
    serialNumber: T.StringType = Field(str_matches=UUID_PATTERN, description="UUID of the customer's step trainer")
    registrationDate: T.LongType = epoch_ms("Registration time, epoch ms")
    lastUpdateDate: T.LongType = epoch_ms("Time of this version of the record, epoch ms")
    shareWithResearchAsOfDate: T.LongType = epoch_ms("Research consent given at, epoch ms; null: none", True)
    shareWithPublicAsOfDate: T.LongType = epoch_ms("Public sharing consent given at, epoch ms", True)
    shareWithFriendsAsOfDate: T.LongType = epoch_ms("Friends sharing consent given at, epoch ms", True)

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
    distanceFromObject: T.IntegerType = Field(ge=0, description="Distance measured by the sensor")

    class Config:
        strict = True


class Lineage(DataFrameModel):
    """Where a landing row came from."""

    source_file: T.StringType = Field(description="URI of the landing file")
    line_number: T.LongType = Field(ge=1, description="1-based line number in that file")
    arrived_at: T.LongType = Field(
        description="When the file arrived (its modification time when first consumed), epoch ms"
    )


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
    distanceFromObject: T.IntegerType = Field(ge=0, description="Distance measured by the step trainer")
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

    raw: T.StringType = Field(nullable=True, description="The landing line as delivered (re-serialised after landing)")
    source_file: T.StringType = Field(description="URI of the landing file")
    line_number: T.LongType = Field(ge=1, description="1-based line number in that file")
    arrived_at: T.LongType = Field(
        description="When the file arrived (its modification time when first consumed), epoch ms"
    )
    reason: T.StringType = Field(description="Why it was rejected, e.g. not_json, wrong_type")
    detail: T.StringType = Field(nullable=True, description="The offending field, where there is one")
    rejected_by: T.StringType = Field(description="The asset that rejected it")
    run_id: T.StringType = Field(description="The Dagster run that rejected it")

    class Config:
        strict = True


def spark_schema(model: type[DataFrameModel]) -> T.StructType:
    """The model's columns as a Spark schema, nullability included (to_structtype drops it)."""
    schema = model.to_schema()
    return T.StructType([T.StructField(name, col.dtype.type, col.nullable) for name, col in schema.columns.items()])


def column_docs(model: type[DataFrameModel]) -> dict[str, str]:
    return {name: col.description or "" for name, col in model.to_schema().columns.items()}


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


def column_rules(model: type[DataFrameModel]) -> dict[str, list[tuple[str, Column]]]:
    """For each column, its value checks as (check name, predicate true where the row passes).

    Nulls pass value checks here: nullability is a rule of its own.
    """
    rules: dict[str, list[tuple[str, Column]]] = {}
    for name, col in model.to_schema().columns.items():
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
        description="HMAC-SHA256 of the identity key or serial (the subject_key for subject), under the pseudonym key",
    )
    claimed_from: T.LongType = Field(nullable=True, description="device: held by the customer from, epoch ms")
    claimed_until: T.LongType = Field(nullable=True, description="device: held until (null: still), epoch ms")
    requested_at: T.LongType = Field(nullable=True, description="When the customer asked, as the request says")
    recorded_at: T.LongType = epoch_ms("When a run recorded the request, epoch ms")
    key_fingerprint: T.StringType = Field(description="Fingerprint of the key the tombstone was made with")

    class Config:
        strict = True
        unique = ["kind", "tombstone", "claimed_from"]
