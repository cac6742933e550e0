"""Customer state and consent: one customer per identity, the latest record wins (ties by delivery, then without
consent), quarantined newer records and future consent fail closed, and who held which device when."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Generator, Mapping, Sequence

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.tables import ACCELEROMETER_TRUSTED, CUSTOMER_LANDING, CUSTOMER_TRUSTED, QUARANTINE_OF
from stedi_assets.transforms.customers import classify_customer_curated, classify_customer_trusted, device_claims
from stedi_assets.transforms.parsing import LINES_SCHEMA, parse_landing
from stedi_assets_tests.batches import Scenario, ScenarioTest, batched, classified_together
from stedi_assets_tests.builders import (
    ALICE,
    ARRIVED,
    AS_OF,
    BOB,
    CAROL,
    SERIAL_1,
    SERIAL_2,
    SOURCE_FILE,
    T0,
    Record,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    frame,
    landed,
    quarantined,
)

T1 = T0 + 60_000
T2 = T0 + 120_000
KEYS = ["email", "lastUpdateDate", "registrationDate"]
TIE_KEYS = ["phone", "shareWithResearchAsOfDate"]
QUARANTINE = QUARANTINE_OF[CUSTOMER_LANDING.name].schema
# Around an e-mail, none of these changes whose it is (U+0085 and U+3000 stand for the rest of Unicode's spaces).
SPACES = [" ", "\t", "\n", "\u00a0", "\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u0085", "\u3000"]


def _classify(spark: SparkSession, inputs: Mapping[str, list[Record]], as_of: int) -> DataFrame:
    landing = frame(spark, CUSTOMER_LANDING.schema, inputs["records"])
    return classify_customer_trusted(landing, frame(spark, QUARANTINE, inputs["quarantine"]), as_of)


def customer_classification(records: list[Record], quarantine: Sequence[Record] = (), as_of: int = AS_OF) -> Scenario:
    """classify_customer_trusted of these customer landing records and customer_landing_quarantine rows."""
    return Scenario(_classify, {"records": landed(records), "quarantine": list(quarantine)}, (as_of,))


def tied(phone: str, consent: int | None, **lineage: object) -> Record:
    """Alice's record at T0 (update and registration), told apart by its phone."""
    return customer(phone=phone, shareWithResearchAsOfDate=consent, **lineage)


@batched
def test_latest_update_wins_whatever_the_line_order() -> ScenarioTest:
    newer, older = customer(lastUpdateDate=T1, phone="555-0199"), customer(lastUpdateDate=T0)
    classified = yield customer_classification([newer, older])
    assert_reasons(classified, KEYS, [(ALICE, T1, T0, None, None), (ALICE, T0, T0, "superseded", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newer])


@batched
def test_registration_date_breaks_a_tie_on_last_update() -> ScenarioTest:
    older, newer = customer(registrationDate=T0, line_number=2), customer(registrationDate=T1, line_number=1)
    classified = yield customer_classification([older, newer])
    assert_reasons(classified, KEYS, [(ALICE, T0, T1, None, None), (ALICE, T0, T0, "superseded", None)])


@batched
def test_a_withdrawal_in_the_latest_record_takes_the_customer_out() -> ScenarioTest:
    consenting, withdrawn = customer(lastUpdateDate=T0), customer(lastUpdateDate=T1, shareWithResearchAsOfDate=None)
    classified = yield customer_classification([consenting, withdrawn])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded", None), (ALICE, T1, T0, "no_consent", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [])


@batched
def test_an_exact_duplicate_is_kept_once() -> ScenarioTest:
    classified = yield customer_classification([customer(), customer()])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, None, None), (ALICE, T0, T0, "duplicate", None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [customer()])


@pytest.mark.parametrize("space", SPACES, ids=[f"U+{ord(c):04X}" for c in SPACES])
@batched
def test_case_and_surrounding_space_do_not_change_the_customer(space: str) -> ScenarioTest:
    delivered = f"{space}  Alice@Example.COM{space}"
    older, newer = customer(), customer(email=delivered, lastUpdateDate=T1)
    bob = customer(email=BOB, serialNumber=SERIAL_2)
    classified = yield customer_classification([older, newer, bob])
    assert_reasons(
        classified,
        KEYS,
        [(ALICE, T0, T0, "superseded", None), (delivered, T1, T0, None, None), (BOB, T0, T0, None, None)],
    )
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newer, bob])


@pytest.mark.parametrize("later_consents", [True, False], ids=["later-consents", "later-withholds"])
@batched
def test_on_an_exact_tie_the_later_line_of_a_file_wins(later_consents: bool) -> ScenarioTest:
    earlier, later = tied("555-0001", None if later_consents else T0), tied("555-0002", T0 if later_consents else None)
    classified = yield customer_classification([earlier, later])
    expected = [
        ("555-0001", earlier["shareWithResearchAsOfDate"], "superseded", None),
        ("555-0002", later["shareWithResearchAsOfDate"], None if later_consents else "no_consent", None),
    ]
    assert_reasons(classified, TIE_KEYS, expected)


@batched
def test_on_an_exact_tie_the_file_that_arrived_later_wins_whatever_its_name() -> ScenarioTest:
    # customer-10.json sorts before customer-9.json, but arrived after it.
    nine = tied("555-0009", None, source_file="s3://stedi/customer-9.json", line_number=1, arrived_at=ARRIVED)
    ten = tied("555-0010", T0, source_file="s3://stedi/customer-10.json", line_number=1, arrived_at=ARRIVED + 1)
    classified = yield customer_classification([nine, ten])
    assert_reasons(classified, TIE_KEYS, [("555-0009", None, "superseded", None), ("555-0010", T0, None, None)])


@pytest.mark.parametrize("withholding_file", ["s3://stedi/a.json", "s3://stedi/b.json"])
@batched
def test_on_a_tie_arrival_cannot_decide_the_record_without_consent_wins(withholding_file: str) -> ScenarioTest:
    # Two files that arrived at the same time: neither the file name nor the line number decides.
    other_file = "s3://stedi/b.json" if withholding_file.endswith("a.json") else "s3://stedi/a.json"
    withholding = tied("555-0001", None, source_file=withholding_file, line_number=1)
    consenting = tied("555-0002", T0, source_file=other_file, line_number=9)
    classified = yield customer_classification([withholding, consenting])
    assert_reasons(classified, TIE_KEYS, [("555-0001", None, "no_consent", None), ("555-0002", T0, "superseded", None)])


@batched
def test_the_last_tie_break_gives_the_same_record_whatever_the_input_order() -> Generator[
    tuple[Scenario, Scenario], tuple[DataFrame, DataFrame], None
]:
    a = tied("555-0001", T0, source_file="s3://stedi/a.json", line_number=5)
    b = tied("555-0002", T0, source_file="s3://stedi/b.json", line_number=1)
    expected = [("555-0001", T0, "superseded", None), ("555-0002", T0, None, None)]
    a_first, b_first = yield (customer_classification([a, b]), customer_classification([b, a]))
    assert_reasons(a_first, TIE_KEYS, expected)
    assert_reasons(b_first, TIE_KEYS, expected)


@batched
def test_a_record_delivered_again_keeps_its_first_arrival() -> ScenarioTest:
    # The consenting record is re-sent after the withdrawing one arrived: the re-sent copy is not newer.
    first = tied("555-0001", T0, source_file="s3://stedi/1.json", line_number=1, arrived_at=ARRIVED)
    withdrawal = tied("555-0002", None, source_file="s3://stedi/2.json", line_number=1, arrived_at=ARRIVED + 1)
    resent = tied("555-0001", T0, source_file="s3://stedi/3.json", line_number=1, arrived_at=ARRIVED + 2)
    classified = yield customer_classification([first, withdrawal, resent])
    expected = [("555-0001", T0, "superseded", None), ("555-0002", None, "no_consent", None)]
    assert_reasons(classified, TIE_KEYS, [*expected, ("555-0001", T0, "duplicate", None)])


@batched
def test_a_newer_quarantined_record_takes_the_customer_out() -> ScenarioTest:
    older = customer(lastUpdateDate=T0)
    malformed = quarantined({**customer(lastUpdateDate=T1), "shareWithResearchAsOfDate": "2022-06-18"}, 7)
    classified = yield customer_classification([older], [malformed])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:7")])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [])


@batched
def test_a_valid_record_newer_than_the_quarantined_one_counts_again() -> ScenarioTest:
    older, newest = customer(lastUpdateDate=T0), customer(lastUpdateDate=T2, phone="555-0199")
    malformed = quarantined({**customer(lastUpdateDate=T1), "shareWithResearchAsOfDate": 12}, 7)
    classified = yield customer_classification([older, newest], [malformed])
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, "superseded", None), (ALICE, T2, T0, None, None)])
    assert_kept(classified, CUSTOMER_TRUSTED.schema, [newest])


@pytest.mark.parametrize(
    ("valid_update", "reason"),
    [(ARRIVED - 1, "superseded_by_quarantined"), (ARRIVED + 1, None)],
    ids=["updated-before-the-arrival", "updated-after-the-arrival"],
)
@batched
def test_an_unreadable_update_time_counts_as_the_files_arrival(valid_update: int, reason: str | None) -> ScenarioTest:
    malformed = quarantined({**customer(), "lastUpdateDate": "yesterday", "shareWithResearchAsOfDate": None}, 3)
    valid = customer(lastUpdateDate=valid_update)
    classified = yield customer_classification([valid], [malformed])
    detail = f"{SOURCE_FILE}:3" if reason else None
    assert_reasons(classified, KEYS, [(ALICE, valid_update, T0, reason, detail)])


@batched
def test_an_unreadable_registration_date_counts_as_the_update_time() -> ScenarioTest:
    # Same update time; the quarantined line came first, so only its registration (taken as T1) can put it ahead.
    valid = customer(lastUpdateDate=T1, registrationDate=T0, line_number=2)
    malformed = quarantined({**valid, "registrationDate": "yesterday"}, 1)
    classified = yield customer_classification([valid], [malformed])
    assert_reasons(classified, KEYS, [(ALICE, T1, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:1")])


@batched
def test_quarantined_lines_without_a_readable_email_are_ignored() -> ScenarioTest:
    newer = json.dumps({**customer(lastUpdateDate=T1), "shareWithResearchAsOfDate": "soon"})
    unreadable = [
        "not json",
        newer[:40],
        newer.replace('"email"', '"e-mail"'),
        newer.replace(ALICE, "  "),
        f"{newer} trailing",
        f"[{newer}, {newer}]",
        newer.replace(f'"{ALICE}"', "42"),  # not text: the parser reads no e-mail from a number
        newer.replace(f'"{ALICE}"', "null"),
        newer.replace(f'"{ALICE}"', f'["{ALICE}"]'),
        f"\u200b{newer}",  # not JSON white space: the parser reads no object
    ]
    quarantine = [quarantined(line, n) for n, line in enumerate(unreadable, start=1)]
    classified = yield customer_classification([customer()], quarantine)
    assert_reasons(classified, KEYS, [(ALICE, T0, T0, None, None)])


def case_spellings(name: str, count: int, rng: random.Random) -> list[str]:
    """`count` spellings of a key in other cases: all of them where there are no more, else the lower, upper,
    capitalised and swapped ones, then random ones."""
    if 2 ** len(name) <= count:
        return ["".join(cased) for cased in itertools.product(*((c.lower(), c.upper()) for c in name))]
    spellings = dict.fromkeys([name.lower(), name.upper(), name.capitalize(), name.swapcase()])
    while len(spellings) < count:
        spellings["".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)] = None
    return list(spellings)[:count]


def json_text(text: str, rng: random.Random, always: str = "") -> str:
    """`text` as a JSON string, about half its characters (and all of `always`) written as escapes: \\uXXXX in
    either hex case (a surrogate pair outside the BMP), or `\\/` for a slash."""
    written = []
    for c in text:
        if c not in always + '"\\' and rng.random() < 0.5:
            written.append(c)
        elif c == "/" and rng.random() < 0.5:
            written.append("\\/")
        else:
            units = c.encode("utf-16-be")
            codes = (f"{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2))
            written += [f"\\u{code.upper() if rng.random() < 0.5 else code}" for code in codes]
    return '"' + "".join(written) + '"'


def object_line(*pairs: tuple[str, str]) -> str:
    """A JSON object of (key, value) pairs written as JSON text, in order, repeated keys included."""
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


def newer_line(email: str, update: int = T1, registration: int = T0, spelled: dict[str, str] | None = None) -> str:
    """A customer line with a malformed consent: a record of `email` (JSON text) updated at `update`, its keys
    written as `spelled` says (JSON text by key), else as the contract names them."""
    keys = {name: json.dumps(name) for name in ("email", "lastUpdateDate", "registrationDate")} | (spelled or {})
    return object_line(
        (keys["email"], email),
        (keys["lastUpdateDate"], str(update)),
        (keys["registrationDate"], str(registration)),
        ('"serialNumber"', json.dumps(SERIAL_1)),
        ('"shareWithResearchAsOfDate"', '"2022-06-18"'),
    )


@batched
def test_a_newer_quarantined_record_counts_whatever_the_spelling_of_its_keys() -> ScenarioTest:
    # Every spelling of "email", one customer each. The even ones spell lastUpdateDate their own way too and
    # arrived before the consenting record was updated, so only their update time, read, makes them newer. The
    # odd ones spell registrationDate their own way, as older than the consenting record's: read, it keeps the
    # consenting record current (unread, it would take the update time and supersede it).
    rng = random.Random(18)
    emails = case_spellings("email", 32, rng)
    updates = case_spellings("lastUpdateDate", len(emails), rng)
    registrations = case_spellings("registrationDate", len(emails), rng)
    people = [f"Customer{i}@Example.com" for i in range(len(emails))]
    consenting = [customer(email=person, lastUpdateDate=T1) for person in people]
    quarantine: list[Record] = []
    expected: list[tuple[str, int, int, str | None, str | None]] = []
    for i, person in enumerate(people):
        email = json.dumps(person.upper() if i % 3 == 0 else person)
        if i % 2 == 0:
            spelled = {"email": json.dumps(emails[i]), "lastUpdateDate": json.dumps(updates[i])}
            line = newer_line(email, update=T2, spelled=spelled)
            expected.append((person, T1, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:{i + 1}"))
        else:
            spelled = {"email": json.dumps(emails[i]), "registrationDate": json.dumps(registrations[i])}
            line = newer_line(email, registration=T0 - 1, spelled=spelled)
            expected.append((person, T1, T0, None, None))
        quarantine.append(quarantined(line, i + 1, arrived_at=T0))
    assert_reasons((yield customer_classification(consenting, quarantine)), KEYS, expected)


# What may stand before a record's brace: what the landing parser reads past (a byte-order mark, which files
# concatenated into one carry in the middle; JSON white space), and what it does not (a second mark, other
# Unicode space), after which the line is not JSON and names nobody.
READ_PAST = ["\ufeff", " ", "\t", "\ufeff \t", " \t  ", "\ufeff\t"]
NOT_READ_PAST = ["\u200b", "\ufeff\ufeff", " \ufeff", "\u00a0", "\u2060", "\u3000"]


@batched
def test_a_newer_quarantined_record_counts_whatever_the_parser_reads_before_its_brace(
    spark: SparkSession,
) -> ScenarioTest:
    # One customer per prefix, each record in the middle of the file (line 2 on), some with white space after.
    prefixes = READ_PAST + NOT_READ_PAST
    people = [f"customer{i}@example.com" for i in range(len(prefixes))]
    lines = {
        n: f"{prefix}{newer_line(json.dumps(person))}{' ' * (n % 2)}"
        for n, (prefix, person) in enumerate(zip(prefixes, people, strict=True), start=2)
    }
    quarantine = [quarantined(line, n) for n, line in lines.items()]
    classified = yield customer_classification([customer(email=person) for person in people], quarantine)
    landing_rows = [(SOURCE_FILE, n, ARRIVED, line) for n, line in lines.items()]
    parsed = parse_landing(spark.createDataFrame(landing_rows, LINES_SCHEMA), CUSTOMER_LANDING)
    objects = {row.line_number for row in parsed.where("reason is null or reason != 'not_json'").collect()}
    assert objects == set(range(2, 2 + len(READ_PAST)))
    expected = [
        (person, T0, T0, *(("superseded_by_quarantined", f"{SOURCE_FILE}:{n}") if n in objects else (None, None)))
        for n, person in enumerate(people, start=2)
    ]
    assert_reasons(classified, KEYS, expected)


@batched
def test_a_newer_quarantined_record_counts_whatever_escapes_spell_its_address_and_keys() -> ScenarioTest:
    # Addresses (an apostrophe, a slash, letters outside ASCII and outside the BMP) with random characters and
    # always the "@" written as JSON escapes, keys too, in random case.
    rng = random.Random(1804)
    local_parts = ["customer", "o'brien", "a/b+c", "zo\u00eb", "\u7528\u6237", "emoji\U0001f600"]
    people = [f"{local}.{i}@ex\u00e4mple.com" for i, local in enumerate(local_parts * 3)]
    quarantine = []
    for n, person in enumerate(people, start=1):
        spelled = {
            name: json_text(rng.choice(case_spellings(name, 8, rng)), rng)
            for name in ("email", "lastUpdateDate", "registrationDate")
        }
        quarantine.append(quarantined(newer_line(json_text(person, rng, always="@"), spelled=spelled), n))
    assert all("\\u0040" in row["raw"].lower() for row in quarantine)
    classified = yield customer_classification([customer(email=person) for person in people], quarantine)
    expected = [
        (person, T0, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:{n}") for n, person in enumerate(people, 1)
    ]
    assert_reasons(classified, KEYS, expected)


@batched
def test_a_quarantined_line_with_a_repeated_key_is_a_newer_record_of_each_customer_it_names(
    spark: SparkSession,
) -> ScenarioTest:
    # A line that gives a key twice (in any case) is quarantined as duplicate_key; it still names its
    # customers, and its time is the latest it gives, not the last (the file arrived before the consenting
    # records were updated: an unread time would not make it newer).
    dave, erin = "dave@example.com", "erin@example.com"
    update, email = '"lastUpdateDate"', '"email"'
    rest = (('"registrationDate"', str(T0)), ('"shareWithResearchAsOfDate"', "null"))
    lines = [
        object_line((email, json.dumps(ALICE)), ('"EMAIL"', json.dumps(ALICE.upper())), (update, str(T1)), *rest),
        object_line((email, json.dumps(BOB)), ('"Email"', json.dumps(CAROL)), (update, str(T1)), *rest),
        object_line((email, json.dumps(dave)), (update, str(T1)), ('"LASTUPDATEDATE"', str(T0 - 1)), *rest),
        object_line((email, json.dumps(erin)), (update, str(T1)), *rest, ('"ShareWithResearchAsOfDate"', str(T0))),
    ]
    people = [ALICE, BOB, CAROL, dave, erin]
    quarantine = [quarantined(line, n, arrived_at=T0 - 2) for n, line in enumerate(lines, start=1)]
    classified = yield customer_classification([customer(email=person) for person in people], quarantine)
    landing_rows = [(SOURCE_FILE, n, ARRIVED, line) for n, line in enumerate(lines, start=1)]
    parsed = parse_landing(spark.createDataFrame(landing_rows, LINES_SCHEMA), CUSTOMER_LANDING)
    assert {row.reason for row in parsed.collect()} == {"duplicate_key"}
    at_line = {ALICE: 1, BOB: 2, CAROL: 2, dave: 3, erin: 4}
    expected = [(person, T0, T0, "superseded_by_quarantined", f"{SOURCE_FILE}:{at_line[person]}") for person in people]
    assert_reasons(classified, KEYS, expected)


@batched
def test_a_consent_date_after_the_run_is_not_consent_yet() -> ScenarioTest:
    now, later = customer(shareWithResearchAsOfDate=AS_OF), customer(email=BOB, shareWithResearchAsOfDate=AS_OF + 1)
    classified = yield customer_classification([now, later])
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


def test_scenarios_classified_together_are_classified_as_each_alone(spark: SparkSession) -> None:
    # Both are Alice's records from the same file and lines: met in one classification, the second's quarantined
    # newer record would supersede the first's, and its records would be the first's duplicates.
    malformed = quarantined({**customer(lastUpdateDate=T2), "shareWithResearchAsOfDate": "soon"}, 2)
    scenarios = [
        customer_classification([customer(lastUpdateDate=T1)]),
        customer_classification([customer(lastUpdateDate=T1), customer(lastUpdateDate=T0)], [malformed]),
    ]
    for scenario, together in zip(scenarios, classified_together(spark, scenarios), strict=True):
        assertDataFrameEqual(together, classified_together(spark, [scenario])[0], checkRowOrder=False)
