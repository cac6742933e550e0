"""Customer state and consent: one customer per identity, the latest record wins (ties by delivery, then without
consent), quarantined newer records and future consent fail closed, and who held which device when."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.tables import ACCELEROMETER_TRUSTED, CUSTOMER_LANDING, CUSTOMER_TRUSTED, QUARANTINE_OF
from stedi_assets.transforms.customers import classify_customer_curated, classify_customer_trusted, device_claims
from stedi_assets_tests.builders import (
    ALICE,
    ARRIVED,
    AS_OF,
    BOB,
    SERIAL_1,
    SERIAL_2,
    SOURCE_FILE,
    T0,
    Record,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    evaluated,
    frame,
    quarantined,
)

T1 = T0 + 60_000
T2 = T0 + 120_000
KEYS = ["email", "lastUpdateDate", "registrationDate"]
TIE_KEYS = ["phone", "shareWithResearchAsOfDate"]
QUARANTINE = QUARANTINE_OF[CUSTOMER_LANDING.name].schema
# Around an e-mail, none of these changes whose it is (U+0085 and U+3000 stand for the rest of Unicode's spaces).
SPACES = [" ", "\t", "\n", "\u00a0", "\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u0085", "\u3000"]


def classify(
    spark: SparkSession, records: list[Record], quarantine: list[Record] = (), as_of: int = AS_OF
) -> DataFrame:
    return evaluated(
        classify_customer_trusted(
            frame(spark, CUSTOMER_LANDING.schema, records), frame(spark, QUARANTINE, list(quarantine)), as_of
        )
    )


def tied(phone: str, consent: int | None, **lineage: object) -> Record:
    """Alice's record at T0 (update and registration), told apart by its phone."""
    return customer(phone=phone, shareWithResearchAsOfDate=consent, **lineage)


def test_latest_update_wins_whatever_the_line_order(spark: SparkSession) -> None:
    newer, older = customer(lastUpdateDate=T1, phone="555-0199"), customer(lastUpdateDate=T0)
    classified = classify(spark, [newer, older])
    assert_reasons(classified, KEYS, [(ALICE, T1, T0, None, None), (ALICE, T0, T0, "superseded", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newer])


def test_registration_date_breaks_a_tie_on_last_update(spark: SparkSession) -> None:
    older, newer = customer(registrationDate=T0, line_number=2), customer(registrationDate=T1, line_number=1)
    classified = classify(spark, [older, newer])
    assert_reasons(classified, KEYS, [(ALICE, T0, T1, None, None), (ALICE, T0, T0, "superseded", None)])


def test_a_withdrawal_in_the_latest_record_takes_the_customer_out(spark: SparkSession) -> None:
    consenting, withdrawn = customer(lastUpdateDate=T0), customer(lastUpdateDate=T1, shareWithResearchAsOfDate=None)
    classified = classify(spark, [consenting, withdrawn])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded", None), (ALICE, T1, T0, "no_consent", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [])


def test_an_exact_duplicate_is_kept_once(spark: SparkSession) -> None:
    classified = classify(spark, [customer(), customer()])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, None, None), (ALICE, T0, T0, "duplicate", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [customer()])


@pytest.mark.parametrize("space", SPACES, ids=[f"U+{ord(c):04X}" for c in SPACES])
def test_case_and_surrounding_space_do_not_change_the_customer(spark: SparkSession, space: str) -> None:
    delivered = f"{space}  Alice@Example.COM{space}"
    older, newer = customer(), customer(email=delivered, lastUpdateDate=T1)
    bob = customer(email=BOB, serialNumber=SERIAL_2)
    classified = classify(spark, [older, newer, bob])
    assert_reasons(
        classified,
        KEYS,
        [(ALICE, T0, T0, "superseded", None), (delivered, T1, T0, None, None), (BOB, T0, T0, None, None)],
    )
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newer, bob])


@pytest.mark.parametrize("later_consents", [True, False], ids=["later-consents", "later-withholds"])
def test_on_an_exact_tie_the_later_line_of_a_file_wins(spark: SparkSession, later_consents: bool) -> None:
    earlier, later = tied("555-0001", None if later_consents else T0), tied("555-0002", T0 if later_consents else None)
    classified = classify(spark, [earlier, later])
    expected = [
        ("555-0001", earlier["shareWithResearchAsOfDate"], "superseded", None),
        ("555-0002", later["shareWithResearchAsOfDate"], None if later_consents else "no_consent", None),
    ]
    assert_reasons(classified, TIE_KEYS, expected)


def test_on_an_exact_tie_the_file_that_arrived_later_wins_whatever_its_name(spark: SparkSession) -> None:
    # customer-10.json sorts before customer-9.json, but arrived after it.
    nine = tied("555-0009", None, source_file="s3://stedi/customer-9.json", line_number=1, arrived_at=ARRIVED)
    ten = tied("555-0010", T0, source_file="s3://stedi/customer-10.json", line_number=1, arrived_at=ARRIVED + 1)
    classified = classify(spark, [nine, ten])
    assert_reasons(classified, TIE_KEYS, [("555-0009", None, "superseded", None), ("555-0010", T0, None, None)])


@pytest.mark.parametrize("withholding_file", ["s3://stedi/a.json", "s3://stedi/b.json"])
def test_on_a_tie_arrival_cannot_decide_the_record_without_consent_wins(
    spark: SparkSession, withholding_file: str
) -> None:
    # Two files that arrived at the same time: neither the file name nor the line number decides.
    other_file = "s3://stedi/b.json" if withholding_file.endswith("a.json") else "s3://stedi/a.json"
    withholding = tied("555-0001", None, source_file=withholding_file, line_number=1)
    consenting = tied("555-0002", T0, source_file=other_file, line_number=9)
    classified = classify(spark, [withholding, consenting])
    assert_reasons(classified, TIE_KEYS, [("555-0001", None, "no_consent", None), ("555-0002", T0, "superseded", None)])


def test_the_last_tie_break_gives_the_same_record_whatever_the_input_order(spark: SparkSession) -> None:
    a = tied("555-0001", T0, source_file="s3://stedi/a.json", line_number=5)
    b = tied("555-0002", T0, source_file="s3://stedi/b.json", line_number=1)
    expected = [("555-0001", T0, "superseded", None), ("555-0002", T0, None, None)]
    assert_reasons(classify(spark, [a, b]), TIE_KEYS, expected)
    assert_reasons(classify(spark, [b, a]), TIE_KEYS, expected)


def test_a_record_delivered_again_keeps_its_first_arrival(spark: SparkSession) -> None:
    # The consenting record is re-sent after the withdrawing one arrived: the re-sent copy is not newer.
    first = tied("555-0001", T0, source_file="s3://stedi/1.json", line_number=1, arrived_at=ARRIVED)
    withdrawal = tied("555-0002", None, source_file="s3://stedi/2.json", line_number=1, arrived_at=ARRIVED + 1)
    resent = tied("555-0001", T0, source_file="s3://stedi/3.json", line_number=1, arrived_at=ARRIVED + 2)
    classified = classify(spark, [first, withdrawal, resent])
    expected = [("555-0001", T0, "superseded", None), ("555-0002", None, "no_consent", None)]
    assert_reasons(classified, TIE_KEYS, [*expected, ("555-0001", T0, "duplicate", None)])


def test_a_newer_quarantined_record_takes_the_customer_out(spark: SparkSession) -> None:
    older = customer(lastUpdateDate=T0)
    malformed = quarantined({**customer(lastUpdateDate=T1), "shareWithResearchAsOfDate": "2022-06-18"}, 7)
    classified = classify(spark, [older], [malformed])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:7")])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [])


def test_a_valid_record_newer_than_the_quarantined_one_counts_again(spark: SparkSession) -> None:
    older, newest = customer(lastUpdateDate=T0), customer(lastUpdateDate=T2, phone="555-0199")
    malformed = quarantined({**customer(lastUpdateDate=T1), "shareWithResearchAsOfDate": 12}, 7)
    classified = classify(spark, [older, newest], [malformed])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded", None), (ALICE, T2, T0, None, None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newest])


@pytest.mark.parametrize(
    ("valid_update", "reason"),
    [(ARRIVED - 1, "superseded_by_quarantined"), (ARRIVED + 1, None)],
    ids=["updated-before-the-arrival", "updated-after-the-arrival"],
)
def test_an_unreadable_update_time_counts_as_the_files_arrival(
    spark: SparkSession, valid_update: int, reason: str | None
) -> None:
    malformed = quarantined({**customer(), "lastUpdateDate": "yesterday", "shareWithResearchAsOfDate": None}, 3)
    valid = customer(lastUpdateDate=valid_update)
    classified = classify(spark, [valid], [malformed])
    detail = f"{SOURCE_FILE}:3" if reason else None
    assert_reasons(classified, KEYS, [(ALICE, valid_update, T0, reason, detail)])


def test_an_unreadable_registration_date_counts_as_the_update_time(spark: SparkSession) -> None:
    # Same update time; the quarantined line came first, so only its registration (taken as T1) can put it ahead.
    valid = customer(lastUpdateDate=T1, registrationDate=T0, line_number=2)
    malformed = quarantined({**valid, "registrationDate": "yesterday"}, 1)
    classified = classify(spark, [valid], [malformed])
    assert_reasons(classified, KEYS, [(ALICE, T1, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:1")])


def test_quarantined_lines_without_a_readable_email_are_ignored(spark: SparkSession) -> None:
    newer = json.dumps({**customer(lastUpdateDate=T1), "shareWithResearchAsOfDate": "soon"})
    unreadable = [
        "not json",
        newer[:40],
        newer.replace('"email"', '"e-mail"'),
        newer.replace(ALICE, "  "),
        f"{newer} trailing",
        f"[{newer}, {newer}]",
    ]
    quarantine = [quarantined(line, n) for n, line in enumerate(unreadable, start=1)]
    classified = classify(spark, [customer()], quarantine)
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, None, None)])


def test_a_consent_date_after_the_run_is_not_consent_yet(spark: SparkSession) -> None:
    now, later = customer(shareWithResearchAsOfDate=AS_OF), customer(email=BOB, shareWithResearchAsOfDate=AS_OF + 1)
    classified = classify(spark, [now, later])
    assert_reasons(classified, ["email"], [(ALICE, None, None), (BOB, "future_consent", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [now])


def test_each_record_claims_its_device_until_the_customers_next_record(spark: SparkSession) -> None:
    # Alice registered at T0 with SERIAL_1, moved to SERIAL_2 at T2; Bob registered SERIAL_1 at T2.
    alice = [customer(lastUpdateDate=T1), customer(lastUpdateDate=T2, serialNumber=SERIAL_2)]
    bob = customer(email=f" {BOB.upper()}", registrationDate=T2, lastUpdateDate=T2)
    claims = device_claims(frame(spark, CUSTOMER_LANDING.schema, [*alice, bob, bob]))
    expected = spark.createDataFrame(
        [(SERIAL_1, ALICE, T0, T2), (SERIAL_2, ALICE, T2, None), (SERIAL_1, BOB, T2, None)],
        "serialNumber string, identity_key string, claimed_from long, claimed_until long",
    )
    assertDataFrameEqual(claims, expected, checkRowOrder=False)


def test_curated_keeps_the_trusted_customers_with_an_accelerometer_reading(spark: SparkSession) -> None:
    alice, bob = customer(), customer(email=BOB, serialNumber=SERIAL_2)
    trusted = frame(spark, CUSTOMER_TRUSTED.schema, [alice, bob])
    readings = frame(spark, ACCELEROMETER_TRUSTED.schema, [accelerometer(user=f"\u200b{ALICE.upper()}")])
    classified = classify_customer_curated(trusted, readings)
    assert_reasons(classified, ["email"], [(ALICE, None, None), (BOB, "no_accelerometer_readings", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [alice])
