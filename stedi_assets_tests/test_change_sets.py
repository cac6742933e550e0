"""The customers and devices a delivery changes (`changed_keys`) are those a rebuild reads in its rows: the e-mail
and serial columns, and in raw customer lines the e-mail that the rule for quarantined records reads (a record
that withholds consent). Nothing else in a raw line names anyone for an incremental run: a looser pattern once
named a fragment of an address and left its customer stale."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from stedi_assets.assets.inputs import changed_keys
from stedi_assets.lake.changes import Changes
from stedi_assets.tables import (
    ACCELEROMETER_LANDING,
    CUSTOMER_LANDING,
    QUARANTINE_OF,
    STEP_TRAINER_LANDING,
    ZoneTable,
)
from stedi_assets_tests.builders import SERIAL_1, SERIAL_2, accelerometer, customer, frame, quarantined, step_reading

CUSTOMER_QUARANTINE = QUARANTINE_OF[CUSTOMER_LANDING.name]
O_NEIL = "o'neil@example.com"
BOM = "\ufeff"


def customer_lines_changed(spark: SparkSession, line: str) -> Changes:
    return changed_keys(frame(spark, CUSTOMER_QUARANTINE.schema, [quarantined(line, 1)]), CUSTOMER_QUARANTINE)


@pytest.mark.parametrize(
    "line",
    [
        '{"email": "o\'neil@example.com", "phone": 5}',
        '{"email": "o\\u0027neil\\u0040example.com", "phone": 5}',
        '{"EMAIL": " O\'Neil@Example.COM ", "lastUpdateDate": "soon"}',
        BOM + '{"Email": "o\'neil@example.com"}',
        '{"customerName": "x", "email": "o\'neil@example.com", "serialNumber": 7}',
    ],
    ids=["apostrophe", "json-escapes", "upper-case-key", "byte-order-mark", "wrong-type-elsewhere"],
)
def test_a_quarantined_customer_line_changes_the_customer_its_email_names(spark: SparkSession, line: str) -> None:
    assert customer_lines_changed(spark, line) == Changes(frozenset({O_NEIL}), frozenset())


def test_a_line_giving_the_email_twice_changes_each_customer_it_names(spark: SparkSession) -> None:
    line = '{"email": "ann@example.com", "EMAIL": "o\'neil@example.com"}'
    assert customer_lines_changed(spark, line) == Changes(frozenset({"ann@example.com", O_NEIL}), frozenset())


@pytest.mark.parametrize(
    "line",
    [
        "o'neil@example.com",  # not JSON: no record
        '{"customerName": "o\'neil@example.com"}',  # an address, but not in the e-mail field
        '{"email": 5}',  # the e-mail is not a string
        '{"email": "   "}',  # a blank e-mail
        '[{"email": "o\'neil@example.com"}]',  # not one object
        '{"email": "o\'neil@example.com"} {"email": "ann@example.com"}',  # trailing content
    ],
    ids=["not-json", "other-field", "not-a-string", "blank", "array", "two-values"],
)
def test_a_customer_line_no_rebuild_reads_as_a_record_changes_no_one(spark: SparkSession, line: str) -> None:
    assert customer_lines_changed(spark, line) == Changes()


def test_landing_rows_change_their_key_columns_as_identity_keys(spark: SparkSession) -> None:
    customers = frame(spark, CUSTOMER_LANDING.schema, [customer(email=" Ann@Example.com", serialNumber=SERIAL_2)])
    readings = frame(spark, ACCELEROMETER_LANDING.schema, [accelerometer(user="BOB@example.com")])
    steps = frame(spark, STEP_TRAINER_LANDING.schema, [step_reading()])
    assert changed_keys(customers, CUSTOMER_LANDING) == Changes(frozenset({"ann@example.com"}), frozenset({SERIAL_2}))
    assert changed_keys(readings, ACCELEROMETER_LANDING) == Changes(frozenset({"bob@example.com"}), frozenset())
    assert changed_keys(steps, STEP_TRAINER_LANDING) == Changes(frozenset(), frozenset({SERIAL_1}))


@pytest.mark.parametrize("table", [ACCELEROMETER_LANDING, STEP_TRAINER_LANDING], ids=lambda t: t.name)
def test_a_quarantined_reading_line_changes_no_one_by_its_raw_text(spark: SparkSession, table: ZoneTable) -> None:
    # A rebuild never reads a quarantined reading again: whatever its raw line spells, no result depends on it.
    quarantine = QUARANTINE_OF[table.name]
    line = f'{{"user": "{O_NEIL}", "serialNumber": "{SERIAL_1}", "timestamp": "late"}}'
    rows = frame(spark, quarantine.schema, [quarantined(line, 1, rejected_by=table.name)])
    assert changed_keys(rows, quarantine) == Changes()
