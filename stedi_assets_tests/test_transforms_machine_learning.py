"""The training table: each step reading paired with its own owner's accelerometer readings, pseudonymised."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.reasons import DETAIL, REASON
from stedi_assets.tables import (
    ACCELEROMETER_TRUSTED,
    CUSTOMER_LANDING,
    MACHINE_LEARNING_CURATED,
    STEP_TRAINER_TRUSTED,
)
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.pseudonyms import subject_keys, subjects_frame
from stedi_assets_tests.batches import Scenario, ScenarioTest, batched, classified_together
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
    landed,
    step_reading,
)

KEY = b"test-pseudonym-key"
T1 = T0 + 1
T2 = T0 + 2
ML_KEYS = ["sensorReadingTime", "distanceFromObject", "x", "subject_key"]
IDENTIFIERS = {"email", "user", "serialNumber", "customerName", "phone", "birthDay"}
# Alice owns SERIAL_1, Bob owns SERIAL_2; both are curated.
OWNERS = [customer(), customer(email=BOB, serialNumber=SERIAL_2)]


def pseudonym(email: str) -> str:
    return hmac.new(KEY, email.encode(), hashlib.sha256).hexdigest()


def _classify(spark: SparkSession, inputs: Mapping[str, list[Record]]) -> DataFrame:
    subjects = subjects_frame(
        spark, {subject["identity_key"]: subject["subject_key"] for subject in inputs["subjects"]}
    )
    return classify_machine_learning_curated(
        frame(spark, STEP_TRAINER_TRUSTED.schema, inputs["steps"]),
        frame(spark, ACCELEROMETER_TRUSTED.schema, inputs["phone_readings"]),
        frame(spark, CUSTOMER_LANDING.schema, inputs["owners"]),
        subjects,
    )


def ml_classification(steps: list[Record], phone_readings: list[Record], owners: list[Record] = OWNERS) -> Scenario:
    """classify_machine_learning_curated of these trusted readings and customer landing records, Alice and Bob
    pseudonymised."""
    subjects = [
        {"identity_key": identity, "subject_key": subject}
        for identity, subject in subject_keys([ALICE, BOB], KEY).items()
    ]
    inputs = {"steps": steps, "phone_readings": phone_readings, "owners": landed(owners), "subjects": subjects}
    return Scenario(_classify, inputs)


def paired(step: Record, phone: Record, email: str) -> Record:
    """The machine_learning_curated row of a step reading paired with a phone reading of `email`."""
    return {
        "sensorReadingTime": step["sensorReadingTime"],
        "distanceFromObject": step["distanceFromObject"],
        **{axis: phone[axis] for axis in ("x", "y", "z")},
        "subject_key": pseudonym(email),
    }


@batched
def test_readings_at_the_same_millisecond_pair_only_within_their_owner() -> ScenarioTest:
    alice_step, bob_step = (
        step_reading(distanceFromObject=10),
        step_reading(serialNumber=SERIAL_2, distanceFromObject=20),
    )
    alice_phone, bob_phone = accelerometer(x=1.0), accelerometer(user=BOB, x=2.0)
    classified = yield ml_classification([alice_step, bob_step], [alice_phone, bob_phone])
    expected = [paired(alice_step, alice_phone, ALICE), paired(bob_step, bob_phone, BOB)]
    assert_kept(classified, MACHINE_LEARNING_CURATED.schema, expected)


@batched
def test_step_reading_without_an_accelerometer_reading_at_that_millisecond() -> ScenarioTest:
    # Bob has a reading at T1, but the step reading at T1 is Alice's device: it has no match.
    classified = yield ml_classification(
        [step_reading(sensorReadingTime=T1)], [accelerometer(), accelerometer(user=BOB, timestamp=T1)]
    )
    assert_reasons(classified, ML_KEYS, [(T1, 10, None, pseudonym(ALICE), "no_accelerometer_match", None)])


@batched
def test_step_reading_with_two_accelerometer_readings_gives_two_rows() -> ScenarioTest:
    classified = yield ml_classification([step_reading()], [accelerometer(x=1.0), accelerometer(x=4.0)])
    assert_reasons(
        classified, ML_KEYS, [(T0, 10, 1.0, pseudonym(ALICE), None, None), (T0, 10, 4.0, pseudonym(ALICE), None, None)]
    )


@batched
def test_output_has_no_direct_identifiers() -> ScenarioTest:
    classified = yield ml_classification([step_reading()], [accelerometer()])
    assert classified.columns == [*MACHINE_LEARNING_CURATED.columns, REASON, DETAIL]
    assert IDENTIFIERS.isdisjoint(classified.columns)


@batched
def test_subject_key_is_the_hmac_sha256_of_the_email(spark: SparkSession) -> ScenarioTest:
    classified = yield ml_classification(
        [step_reading(), step_reading(serialNumber=SERIAL_2)], [accelerometer(), accelerometer(user=BOB)]
    )
    expected = spark.createDataFrame([(pseudonym(ALICE),), (pseudonym(BOB),)], "subject_key string")
    assertDataFrameEqual(classified.select("subject_key"), expected, checkRowOrder=False)


@batched
def test_a_step_reading_pairs_with_whoever_held_the_device_at_its_time() -> ScenarioTest:
    # Bob held SERIAL_1 until T2 (then SERIAL_2); Alice registered SERIAL_1 at T2. Both read at T1 and T2.
    owners = [
        customer(email=BOB),
        customer(email=BOB, serialNumber=SERIAL_2, lastUpdateDate=T2),
        customer(registrationDate=T2, lastUpdateDate=T2),
    ]
    steps = [step_reading(sensorReadingTime=T1), step_reading(sensorReadingTime=T2)]
    phone = [
        accelerometer(user=user, timestamp=t, x=x)
        for user, t, x in [(BOB, T1, 1.0), (ALICE, T1, 2.0), (BOB, T2, 3.0), (ALICE, T2, 4.0)]
    ]
    classified = yield ml_classification(steps, phone, owners)
    assert_reasons(
        classified, ML_KEYS, [(T1, 10, 1.0, pseudonym(BOB), None, None), (T2, 10, 4.0, pseudonym(ALICE), None, None)]
    )


@batched
def test_a_step_reading_before_the_first_claim_pairs_with_the_first_holder() -> ScenarioTest:
    # Bob registered SERIAL_1 at T1 and moved to SERIAL_2 at T2, when Alice registered SERIAL_1: the reading at
    # T0, before anyone claimed the device, is Bob's (its first known holder), never Alice's.
    owners = [
        customer(email=BOB, registrationDate=T1, lastUpdateDate=T1),
        customer(email=BOB, registrationDate=T1, lastUpdateDate=T2, serialNumber=SERIAL_2),
        customer(registrationDate=T2, lastUpdateDate=T2),
    ]
    phone = [accelerometer(user=BOB, x=1.0), accelerometer(x=2.0)]
    classified = yield ml_classification([step_reading()], phone, owners)
    assert_reasons(classified, ML_KEYS, [(T0, 10, 1.0, pseudonym(BOB), None, None)])


@batched
def test_subject_key_is_the_same_for_every_spelling_of_the_email() -> ScenarioTest:
    owners = [customer(email=f"\u00a0{ALICE.upper()}"), customer(email=BOB, serialNumber=SERIAL_2)]
    phone = [accelerometer(user=f"{ALICE.title()}\u200b")]
    classified = yield ml_classification([step_reading()], phone, owners)
    assert_reasons(classified, ML_KEYS, [(T0, 10, 1.0, pseudonym(ALICE), None, None)])


def test_scenarios_classified_together_are_classified_as_each_alone(spark: SparkSession) -> None:
    # Both pair Alice's step reading of SERIAL_1 at T0: met in one classification, each would also pair with the
    # other scenario's phone reading.
    scenarios = [
        ml_classification([step_reading()], [accelerometer(x=1.0)]),
        ml_classification([step_reading(), step_reading(serialNumber=SERIAL_2)], [accelerometer(x=2.0)]),
    ]
    for scenario, together in zip(scenarios, classified_together(spark, scenarios), strict=True):
        assertDataFrameEqual(together, classified_together(spark, [scenario])[0], checkRowOrder=False)
