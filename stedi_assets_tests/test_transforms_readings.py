"""Accelerometer and step-trainer readings: identity, ownership and consent, under both consent policies."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import Generator, Mapping, Sequence

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.tables import (
    ACCELEROMETER_LANDING,
    ACCELEROMETER_TRUSTED,
    CUSTOMER_LANDING,
    CUSTOMER_TRUSTED,
    QUARANTINE_OF,
    STEP_TRAINER_LANDING,
    STEP_TRAINER_TRUSTED,
)
from stedi_assets.transforms.classify import kept
from stedi_assets.transforms.customers import classify_customer_trusted
from stedi_assets.transforms.identity import IDENTITY_KEY
from stedi_assets.transforms.readings import (
    OWNER,
    ConsentPolicy,
    classify_accelerometer_trusted,
    classify_step_trainer_trusted,
    with_owner_at_time,
)
from stedi_assets_tests import reference
from stedi_assets_tests.batches import Scenario, ScenarioTest, batched, classified_together
from stedi_assets_tests.builders import (
    ALICE,
    AS_OF,
    BOB,
    CAROL,
    SERIAL_1,
    SERIAL_2,
    SERIAL_3,
    SERIAL_4,
    T0,
    Record,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    frame,
    landed,
    quarantined,
    step_reading,
)

POLICIES = pytest.mark.parametrize("policy", list(ConsentPolicy))
T1 = T0 + 60_000
T2 = T0 + 120_000
READING_KEYS = ["user", "timestamp"]
STEP_KEYS = ["serialNumber", "sensorReadingTime", "line_number"]
# Alice, registered (and holding SERIAL_1) a minute before she consented at T0.
REGISTERED_EARLIER = customer(registrationDate=T0 - 60_000)


def customers(
    spark: SparkSession, records: list[Record], rejected: Sequence[Record] = ()
) -> tuple[DataFrame, DataFrame]:
    """(customer_landing, customer_trusted) of these customer landing records and quarantine rows."""
    landing = frame(spark, CUSTOMER_LANDING.schema, records)
    quarantine = frame(spark, QUARANTINE_OF[CUSTOMER_LANDING.name].schema, rejected)
    trusted = kept(classify_customer_trusted(landing, quarantine, AS_OF)).select(*CUSTOMER_TRUSTED.columns)
    return landing, trusted


def _classify_readings(spark: SparkSession, inputs: Mapping[str, list[Record]], policy: ConsentPolicy) -> DataFrame:
    landing, trusted = customers(spark, inputs["customers"])
    readings = frame(spark, ACCELEROMETER_LANDING.schema, inputs["readings"])
    return classify_accelerometer_trusted(readings, landing, trusted, policy)


def accelerometer_classification(
    customer_records: list[Record], readings: list[Record], policy: ConsentPolicy
) -> Scenario:
    """classify_accelerometer_trusted of these customer and accelerometer landing records."""
    inputs = {"customers": landed(customer_records), "readings": landed(readings)}
    return Scenario(_classify_readings, inputs, (policy,))


def _classify_steps(spark: SparkSession, inputs: Mapping[str, list[Record]], policy: ConsentPolicy) -> DataFrame:
    landing, trusted = customers(spark, inputs["customers"], inputs["rejected"])
    curated = trusted.where(~trusted["email"].isin(*(record["email"] for record in inputs["not_curated"])))
    steps = frame(spark, STEP_TRAINER_LANDING.schema, inputs["readings"])
    return classify_step_trainer_trusted(steps, landing, trusted, curated, policy)


def step_classification(
    customer_records: list[Record],
    readings: list[Record],
    policy: ConsentPolicy,
    not_curated: tuple[str, ...] = (),
    rejected: Sequence[Record] = (),
) -> Scenario:
    """classify_step_trainer_trusted, with every trusted customer curated except those in `not_curated`;
    `rejected`: customer_landing_quarantine rows."""
    inputs = {
        "customers": landed(customer_records),
        "readings": landed(readings),
        "rejected": list(rejected),
        "not_curated": [{"email": email} for email in not_curated],
    }
    return Scenario(_classify_steps, inputs, (policy,))


@batched
def test_accelerometer_since_consent_keeps_readings_from_the_consent_time_on() -> ScenarioTest:
    readings = [accelerometer(timestamp=T0 - 1), accelerometer(timestamp=T0), accelerometer(timestamp=T1)]
    classified = yield accelerometer_classification([customer()], readings, ConsentPolicy.SINCE)
    assert_reasons(
        classified,
        READING_KEYS,
        [(ALICE, T0 - 1, "before_consent", None), (ALICE, T0, None, None), (ALICE, T1, None, None)],
    )
    assert_kept(classified, ACCELEROMETER_TRUSTED.schema, readings[1:])


@batched
def test_accelerometer_flag_keeps_readings_before_consent() -> ScenarioTest:
    readings = [accelerometer(timestamp=T0 - 1), accelerometer(timestamp=T0)]
    classified = yield accelerometer_classification([customer()], readings, ConsentPolicy.FLAG)
    assert_reasons(classified, READING_KEYS, [(ALICE, T0 - 1, None, None), (ALICE, T0, None, None)])
    assert_kept(classified, ACCELEROMETER_TRUSTED.schema, readings)


@POLICIES
@batched
def test_accelerometer_reading_of_an_unknown_user(policy: ConsentPolicy) -> ScenarioTest:
    classified = yield accelerometer_classification([customer()], [accelerometer(user=CAROL, timestamp=T1)], policy)
    assert_reasons(classified, READING_KEYS, [(CAROL, T1, "unknown_user", None)])


@POLICIES
@batched
def test_accelerometer_reading_of_a_customer_without_current_consent(policy: ConsentPolicy) -> ScenarioTest:
    # Bob never consented; Alice consented, then withdrew in her latest record.
    bob = customer(email=BOB, serialNumber=SERIAL_2, shareWithResearchAsOfDate=None)
    alice = [customer(lastUpdateDate=T0), customer(lastUpdateDate=T1, shareWithResearchAsOfDate=None)]
    readings = [accelerometer(user=BOB, timestamp=T1), accelerometer(user=ALICE, timestamp=T1)]
    classified = yield accelerometer_classification([bob, *alice], readings, policy)
    assert_reasons(classified, READING_KEYS, [(BOB, T1, "no_consent", None), (ALICE, T1, "no_consent", None)])


@POLICIES
@batched
def test_accelerometer_duplicate_reading_is_kept_once(policy: ConsentPolicy) -> ScenarioTest:
    reading, other = accelerometer(timestamp=T1), accelerometer(timestamp=T1, x=9.0)
    classified = yield accelerometer_classification([customer()], [reading, reading, other], policy)
    assert_reasons(
        classified,
        [*READING_KEYS, "x"],
        [(ALICE, T1, 1.0, None, None), (ALICE, T1, 1.0, "duplicate", None), (ALICE, T1, 9.0, None, None)],
    )
    assert_kept(classified, ACCELEROMETER_TRUSTED.schema, [reading, other])


@batched
def test_step_since_consent_keeps_readings_from_the_consent_time_on() -> ScenarioTest:
    readings = [step_reading(sensorReadingTime=t) for t in (T0 - 1, T0, T1)]
    classified = yield step_classification([REGISTERED_EARLIER], readings, ConsentPolicy.SINCE)
    assert_reasons(
        classified,
        STEP_KEYS,
        [(SERIAL_1, T0 - 1, 1, "before_consent", None), (SERIAL_1, T0, 2, None, None), (SERIAL_1, T1, 3, None, None)],
    )
    assert_kept(classified, STEP_TRAINER_TRUSTED.schema, readings[1:])


@batched
def test_step_flag_keeps_readings_before_consent() -> ScenarioTest:
    readings = [step_reading(sensorReadingTime=t) for t in (T0 - 1, T0)]
    classified = yield step_classification([REGISTERED_EARLIER], readings, ConsentPolicy.FLAG)
    assert_reasons(classified, STEP_KEYS, [(SERIAL_1, T0 - 1, 1, None, None), (SERIAL_1, T0, 2, None, None)])
    assert_kept(classified, STEP_TRAINER_TRUSTED.schema, readings)


@POLICIES
@batched
def test_step_reading_of_a_device_nobody_owns(policy: ConsentPolicy) -> ScenarioTest:
    classified = yield step_classification(
        [customer()], [step_reading(serialNumber=SERIAL_4, sensorReadingTime=T1)], policy
    )
    assert_reasons(classified, STEP_KEYS, [(SERIAL_4, T1, 1, "unknown_device", None)])


@POLICIES
@batched
def test_step_reading_of_a_device_whose_owner_does_not_consent(policy: ConsentPolicy) -> ScenarioTest:
    bob = customer(email=BOB, serialNumber=SERIAL_2, shareWithResearchAsOfDate=None)
    classified = yield step_classification([bob], [step_reading(serialNumber=SERIAL_2, sensorReadingTime=T1)], policy)
    assert_reasons(classified, STEP_KEYS, [(SERIAL_2, T1, 1, "no_consent", None)])


@POLICIES
@batched
def test_step_reading_of_a_device_whose_owner_is_not_curated(policy: ConsentPolicy) -> ScenarioTest:
    carol = customer(email=CAROL, serialNumber=SERIAL_3)
    readings = [step_reading(serialNumber=SERIAL_3, sensorReadingTime=T1)]
    classified = yield step_classification([carol], readings, policy, not_curated=(CAROL,))
    assert_reasons(classified, STEP_KEYS, [(SERIAL_3, T1, 1, "owner_not_curated", None)])


@POLICIES
@batched
def test_step_duplicate_reading_is_kept_once(policy: ConsentPolicy) -> ScenarioTest:
    reading = step_reading(sensorReadingTime=T1)
    classified = yield step_classification([customer()], [reading, reading], policy)
    assert_reasons(classified, STEP_KEYS, [(SERIAL_1, T1, 1, None, None), (SERIAL_1, T1, 2, "duplicate", None)])
    assert_kept(classified, STEP_TRAINER_TRUSTED.schema, [reading])


@POLICIES
@pytest.mark.parametrize("bob_consent", [T0, None], ids=["both-consent", "one-does-not-consent"])
@batched
def test_step_reading_of_a_device_claimed_by_two_customers_is_given_to_neither(
    policy: ConsentPolicy, bob_consent: int | None
) -> ScenarioTest:
    owners = [customer(), customer(email=BOB, shareWithResearchAsOfDate=bob_consent)]
    reading = step_reading(sensorReadingTime=T1)
    classified = yield step_classification(owners, [reading], policy)
    assert_reasons(
        classified,
        [*STEP_KEYS, "raw"],
        [(SERIAL_1, T1, 1, json.dumps(reading, separators=(",", ":")), "ambiguous_device_owner", "2 owners")],
    )
    assert_kept(classified, STEP_TRAINER_TRUSTED.schema, [])


@POLICIES
@batched
def test_step_device_claimed_only_in_an_older_record_has_one_owner(policy: ConsentPolicy) -> ScenarioTest:
    # Bob's record once named SERIAL_1; his current record names SERIAL_2, so SERIAL_1 is Alice's alone.
    bob = [customer(email=BOB), customer(email=BOB, serialNumber=SERIAL_2, lastUpdateDate=T1)]
    reading = step_reading(sensorReadingTime=T1)
    classified = yield step_classification([customer(), *bob], [reading], policy)
    assert_reasons(classified, STEP_KEYS, [(SERIAL_1, T1, 1, None, None)])
    assert_kept(classified, STEP_TRAINER_TRUSTED.schema, [reading])


@POLICIES
@batched
def test_accelerometer_user_spelled_another_way_is_the_same_customer(policy: ConsentPolicy) -> ScenarioTest:
    # Alice's current record spells her address " Alice@Example.com"; readings spell it in other ways.
    delivered = " Alice@Example.com"
    alice = customer(email=delivered)
    readings = [
        accelerometer(user=f"\u200b{ALICE.upper()}\u00a0", timestamp=T1),
        accelerometer(user=ALICE, timestamp=T1),
        accelerometer(user=f"\t{ALICE}\ufeff", timestamp=T2),
    ]
    classified = yield accelerometer_classification([alice], readings, policy)
    assert_reasons(
        classified,
        READING_KEYS,
        [(delivered, T1, None, None), (delivered, T1, "duplicate", None), (delivered, T2, None, None)],
    )
    assert_kept(
        classified, ACCELEROMETER_TRUSTED.schema, [accelerometer(user=delivered, timestamp=t) for t in (T1, T2)]
    )


@POLICIES
@batched
def test_accelerometer_reading_of_a_customer_whose_consent_starts_after_the_run(policy: ConsentPolicy) -> ScenarioTest:
    alice = customer(shareWithResearchAsOfDate=AS_OF + 1)
    classified = yield accelerometer_classification([alice], [accelerometer(timestamp=AS_OF + 2)], policy)
    assert_reasons(classified, READING_KEYS, [(ALICE, AS_OF + 2, "no_consent", None)])


@POLICIES
@batched
def test_step_reading_belongs_to_whoever_held_the_device_at_its_time(policy: ConsentPolicy) -> ScenarioTest:
    # Bob (no consent) registered SERIAL_1 at T0 and held it until T2, then moved to SERIAL_2; Alice (consenting
    # since T0) registered SERIAL_1 at T2. Her consent must not pull in Bob's readings, nor the one from before
    # Bob registered: he is the device's first known holder.
    bob = [
        customer(email=BOB, shareWithResearchAsOfDate=None),
        customer(email=BOB, shareWithResearchAsOfDate=None, serialNumber=SERIAL_2, lastUpdateDate=T2),
    ]
    alice = customer(registrationDate=T2, lastUpdateDate=T2)
    readings = [step_reading(sensorReadingTime=t) for t in (T0 - 1, T1, T2)]
    classified = yield step_classification([*bob, alice], readings, policy)
    assert_reasons(
        classified,
        STEP_KEYS,
        [
            (SERIAL_1, T0 - 1, 1, "no_consent", None),
            (SERIAL_1, T1, 2, "no_consent", None),
            (SERIAL_1, T2, 3, None, None),
        ],
    )
    assert_kept(classified, STEP_TRAINER_TRUSTED.schema, readings[2:])


@batched
def test_step_readings_before_the_first_claim_are_the_first_holders_and_consent_still_decides() -> Generator[
    tuple[Scenario, Scenario], tuple[DataFrame, DataFrame], None
]:
    # Alice registered SERIAL_1 at T2 with research consent from T1: before T2 nobody had claimed the device, so
    # its readings are hers (its first known holder); under `since` her consent time still decides which count.
    alice = customer(registrationDate=T2, lastUpdateDate=T2, shareWithResearchAsOfDate=T1)
    readings = [step_reading(sensorReadingTime=t) for t in (T0, T1, T2)]
    since, flag = yield (
        step_classification([alice], readings, ConsentPolicy.SINCE),
        step_classification([alice], readings, ConsentPolicy.FLAG),
    )
    assert_reasons(
        since,
        STEP_KEYS,
        [(SERIAL_1, T0, 1, "before_consent", None), (SERIAL_1, T1, 2, None, None), (SERIAL_1, T2, 3, None, None)],
    )
    assert_kept(since, STEP_TRAINER_TRUSTED.schema, readings[1:])
    assert_kept(flag, STEP_TRAINER_TRUSTED.schema, readings)


@POLICIES
@batched
def test_step_readings_before_two_simultaneous_first_claims_are_quarantined(policy: ConsentPolicy) -> ScenarioTest:
    # Alice and Bob both registered SERIAL_1 at T1; Bob moved to SERIAL_2 at T2. Before T1 the device has two
    # first holders (quarantined); from T2 on it is Alice's alone.
    owners = [
        customer(registrationDate=T1, lastUpdateDate=T1, shareWithResearchAsOfDate=T0),
        customer(email=BOB, registrationDate=T1, lastUpdateDate=T1),
        customer(email=BOB, registrationDate=T1, lastUpdateDate=T2, serialNumber=SERIAL_2),
    ]
    readings = [step_reading(sensorReadingTime=t) for t in (T0, T1, T2)]
    classified = yield step_classification(owners, readings, policy)
    assert_reasons(
        classified,
        STEP_KEYS,
        [
            (SERIAL_1, T0, 1, "ambiguous_device_owner", "2 owners"),
            (SERIAL_1, T1, 2, "ambiguous_device_owner", "2 owners"),
            (SERIAL_1, T2, 3, None, None),
        ],
    )


@POLICIES
@batched
def test_step_reading_before_the_first_claim_goes_to_the_earliest_of_two_holders(policy: ConsentPolicy) -> ScenarioTest:
    # Alice registered SERIAL_1 at T1, Bob (no consent) at T2, and neither let it go: before T1 the device is
    # Alice's (its first holder), not ambiguous, and never Bob's; from T2 on both hold it.
    alice = customer(registrationDate=T1, lastUpdateDate=T1, shareWithResearchAsOfDate=T0 - 1)
    bob = customer(email=BOB, registrationDate=T2, lastUpdateDate=T2, shareWithResearchAsOfDate=None)
    readings = [step_reading(sensorReadingTime=t) for t in (T0, T2)]
    classified = yield step_classification([bob, alice], readings, policy)
    assert_reasons(
        classified,
        STEP_KEYS,
        [(SERIAL_1, T0, 1, None, None), (SERIAL_1, T2, 2, "ambiguous_device_owner", "2 owners")],
    )


@POLICIES
@batched
def test_step_readings_of_a_device_handed_over_and_back(policy: ConsentPolicy) -> ScenarioTest:
    # Bob (consenting since before any reading) registered SERIAL_1 at T0 and registered it again at T1 (the same
    # customer twice: still one first holder), handed it to Alice (no consent) at T2 and took it back at T2 + 2;
    # Alice then holds SERIAL_2. Alice registered SERIAL_1 again at T2 + 4 and keeps it: both hold it from then.
    bob_consent = {"email": BOB, "shareWithResearchAsOfDate": T0 - 10}
    owners = [
        customer(**bob_consent),
        customer(**bob_consent, registrationDate=T1, lastUpdateDate=T1),
        customer(**bob_consent, lastUpdateDate=T2, serialNumber=SERIAL_3),
        customer(**bob_consent, lastUpdateDate=T2 + 2),
        *(
            customer(registrationDate=T2, lastUpdateDate=t, serialNumber=serial, shareWithResearchAsOfDate=None)
            for t, serial in ((T2, SERIAL_1), (T2 + 2, SERIAL_2), (T2 + 4, SERIAL_1))
        ),
    ]
    times = (T0 - 5, T1, T2 + 1, T2 + 3, T2 + 4)
    classified = yield step_classification(owners, [step_reading(sensorReadingTime=t) for t in times], policy)
    assert_reasons(
        classified,
        STEP_KEYS,
        [
            (SERIAL_1, T0 - 5, 1, None, None),
            (SERIAL_1, T1, 2, None, None),
            (SERIAL_1, T2 + 1, 3, "no_consent", None),
            (SERIAL_1, T2 + 3, 4, None, None),
            (SERIAL_1, T2 + 4, 5, "ambiguous_device_owner", "2 owners"),
        ],
    )


@POLICIES
@batched
def test_step_reading_of_a_device_its_holder_let_go_has_no_owner(policy: ConsentPolicy) -> ScenarioTest:
    # Alice held SERIAL_1 from T0 until T1, then named SERIAL_2, and nobody claimed SERIAL_1 since: a reading
    # before T0 is hers (first holder), one after T1 is nobody's.
    alice = [customer(), customer(serialNumber=SERIAL_2, lastUpdateDate=T1)]
    readings = [step_reading(sensorReadingTime=t) for t in (T0 - 1, T2)]
    classified = yield step_classification(alice, readings, policy)
    assert_reasons(
        classified,
        STEP_KEYS,
        [
            (SERIAL_1, T0 - 1, 1, None if policy is ConsentPolicy.FLAG else "before_consent", None),
            (SERIAL_1, T2, 2, "no_owner_at_time", None),
        ],
    )


@POLICIES
@batched
def test_a_claim_replaced_at_its_start_makes_nobody_the_first_holder(policy: ConsentPolicy) -> ScenarioTest:
    # Alice named SERIAL_1 at registration (T1) and, in a later line with the same times, SERIAL_2 instead: she
    # never held SERIAL_1. Bob registered it at T2, so it is his from its first reading on.
    alice = [
        customer(registrationDate=T1, lastUpdateDate=T1),
        customer(registrationDate=T1, lastUpdateDate=T1, serialNumber=SERIAL_2),
    ]
    bob = customer(email=BOB, registrationDate=T2, lastUpdateDate=T2, shareWithResearchAsOfDate=None)
    classified = yield step_classification([*alice, bob], [step_reading(sensorReadingTime=T0)], policy)
    assert_reasons(classified, STEP_KEYS, [(SERIAL_1, T0, 1, "no_consent", None)])


@POLICIES
@batched
def test_a_first_holder_whose_newer_record_is_quarantined_keeps_the_early_readings(
    policy: ConsentPolicy,
) -> ScenarioTest:
    # Bob registered SERIAL_1 at T1; his newer record (T2) was quarantined, so he no longer consents, and it
    # neither claims nor ends a claim. Alice registered SERIAL_1 at T2. A reading at T0 is Bob's (its first
    # holder): dropped for his lack of consent, never given to Alice.
    bob = customer(email=BOB, registrationDate=T1, lastUpdateDate=T1)
    newer = quarantined({**bob, "lastUpdateDate": T2, "shareWithResearchAsOfDate": "soon"}, 9)
    alice = customer(registrationDate=T2, lastUpdateDate=T2)
    readings = [step_reading(sensorReadingTime=t) for t in (T0, T1)]
    classified = yield step_classification([bob, alice], readings, policy, rejected=[newer])
    assert_reasons(
        classified, STEP_KEYS, [(SERIAL_1, T0, 1, "no_consent", None), (SERIAL_1, T1, 2, "no_consent", None)]
    )


def test_owners_at_time_agree_with_the_reference_on_random_device_histories(spark: SparkSession) -> None:
    """`with_owner_at_time` and the reference's own reading of the rule, on many random claim histories at once:
    simultaneous first claims, a customer claiming again, hand-overs and back, gaps, and claims that hold for no
    time or end before they start; readings before, at and after every boundary."""
    rng = random.Random(18)
    claims: list[tuple[str, str, int, int | None]] = []
    for _ in range(300):
        serial = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for _ in range(rng.randrange(1, 5)):
            start = T0 + rng.randrange(6)
            claims.append(
                (serial, rng.choice([ALICE, BOB, CAROL]), start, rng.choice([None, start + rng.randrange(-1, 4)]))
            )
    readings = [(serial, T0 + t) for serial in {c[0] for c in claims} for t in range(-1, 10)]
    owned = with_owner_at_time(
        spark.createDataFrame(readings, "serialNumber string, sensorReadingTime long"),
        "sensorReadingTime",
        spark.createDataFrame(
            claims, f"serialNumber string, {IDENTITY_KEY} string, claimed_from long, claimed_until long"
        ),
    )
    actual = {(r["serialNumber"], r["sensorReadingTime"]): (r["_owners"], r[OWNER]) for r in owned.collect()}
    of_serial: dict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
    for serial, who, start, end in claims:
        of_serial[serial].append((who, start, end))
    expected = {}
    for serial, t in readings:
        holders = reference._holders(of_serial[serial], t)
        expected[(serial, t)] = (len(holders), min(holders) if len(holders) == 1 else None)
    assert actual == expected
    assert {owners for owners, _ in expected.values()} == {0, 1, 2, 3}  # every kind of answer is met


@POLICIES
@batched
def test_step_reading_goes_to_its_owner_whatever_the_case_of_their_email(policy: ConsentPolicy) -> ScenarioTest:
    # Alice's two records spell her address differently: one customer, whose device SERIAL_1 stays hers.
    alice = [customer(), customer(email=f" {ALICE.upper()}", lastUpdateDate=T1)]
    classified = yield step_classification(alice, [step_reading(sensorReadingTime=T2)], policy)
    assert_reasons(classified, STEP_KEYS, [(SERIAL_1, T2, 1, None, None)])


# Pairs that would change each other's rows if they met in one classification: both name Alice, SERIAL_1, and the
# same file and lines, so the second's readings would be duplicates of the first's (and, for steps, Bob's claim
# would give the first's reading two owners).
WITH_BOB = [customer(), customer(email=BOB, shareWithResearchAsOfDate=None)]
PAIRS = {
    "accelerometer": [
        accelerometer_classification([customer()], [accelerometer(timestamp=T1)], ConsentPolicy.SINCE),
        accelerometer_classification(
            WITH_BOB, [accelerometer(timestamp=T1), accelerometer(user=BOB, timestamp=T0 - 1)], ConsentPolicy.SINCE
        ),
    ],
    "step_trainer": [
        step_classification([customer()], [step_reading(sensorReadingTime=T1)], ConsentPolicy.SINCE),
        step_classification(
            WITH_BOB,
            [step_reading(sensorReadingTime=T1), step_reading(sensorReadingTime=T0 - 1)],
            ConsentPolicy.SINCE,
            rejected=[quarantined(customer(email=CAROL), 1)],
        ),
    ],
}


@pytest.mark.parametrize("scenarios", PAIRS.values(), ids=PAIRS.keys())
def test_scenarios_classified_together_are_classified_as_each_alone(
    spark: SparkSession, scenarios: list[Scenario]
) -> None:
    for scenario, together in zip(scenarios, classified_together(spark, scenarios), strict=True):
        assertDataFrameEqual(together, classified_together(spark, [scenario])[0], checkRowOrder=False)


@batched
def test_a_wrong_expectation_of_a_batched_scenario_fails() -> ScenarioTest:
    reading = step_reading(sensorReadingTime=T1)
    classified = yield step_classification([customer()], [reading, reading], ConsentPolicy.SINCE)
    with pytest.raises(AssertionError):
        assert_reasons(classified, STEP_KEYS, [(SERIAL_1, T1, 1, None, None), (SERIAL_1, T1, 2, None, None)])
    with pytest.raises(AssertionError):
        assert_kept(classified, STEP_TRAINER_TRUSTED.schema, [reading, reading])
