"""The training table: each step reading paired with its own owner's accelerometer readings, pseudonymised."""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.tables import ACCELEROMETER_TRUSTED, CUSTOMER_CURATED, MACHINE_LEARNING_CURATED, STEP_TRAINER_TRUSTED
from stedi_assets.transforms.classify import DETAIL, REASON
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets_tests.builders import (
    ALICE,
    BOB,
    SERIAL_2,
    T0,
    Record,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    frame,
    step_reading,
)

KEY = b"test-pseudonym-key"
T1 = T0 + 1
ML_KEYS = ["sensorReadingTime", "distanceFromObject", "x", "subject_key"]
IDENTIFIERS = {"email", "user", "serialNumber", "customerName", "phone", "birthDay"}


def pseudonym(email: str) -> str:
    return hmac.new(KEY, email.encode(), hashlib.sha256).hexdigest()


def classify(spark: SparkSession, steps: list[Record], phone_readings: list[Record]) -> DataFrame:
    """Alice owns SERIAL_1, Bob owns SERIAL_2; both are curated."""
    curated = frame(spark, CUSTOMER_CURATED.schema, [customer(), customer(email=BOB, serialNumber=SERIAL_2)])
    return classify_machine_learning_curated(
        frame(spark, STEP_TRAINER_TRUSTED.schema, steps),
        frame(spark, ACCELEROMETER_TRUSTED.schema, phone_readings),
        curated,
        KEY,
    )


def paired(step: Record, phone: Record, email: str) -> Record:
    """The machine_learning_curated row of a step reading paired with a phone reading of `email`."""
    return {
        "sensorReadingTime": step["sensorReadingTime"],
        "distanceFromObject": step["distanceFromObject"],
        **{axis: phone[axis] for axis in ("x", "y", "z")},
        "subject_key": pseudonym(email),
    }


def test_readings_at_the_same_millisecond_pair_only_within_their_owner(spark: SparkSession) -> None:
    alice_step, bob_step = (
        step_reading(distanceFromObject=10),
        step_reading(serialNumber=SERIAL_2, distanceFromObject=20),
    )
    alice_phone, bob_phone = accelerometer(x=1.0), accelerometer(user=BOB, x=2.0)
    classified = classify(spark, [alice_step, bob_step], [alice_phone, bob_phone])
    expected = [paired(alice_step, alice_phone, ALICE), paired(bob_step, bob_phone, BOB)]
    assert_kept(classified, MACHINE_LEARNING_CURATED.schema, expected)


def test_step_reading_without_an_accelerometer_reading_at_that_millisecond(spark: SparkSession) -> None:
    # Bob has a reading at T1, but the step reading at T1 is Alice's device: it has no match.
    classified = classify(
        spark, [step_reading(sensorReadingTime=T1)], [accelerometer(), accelerometer(user=BOB, timestamp=T1)]
    )
    assert_reasons(classified, ML_KEYS, [(T1, 10, None, pseudonym(ALICE), "no_accelerometer_match", None)])


def test_step_reading_with_two_accelerometer_readings_gives_two_rows(spark: SparkSession) -> None:
    classified = classify(spark, [step_reading()], [accelerometer(x=1.0), accelerometer(x=4.0)])
    assert_reasons(
        classified, ML_KEYS, [(T0, 10, 1.0, pseudonym(ALICE), None, None), (T0, 10, 4.0, pseudonym(ALICE), None, None)]
    )


def test_output_has_no_direct_identifiers(spark: SparkSession) -> None:
    classified = classify(spark, [step_reading()], [accelerometer()])
    assert classified.columns == [*MACHINE_LEARNING_CURATED.columns, REASON, DETAIL]
    assert IDENTIFIERS.isdisjoint(classified.columns)


def test_subject_key_is_the_hmac_sha256_of_the_email(spark: SparkSession) -> None:
    classified = classify(
        spark, [step_reading(), step_reading(serialNumber=SERIAL_2)], [accelerometer(), accelerometer(user=BOB)]
    )
    expected = spark.createDataFrame([(pseudonym(ALICE),), (pseudonym(BOB),)], "subject_key string")
    assertDataFrameEqual(classified.select("subject_key"), expected, checkRowOrder=False)
