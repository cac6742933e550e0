"""parse_landing: one row per line, each defect named by its reason and detail; descriptive fields never reject."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from stedi_assets.tables import ACCELEROMETER_LANDING, CUSTOMER_LANDING, STEP_TRAINER_LANDING, ZoneTable
from stedi_assets.transforms.parsing import (
    DESCRIPTIVE_FAILURES,
    LINES_SCHEMA,
    FileFault,
    given_values,
    parse_landing,
    read_objects,
    with_file_faults,
    with_plain,
)
from stedi_assets_tests.batches import Scenario, ScenarioTest, batched, classified_together
from stedi_assets_tests.builders import (
    ALICE,
    ARRIVED,
    SOURCE_FILE,
    T0,
    Record,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    landed,
    step_reading,
)


def _parse(spark: SparkSession, inputs: Mapping[str, list[Record]], table: ZoneTable) -> DataFrame:
    rows = [tuple(line[name] for name in LINES_SCHEMA.fieldNames()) for line in inputs["lines"]]
    return parse_landing(spark.createDataFrame(rows, LINES_SCHEMA), table)


def parsing(table: ZoneTable, raws: Sequence[str]) -> Scenario:
    """parse_landing of `raws` as lines 1.. of SOURCE_FILE (row-wise: no rule reads another line)."""
    lines = landed([{"raw": raw} for raw in raws])
    return Scenario(_parse, {"lines": lines}, (table,), row_wise=True)


def without(record: Record, *names: str) -> Record:
    return {name: value for name, value in record.items() if name not in names}


XYZ = (("x", 1.0), ("y", 2.0), ("z", 3.0))


def object_text(*pairs: tuple[str, object]) -> str:
    """A JSON object of these key/value pairs in order, repeated keys included (json.dumps cannot write one)."""
    return "{" + ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs) + "}"


def descriptive_failures(parsed: DataFrame) -> list[tuple[int, list[str]]]:
    return sorted((row.line_number, sorted(row[DESCRIPTIVE_FAILURES])) for row in parsed.collect())


@batched
def test_parse_keeps_a_valid_line_with_its_lineage() -> ScenarioTest:
    parsed = yield parsing(STEP_TRAINER_LANDING, [json.dumps(step_reading())])
    assert_reasons(parsed, ["line_number", "raw"], [(1, json.dumps(step_reading()), None, None)])
    assert_kept(parsed, STEP_TRAINER_LANDING.schema, [step_reading()])


@batched
def test_parse_accepts_the_timeStamp_spelling_for_accelerometer() -> ScenarioTest:
    record = without(accelerometer(), "timestamp") | {"timeStamp": T0}
    parsed = yield parsing(ACCELEROMETER_LANDING, [json.dumps(record)])
    assert_kept(parsed, ACCELEROMETER_LANDING.schema, [accelerometer()])


@batched
def test_parse_allows_nullable_customer_fields_to_be_absent() -> ScenarioTest:
    nullable = [
        "customerName",
        "phone",
        "birthDay",
        "shareWithResearchAsOfDate",
        "shareWithPublicAsOfDate",
        "shareWithFriendsAsOfDate",
    ]
    parsed = yield parsing(CUSTOMER_LANDING, [json.dumps(without(customer(), *nullable))])
    assert_kept(parsed, CUSTOMER_LANDING.schema, [customer(**dict.fromkeys(nullable))])


@pytest.mark.parametrize("raw", ["", "   "], ids=["empty", "spaces"])
@batched
def test_parse_filters_a_blank_line(raw: str) -> ScenarioTest:
    assert_reasons((yield parsing(ACCELEROMETER_LANDING, [raw])), ["line_number"], [(1, "blank_line", None)])


@batched
def test_parse_rejects_a_line_that_is_not_json() -> ScenarioTest:
    parsed = yield parsing(ACCELEROMETER_LANDING, ["user=alice@example.com timestamp=1655564444000"])
    assert_reasons(parsed, ["line_number"], [(1, "not_json", None)])


@batched
def test_parse_rejects_a_cut_off_line() -> ScenarioTest:
    cut_off = json.dumps(accelerometer())[:30]
    assert_reasons((yield parsing(ACCELEROMETER_LANDING, [cut_off])), ["line_number"], [(1, "not_json", None)])


@pytest.mark.parametrize(
    "raw",
    ["42", '"alice@example.com"', "true", "null", "[1, 2]", json.dumps([accelerometer()])],
    ids=["number", "string", "boolean", "null", "array", "array-of-records"],
)
@batched
def test_parse_rejects_a_json_value_that_is_not_an_object(raw: str) -> ScenarioTest:
    assert_reasons((yield parsing(ACCELEROMETER_LANDING, [raw])), ["line_number"], [(1, "not_json", None)])


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(accelerometer()) + json.dumps(accelerometer(user="bob@example.com")),
        json.dumps(accelerometer()) + " x",
        json.dumps(accelerometer()) + "]",
        json.dumps(accelerometer()) + "] x",
        json.dumps(accelerometer()) + "}",
        json.dumps(accelerometer()) + " } x",
        json.dumps(accelerometer()) + "[",
        json.dumps(accelerometer()) + ", [",
        json.dumps(accelerometer()) + "}, {",
    ],
    ids=[
        "two-records-on-one-line",
        "trailing-garbage",
        "bracket",
        "bracket-garbage",
        "brace",
        "brace-garbage",
        "open-bracket",
        "second-array",
        "second-object",
    ],
)
@batched
def test_parse_rejects_content_after_the_json_object(raw: str) -> ScenarioTest:
    # Keeping the first object would silently drop the second record of a line that lost its newline.
    assert_reasons((yield parsing(ACCELEROMETER_LANDING, [raw])), ["line_number"], [(1, "not_json", None)])


@pytest.mark.parametrize(
    ("table", "record", "field"),
    [
        (ACCELEROMETER_LANDING, accelerometer(timestamp="yesterday"), "timestamp"),
        (ACCELEROMETER_LANDING, accelerometer(x=True), "x"),
        (ACCELEROMETER_LANDING, accelerometer(y={"value": 2.0}), "y"),
        (STEP_TRAINER_LANDING, step_reading(distanceFromObject=10.5), "distanceFromObject"),
        (STEP_TRAINER_LANDING, step_reading(distanceFromObject=2**31), "distanceFromObject"),
        (CUSTOMER_LANDING, customer(lastUpdateDate="2022-06-18"), "lastUpdateDate"),
        (CUSTOMER_LANDING, customer(lastUpdateDate=float(T0)), "lastUpdateDate"),
        (CUSTOMER_LANDING, customer(lastUpdateDate=True), "lastUpdateDate"),
        (CUSTOMER_LANDING, customer(email=42), "email"),
        (CUSTOMER_LANDING, customer(email={"address": "a@b"}), "email"),
        (ACCELEROMETER_LANDING, accelerometer(user=["alice@example.com"]), "user"),
        (CUSTOMER_LANDING, customer(shareWithResearchAsOfDate="2022-06-18"), "shareWithResearchAsOfDate"),
    ],
    ids=[
        "text-timestamp",
        "boolean-double",
        "object-double",
        "fractional-integer",
        "integer-overflow",
        "date-text",
        "float-for-long",
        "boolean-for-long",
        "number-for-text",
        "object-for-text",
        "array-for-text",
        "text-consent",
    ],
)
@batched
def test_parse_rejects_a_value_of_the_wrong_type(table: ZoneTable, record: Record, field: str) -> ScenarioTest:
    assert_reasons((yield parsing(table, [json.dumps(record)])), ["line_number"], [(1, "wrong_type", field)])


@pytest.mark.parametrize(
    ("table", "record", "field"),
    [
        (ACCELEROMETER_LANDING, without(accelerometer(), "timestamp"), "timestamp"),
        (ACCELEROMETER_LANDING, accelerometer(timestamp=None), "timestamp"),
        (STEP_TRAINER_LANDING, without(step_reading(), "serialNumber"), "serialNumber"),
        (CUSTOMER_LANDING, without(customer(), "email"), "email"),
        (CUSTOMER_LANDING, without(customer(), "lastUpdateDate"), "lastUpdateDate"),
    ],
    ids=["absent-timestamp", "null-timestamp", "absent-serial", "absent-email", "absent-last-update"],
)
@batched
def test_parse_rejects_a_missing_required_field(table: ZoneTable, record: Record, field: str) -> ScenarioTest:
    assert_reasons((yield parsing(table, [json.dumps(record)])), ["line_number"], [(1, "missing_field", field)])


@pytest.mark.parametrize(
    ("table", "record", "detail"),
    [
        (STEP_TRAINER_LANDING, step_reading(distanceFromObject=-1), "distanceFromObject:greater_than_or_equal_to"),
        (ACCELEROMETER_LANDING, accelerometer(timestamp=T0 // 1000), "timestamp:greater_than_or_equal_to"),
        (ACCELEROMETER_LANDING, accelerometer(timestamp=T0 * 1000), "timestamp:less_than_or_equal_to"),
        (STEP_TRAINER_LANDING, step_reading(serialNumber="not-a-uuid"), "serialNumber:str_matches"),
        (CUSTOMER_LANDING, customer(email="alice.example.com"), "email:str_matches"),
        (
            CUSTOMER_LANDING,
            customer(shareWithResearchAsOfDate=T0 // 1000),
            "shareWithResearchAsOfDate:greater_than_or_equal_to",
        ),
    ],
    ids=["negative-distance", "epoch-seconds", "epoch-microseconds", "bad-serial", "bad-email", "consent-in-seconds"],
)
@batched
def test_parse_rejects_a_value_outside_the_contract(table: ZoneTable, record: Record, detail: str) -> ScenarioTest:
    assert_reasons((yield parsing(table, [json.dumps(record)])), ["line_number"], [(1, "invalid_value", detail)])


@pytest.mark.parametrize(
    "raw",
    ["{'user': 'alice@example.com'}", '{"user": "alice@example.com", "x": NaN}', '{"x": 1} // comment', "{user: 1}"],
    ids=["single-quotes", "nan", "comment", "unquoted-key"],
)
@batched
def test_parse_reads_strict_json_only(raw: str) -> ScenarioTest:
    assert_reasons((yield parsing(ACCELEROMETER_LANDING, [raw])), ["line_number"], [(1, "not_json", None)])


@batched
def test_parse_ignores_a_byte_order_mark_at_the_start_of_a_line() -> ScenarioTest:
    parsed = yield parsing(ACCELEROMETER_LANDING, ["\ufeff" + json.dumps(accelerometer()), "\ufeff"])
    assert_reasons(parsed, ["line_number"], [(1, None, None), (2, "blank_line", None)])
    assert_kept(parsed, ACCELEROMETER_LANDING.schema, [accelerometer()])
    # raw keeps the line as delivered
    assert parsed.where("line_number = 1").first().raw.startswith("\ufeff")


@batched
def test_parse_matches_keys_to_columns_case_insensitively() -> Generator[
    tuple[Scenario, Scenario], tuple[DataFrame, DataFrame], None
]:
    shouting = {name.upper(): value for name, value in customer().items()}
    mixed = without(accelerometer(), "timestamp", "user") | {"timeStamp": T0, "User": ALICE}
    parsed, parsed_mixed = yield (
        parsing(CUSTOMER_LANDING, [json.dumps(shouting)]),
        parsing(ACCELEROMETER_LANDING, [json.dumps(mixed)]),
    )
    assert_kept(parsed, CUSTOMER_LANDING.schema, [customer()])
    assert_kept(parsed_mixed, ACCELEROMETER_LANDING.schema, [accelerometer()])


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (object_text(("user", ALICE), ("timestamp", 1), ("timestamp", T0), *XYZ), "timestamp"),
        (object_text(("user", ALICE), ("timestamp", T0), ("timeStamp", T0), *XYZ), "timestamp"),
        (object_text(("User", "a@b.c"), ("user", ALICE), ("timestamp", T0), *XYZ), "user"),
        (object_text(("user", ALICE), ("timestamp", T0), *XYZ, ("note", 1), ("NOTE", 2)), "NOTE"),
    ],
    ids=["same-spelling", "case-variant", "case-variant-first", "unknown-key"],
)
@batched
def test_parse_quarantines_an_object_with_a_duplicated_key(raw: str, detail: str) -> ScenarioTest:
    # Taking either value silently would be a guess; the detail names the column, or the key as delivered.
    assert_reasons((yield parsing(ACCELEROMETER_LANDING, [raw])), ["line_number"], [(1, "duplicate_key", detail)])


def test_given_values_reads_every_value_of_a_key_as_the_parser_types_it(spark: SparkSession) -> None:
    # What reads quarantined lines again (fail closed) reads them this way: every spelling of the key, each
    # time it is given, typed as parse_landing types it (null where it would not read it), after a BOM.
    lines = [
        "\ufeff" + object_text(("Timestamp", T0), ("user", ALICE), ("TIMESTAMP", "1"), ("timeStamp", 1.5), ("x", 1)),
        " " + object_text(("USER", 42), ("uSeR", "b@c.d")),
        object_text(("x", 1)),
        "not json",
    ]
    rows = [(SOURCE_FILE, n, ARRIVED, raw) for n, raw in enumerate(lines, start=1)]
    objects = read_objects(spark.createDataFrame(rows, LINES_SCHEMA), ACCELEROMETER_LANDING)
    values = objects.select(
        "line_number", given_values("timestamp", T.LongType()), given_values("user", T.StringType())
    )
    assert sorted(tuple(row) for row in values.collect()) == [
        (1, [T0, None, None], [ALICE]),
        (2, [], [None, "b@c.d"]),
        (3, [], []),
        (4, None, None),
    ]


@batched
def test_parse_does_not_fail_on_keys_that_look_like_its_internal_names() -> ScenarioTest:
    # Rebuilding the object's map must never meet a repeated key (that would fail the whole job).
    raw = json.dumps(accelerometer())[:-1] + ', "r1": 1, "kuser": 2, "": 3}'
    dup = object_text(("user", ALICE), ("user", "b@c.d"), ("r1", 0), ("timestamp", T0), *XYZ)
    # Keys holding NUL (the separator keys are lower-cased with) take the slower path, to the same result.
    nul = object_text(("US\u0000ER", 1), ("User", ALICE), ("timestamp", T0), *XYZ)
    nul_dup = object_text(("a\u0000b", 1), ("A\u0000B", 2), ("user", ALICE), ("timestamp", T0), *XYZ)
    parsed = yield parsing(ACCELEROMETER_LANDING, [raw, dup, nul, nul_dup])
    expected = [(1, None, None), (2, "duplicate_key", "user"), (3, None, None), (4, "duplicate_key", "A\u0000B")]
    assert_reasons(parsed, ["line_number"], expected)
    assert_kept(parsed, ACCELEROMETER_LANDING.schema, [accelerometer(), accelerometer(line_number=3)])


@batched
def test_parse_rejects_a_value_that_spark_variant_cannot_hold() -> ScenarioTest:
    nested_duplicate = json.dumps(accelerometer())[:-1] + ', "extra": {"a": 1, "a": 2}}'
    lone_surrogate = json.dumps(accelerometer())[:-1] + ', "extra": "\\ud800"}'
    parsed = yield parsing(ACCELEROMETER_LANDING, [nested_duplicate, lone_surrogate])
    assert_reasons(parsed, ["line_number"], [(1, "not_json", None), (2, "not_json", None)])


@pytest.mark.parametrize(
    ("fields", "kept", "failures"),
    [
        ({"birthDay": "1990-13-45"}, {"birthDay": "1990-13-45"}, ["birthDay:str_matches"]),
        ({"birthDay": "01/02/1990"}, {"birthDay": "01/02/1990"}, ["birthDay:str_matches"]),
        ({"phone": "(801) 555-0100"}, {"phone": "(801) 555-0100"}, ["phone:str_matches"]),
        ({"customerName": ""}, {"customerName": ""}, ["customerName:str_matches"]),
        ({"customerName": 42}, {"customerName": "42"}, ["customerName:wrong_type"]),
        ({"phone": {"home": "555"}}, {"phone": '{"home":"555"}'}, ["phone:wrong_type"]),
        (
            {"shareWithPublicAsOfDate": "2022-06-18"},
            {"shareWithPublicAsOfDate": None},
            ["shareWithPublicAsOfDate:wrong_type"],
        ),
        (
            {"shareWithFriendsAsOfDate": T0 // 1000},
            {"shareWithFriendsAsOfDate": T0 // 1000},
            ["shareWithFriendsAsOfDate:greater_than_or_equal_to"],
        ),
        (
            {"birthDay": "1990-13-45", "phone": "n/a", "customerName": " "},
            {"birthDay": "1990-13-45", "phone": "n/a", "customerName": " "},
            ["birthDay:str_matches", "customerName:str_matches", "phone:str_matches"],
        ),
    ],
    ids=[
        "impossible-date",
        "us-date",
        "formatted-phone",
        "empty-name",
        "number-for-name",
        "object-for-phone",
        "text-for-public-date",
        "public-date-in-seconds",
        "several",
    ],
)
@batched
def test_a_descriptive_field_that_fails_its_rule_keeps_the_row(
    fields: Record, kept: Record, failures: list[str]
) -> ScenarioTest:
    """The value is kept as delivered (a non-string as its JSON text), or null where the column's type
    cannot hold it; the failed rules are listed on the row."""
    parsed = yield parsing(CUSTOMER_LANDING, [json.dumps(customer(**fields))])
    assert_reasons(parsed, ["line_number"], [(1, None, None)])
    assert_kept(parsed, CUSTOMER_LANDING.schema, [customer(**kept)])
    assert descriptive_failures(parsed) == [(1, failures)]


@batched
def test_a_valid_row_has_no_descriptive_failures() -> ScenarioTest:
    parsed = yield parsing(CUSTOMER_LANDING, [json.dumps(customer()), json.dumps(customer(phone="+18015550100"))])
    assert descriptive_failures(parsed) == [(1, []), (2, [])]


@batched
def test_a_descriptive_failure_does_not_hide_a_required_one() -> ScenarioTest:
    record = customer(birthDay="1990-13-45", email="not-an-email")
    assert_reasons(
        (yield parsing(CUSTOMER_LANDING, [json.dumps(record)])),
        ["line_number"],
        [(1, "invalid_value", "email:str_matches")],
    )


def test_file_faults_replace_the_lines_of_their_file(spark: SparkSession) -> None:
    lines = [
        ("good.json", 1, 10, json.dumps(step_reading())),
        ("changed.json", 1, 20, json.dumps(step_reading())),
        ("changed.json", 2, 20, "not json"),
    ]
    parsed = parse_landing(spark.createDataFrame(lines, LINES_SCHEMA), STEP_TRAINER_LANDING)
    faults = {
        "changed.json": FileFault("changed_during_read", "changed while it was read: it was deleted"),
        "broken.json.gz": FileFault("corrupt_file", "truncated gzip"),
    }
    result = with_file_faults(parsed, STEP_TRAINER_LANDING, faults, {"changed.json": 20, "broken.json.gz": 30})
    assert result.columns == parsed.columns
    assert_reasons(
        result,
        ["source_file", "line_number", "arrived_at"],
        [
            ("good.json", 1, 10, None, None),
            ("changed.json", None, 20, "changed_during_read", "changed while it was read: it was deleted"),
            ("broken.json.gz", None, 30, "corrupt_file", "truncated gzip"),
        ],
    )


def test_scenarios_classified_together_are_classified_as_each_alone(spark: SparkSession) -> None:
    # The same lines of the same file, valid and not: met without their own files, their rows could not be told apart.
    scenarios = [
        parsing(CUSTOMER_LANDING, [json.dumps(customer()), "not json"]),
        parsing(CUSTOMER_LANDING, [json.dumps(customer(email="alice.example.com")), json.dumps(customer(phone="n/a"))]),
    ]
    for scenario, together in zip(scenarios, classified_together(spark, scenarios), strict=True):
        assertDataFrameEqual(together, classified_together(spark, [scenario])[0], checkRowOrder=False)


# Lines at the edges of the typed reading (`with_plain`): each is read the same whichever reading takes it.
EDGE_LINES = {
    ACCELEROMETER_LANDING.name: [
        '{"user":"a@b.com","timestamp":1675555215000,"x":1.661,"y":-0.278,"z":0}',  # plain
        '{ "user" : "a@b.com" ,\t"timeStamp": 1675555215000, "x": 1, "y": 2.50, "z": 3 }',  # plain, spaced
        '{"user":"caf\\u00e9@b.com","timestamp":1675555215000,"x":0.1,"y":0.2,"z":0.3}',  # plain, an escape
        '{"user":"a\\"b\\\\\\/c@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}',  # plain, quote escapes
        '{"user":"a@b.com","timestamp":1675555215000,"x":-0,"y":-0.0,"z":0.000}',  # negative zeros
        '{"user":"a@b.com","timestamp":1675555215000,"x":1e2,"y":1E-2,"z":0.1e1}',  # exponents
        '{"user":"a@b.com","timestamp":1675555215000,"x":0.1234567890123456,"y":123456789012345.6,"z":1}',
        '{"user":"a@b.com","timestamp":1675555215000,"x":99999999999999999999,"y":2,"z":3}',  # a long's range
        '{"user":"a@b.com","timestamp":1675555215000.0,"x":1,"y":2,"z":3}',  # a fraction for a long
        '{"user":"a@b.com","timestamp":9223372036854775808,"x":1,"y":2,"z":3}',  # past a long
        '{"user":"a@b.com","timestamp":"1675555215000","x":1,"y":2,"z":3}',  # text for a number
        '{"user":42,"timestamp":1675555215000,"x":1,"y":2,"z":3}',  # a number for text
        '{"user":null,"timestamp":1675555215000,"x":1,"y":2,"z":3}',  # null
        '{"user":"a@b.com","timestamp":1675555215000,"x":1,"y":2}',  # a column missing
        '{"user":"a@b.com","timestamp":1675555215000,"timeStamp":1675555215001,"x":1,"y":2,"z":3}',  # both spellings
        '{"user":"a@b.com","timestamp":1675555215000,"x":1,"x":2,"y":2,"z":3}',  # a repeated key
        '{"user":"a@b.com","TIMESTAMP":1675555215000,"x":1,"y":2,"z":3}',  # another case
        '{"user":"a@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3,"note":"x"}',  # an unknown key
        '{"user":"\\ud83d\\ude00@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}',  # a surrogate pair
        '{"user":"\\ud83d@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}',  # a lone surrogate
        '{"user":"a\\",\\"x\\":5,\\"q\\":\\"@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}',  # keys in text
        '{"user":"a@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3} ',  # trailing space
        '{"user":"a@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3} x',  # trailing garbage
        '{"user":"a@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}\u2028',  # a Unicode line separator
        '\ufeff{"user":"a@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}',  # a byte-order mark
        '{"user":"a@b.com","timestamp":1675555215000,"x":[1],"y":{"a":2},"z":true}',  # nested, boolean
        '{"user":"a\tb@b.com","timestamp":1675555215000,"x":1,"y":2,"z":3}',  # a raw control character
        "{}",
        "",
    ],
    STEP_TRAINER_LANDING.name: [
        '{"sensorReadingTime":1651638907599,"serialNumber":"f7ea8293-e379-4dc8-ba3a-b06e29b9a452",'
        '"distanceFromObject":36}',  # plain
        '{"sensorReadingTime":1651638907599,"serialNumber":"f7ea8293-e379-4dc8-ba3a-b06e29b9a452",'
        '"distanceFromObject":2147483648}',  # past an int
        '{"sensorReadingTime":1651638907599,"serialNumber":"f7ea8293-e379-4dc8-ba3a-b06e29b9a452",'
        '"distanceFromObject":-1}',  # outside the contract
    ],
    CUSTOMER_LANDING.name: [
        '{"customerName":"Ben Jones","email":"Ben.Jones.0@test.com","phone":"7926265971","birthDay":"1951-12-15",'
        '"serialNumber":"f7ea8293-e379-4dc8-ba3a-b06e29b9a452","registrationDate":1651724090033,'
        '"shareWithPublicAsOfDate":null,"shareWithFriendsAsOfDate":null,"lastUpdateDate":1675641629000,'
        '"shareWithResearchAsOfDate":null}',  # plain, nulls
        '{"customerName":7,"email":"Ben.Jones.0@test.com","phone":7926265971,"birthDay":"1951-13-45",'
        '"serialNumber":"f7ea8293-e379-4dc8-ba3a-b06e29b9a452","registrationDate":1651724090033,'
        '"lastUpdateDate":1675641629000,"shareWithResearchAsOfDate":1675641629000}',  # descriptive failures
    ],
}
PLAIN_EDGES = {
    ACCELEROMETER_LANDING.name: {1, 2, 3, 4, 13, 14, 21, 22, 28},
    STEP_TRAINER_LANDING.name: {1, 3},
    CUSTOMER_LANDING.name: {1},
}
FEEDS = {table.name: table for table in (ACCELEROMETER_LANDING, STEP_TRAINER_LANDING, CUSTOMER_LANDING)}


@pytest.mark.parametrize("name", list(EDGE_LINES))
def test_the_typed_reading_takes_only_the_lines_it_reads_as_the_exact_reading_does(
    spark: SparkSession, name: str
) -> None:
    table = FEEDS[name]
    rows = [(SOURCE_FILE, number, ARRIVED, raw) for number, raw in enumerate(EDGE_LINES[name], start=1)]
    lines = spark.createDataFrame(rows, LINES_SCHEMA)
    plain = {row.line_number for row in with_plain(lines, table).where("_plain").collect()}
    assert plain == PLAIN_EDGES[name]
    typed, exact = parse_landing(lines, table), parse_landing(lines, table, typed_reading=False)
    assertDataFrameEqual(typed, exact, checkRowOrder=False)
