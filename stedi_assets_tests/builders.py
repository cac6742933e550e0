"""Tiny literal records and frames shared by the transform tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.types import StructType
from pyspark.testing import assertDataFrameEqual

from stedi_assets.reasons import DETAIL, REASON
from stedi_assets.transforms.classify import kept

Record = dict[str, Any]

SOURCE_FILE = "s3://stedi/landing/part-0000.json"
T0 = 1_655_564_444_000  # 2022-06-18T15:00:44Z in epoch ms: inside the contract's plausible range
ARRIVED = T0 + 86_400_000  # when SOURCE_FILE arrived, unless a record says otherwise
AS_OF = T0 + 365 * 86_400_000  # the run's time in transform tests
ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
SERIAL_1 = "11111111-1111-4111-8111-111111111111"
SERIAL_2 = "22222222-2222-4222-8222-222222222222"
SERIAL_3 = "33333333-3333-4333-8333-333333333333"
SERIAL_4 = "44444444-4444-4444-8444-444444444444"


def customer(**fields: Any) -> Record:
    """A customer record of ALICE owning SERIAL_1, consenting to research since T0; `fields` override."""
    return {
        "customerName": "Test Customer",
        "email": ALICE,
        "phone": "8015550100",
        "birthDay": "1990-01-01",
        "serialNumber": SERIAL_1,
        "registrationDate": T0,
        "lastUpdateDate": T0,
        "shareWithResearchAsOfDate": T0,
        "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None,
        **fields,
    }


def accelerometer(**fields: Any) -> Record:
    """An accelerometer reading of ALICE at T0; `fields` override."""
    return {"user": ALICE, "timestamp": T0, "x": 1.0, "y": 2.0, "z": 3.0, **fields}


def step_reading(**fields: Any) -> Record:
    """A step-trainer reading of SERIAL_1 at T0; `fields` override."""
    return {"sensorReadingTime": T0, "serialNumber": SERIAL_1, "distanceFromObject": 10, **fields}


def quarantined(record: Record | str, line_number: int, **lineage: Any) -> Record:
    """A customer_landing_quarantine row: `record` as its raw line (a str is taken as is), rejected as wrong_type."""
    raw = record if isinstance(record, str) else json.dumps(record, separators=(",", ":"))
    return {
        "raw": raw,
        "source_file": SOURCE_FILE,
        "line_number": line_number,
        "arrived_at": ARRIVED,
        "reason": "wrong_type",
        "detail": "shareWithResearchAsOfDate",
        "rejected_by": "customer_landing",
        "run_id": "test-run",
        **lineage,
    }


def landed(records: Sequence[Record]) -> list[Record]:
    """Landing records with their lineage: record n is line n of SOURCE_FILE, arrived at ARRIVED, unless it says
    otherwise."""
    lineage = {"source_file": SOURCE_FILE, "arrived_at": ARRIVED}
    return [{**lineage, "line_number": line_number, **record} for line_number, record in enumerate(records, start=1)]


def frame(spark: SparkSession, schema: StructType, records: Sequence[Record]) -> DataFrame:
    """The records as a frame of `schema`; in a landing schema, `landed` records."""
    names = schema.fieldNames()
    rows = landed(records) if "source_file" in names and "raw" not in names else records
    for row in rows:
        if set(row) != set(names):
            raise ValueError(f"record fields {sorted(row)} are not the schema's {names}")
    return spark.createDataFrame([tuple(row[name] for name in names) for row in rows], schema)


def evaluated(classified: DataFrame) -> DataFrame:
    """The frame's rows, computed once, as a frame of the same schema: the assertions that follow read them
    instead of running the transform again each (a classification is tens of Spark jobs, the same rows each time)."""
    return classified.sparkSession.createDataFrame(classified.collect(), classified.schema)


def assert_reasons(classified: DataFrame, keys: Sequence[str], expected: Sequence[tuple]) -> None:
    """The classified frame's rows, as (*keys, reason, detail), are exactly `expected`, in any order."""
    actual = classified.select(*keys, REASON, DETAIL)
    rows = [Row(**dict(zip(actual.columns, values, strict=True))) for values in expected]
    assertDataFrameEqual(actual, rows, checkRowOrder=False)


def assert_kept(classified: DataFrame, schema: StructType, records: Sequence[Record]) -> None:
    """The kept rows, as `schema`'s columns, are exactly `records`, in any order."""
    actual = kept(classified).select(*schema.fieldNames())
    assertDataFrameEqual(actual, frame(actual.sparkSession, schema, records), checkRowOrder=False)
