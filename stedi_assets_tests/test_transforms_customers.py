"""Customer state and consent: the latest record wins, withdrawals count, readings make a customer curated."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.contracts import CustomerRecord, spark_schema
from stedi_assets.tables import ACCELEROMETER_TRUSTED, CUSTOMER_LANDING, CUSTOMER_TRUSTED
from stedi_assets.transforms.customers import classify_customer_curated, classify_customer_trusted, current_customers
from stedi_assets_tests.builders import (
    ALICE,
    BOB,
    SERIAL_2,
    T0,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    frame,
)

T1 = T0 + 60_000
KEYS = ["email", "lastUpdateDate", "registrationDate"]
# current_customers: every customer's current record, so research consent may be null.
CURRENT = spark_schema(CustomerRecord)


def test_latest_update_wins_whatever_the_line_order(spark: SparkSession) -> None:
    newer, older = customer(lastUpdateDate=T1, phone="555-0199"), customer(lastUpdateDate=T0)
    landing = frame(spark, CUSTOMER_LANDING.schema, [newer, older])
    classified = classify_customer_trusted(landing)
    assert_reasons(classified, KEYS, [(ALICE, T1, T0, None, None), (ALICE, T0, T0, "superseded", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newer])
    assertDataFrameEqual(current_customers(landing), frame(spark, CURRENT, [newer]), checkRowOrder=False)


def test_registration_date_breaks_a_tie_on_last_update(spark: SparkSession) -> None:
    older, newer = customer(registrationDate=T0), customer(registrationDate=T1, serialNumber=SERIAL_2)
    landing = frame(spark, CUSTOMER_LANDING.schema, [older, newer])
    classified = classify_customer_trusted(landing)
    assert_reasons(classified, KEYS, [(ALICE, T0, T1, None, None), (ALICE, T0, T0, "superseded", None)])
    assertDataFrameEqual(current_customers(landing), frame(spark, CURRENT, [newer]), checkRowOrder=False)


def test_a_withdrawal_in_the_latest_record_takes_the_customer_out(spark: SparkSession) -> None:
    consenting, withdrawn = customer(lastUpdateDate=T0), customer(lastUpdateDate=T1, shareWithResearchAsOfDate=None)
    landing = frame(spark, CUSTOMER_LANDING.schema, [consenting, withdrawn])
    classified = classify_customer_trusted(landing)
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded", None), (ALICE, T1, T0, "no_consent", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [])
    assertDataFrameEqual(current_customers(landing), frame(spark, CURRENT, [withdrawn]), checkRowOrder=False)


def test_an_exact_duplicate_is_kept_once(spark: SparkSession) -> None:
    classified = classify_customer_trusted(frame(spark, CUSTOMER_LANDING.schema, [customer(), customer()]))
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, None, None), (ALICE, T0, T0, "duplicate", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [customer()])


def test_current_customers_has_one_row_per_email_consenting_or_not(spark: SparkSession) -> None:
    alice = customer()
    bob_old = customer(email=BOB, serialNumber=SERIAL_2)
    bob = customer(email=BOB, serialNumber=SERIAL_2, lastUpdateDate=T1, shareWithResearchAsOfDate=None)
    landing = frame(spark, CUSTOMER_LANDING.schema, [alice, bob_old, bob, bob])
    assertDataFrameEqual(current_customers(landing), frame(spark, CURRENT, [alice, bob]), checkRowOrder=False)


def test_curated_keeps_the_trusted_customers_with_an_accelerometer_reading(spark: SparkSession) -> None:
    alice, bob = customer(), customer(email=BOB, serialNumber=SERIAL_2)
    trusted = frame(spark, CUSTOMER_TRUSTED.schema, [alice, bob])
    readings = frame(spark, ACCELEROMETER_TRUSTED.schema, [accelerometer(), accelerometer(timestamp=T1)])
    classified = classify_customer_curated(trusted, readings)
    assert_reasons(classified, ["email"], [(ALICE, None, None), (BOB, "no_accelerometer_readings", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [alice])
