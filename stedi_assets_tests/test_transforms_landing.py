"""split_lines and parse_landing: one row per line, each defect named by its reason and detail."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from stedi_assets.tables import ACCELEROMETER_LANDING, CUSTOMER_LANDING, STEP_TRAINER_LANDING, ZoneTable
from stedi_assets.transforms.landing import parse_landing, split_lines
from stedi_assets_tests.builders import (
    SOURCE_FILE,
    T0,
    Record,
    accelerometer,
    assert_kept,
    assert_reasons,
    customer,
    step_reading,
)

LINES_SCHEMA = "source_file string, line_number long, raw string"


def lines_of(spark: SparkSession, files: Sequence[tuple[str, str]]) -> DataFrame:
    return split_lines(spark.createDataFrame(list(files), "path string, content string"))


def parse(spark: SparkSession, table: ZoneTable, raws: Sequence[str]) -> DataFrame:
    """parse_landing of `raws` as lines 1.. of SOURCE_FILE."""
    lines = spark.createDataFrame([(SOURCE_FILE, n, raw) for n, raw in enumerate(raws, start=1)], LINES_SCHEMA)
    return parse_landing(lines, table)


def without(record: Record, *names: str) -> Record:
    return {name: value for name, value in record.items() if name not in names}


def test_split_lines_numbers_each_files_lines_from_1(spark: SparkSession) -> None:
    actual = lines_of(spark, [("a.json", "one\ntwo\nthree"), ("b.json", "only\n")])
    expected = spark.createDataFrame(
        [("a.json", 1, "one"), ("a.json", 2, "two"), ("a.json", 3, "three"), ("b.json", 1, "only")], LINES_SCHEMA
    )
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_split_lines_strips_crlf_line_endings(spark: SparkSession) -> None:
    actual = lines_of(spark, [("a.json", "one\r\ntwo\r\n")])
    expected = spark.createDataFrame([("a.json", 1, "one"), ("a.json", 2, "two")], LINES_SCHEMA)
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_split_lines_keeps_a_blank_line_inside_a_file(spark: SparkSession) -> None:
    actual = lines_of(spark, [("a.json", "one\n\nthree\n")])
    expected = spark.createDataFrame([("a.json", 1, "one"), ("a.json", 2, ""), ("a.json", 3, "three")], LINES_SCHEMA)
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


@pytest.mark.parametrize("content", ["one\n\n", "one\r\n\r\n"], ids=["lf", "crlf"])
def test_split_lines_keeps_a_blank_line_at_the_end_of_a_file(spark: SparkSession, content: str) -> None:
    # Only the final newline ends the last line; the blank line before it is a line like any other.
    actual = lines_of(spark, [("a.json", content)])
    expected = spark.createDataFrame([("a.json", 1, "one"), ("a.json", 2, "")], LINES_SCHEMA)
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_parse_keeps_a_valid_line_with_its_lineage(spark: SparkSession) -> None:
    parsed = parse(spark, STEP_TRAINER_LANDING, [json.dumps(step_reading())])
    assert_reasons(parsed, ["line_number", "raw"], [(1, json.dumps(step_reading()), None, None)])
    assert_kept(parsed, STEP_TRAINER_LANDING.schema, [step_reading()])


def test_parse_accepts_the_timeStamp_spelling_for_accelerometer(spark: SparkSession) -> None:
    record = without(accelerometer(), "timestamp") | {"timeStamp": T0}
    parsed = parse(spark, ACCELEROMETER_LANDING, [json.dumps(record)])
    assert_kept(parsed, ACCELEROMETER_LANDING.schema, [accelerometer()])


def test_parse_allows_nullable_customer_fields_to_be_absent(spark: SparkSession) -> None:
    nullable = ["phone", "birthDay", "shareWithResearchAsOfDate", "shareWithPublicAsOfDate", "shareWithFriendsAsOfDate"]
    parsed = parse(spark, CUSTOMER_LANDING, [json.dumps(without(customer(), *nullable))])
    assert_kept(parsed, CUSTOMER_LANDING.schema, [customer(**dict.fromkeys(nullable))])


@pytest.mark.parametrize("raw", ["", "   "], ids=["empty", "spaces"])
def test_parse_filters_a_blank_line(spark: SparkSession, raw: str) -> None:
    assert_reasons(parse(spark, ACCELEROMETER_LANDING, [raw]), ["line_number"], [(1, "blank_line", None)])


def test_parse_rejects_a_line_that_is_not_json(spark: SparkSession) -> None:
    parsed = parse(spark, ACCELEROMETER_LANDING, ["user=alice@example.com timestamp=1655564444000"])
    assert_reasons(parsed, ["line_number"], [(1, "not_json", None)])


def test_parse_rejects_a_cut_off_line(spark: SparkSession) -> None:
    cut_off = json.dumps(accelerometer())[:30]
    assert_reasons(parse(spark, ACCELEROMETER_LANDING, [cut_off]), ["line_number"], [(1, "not_json", None)])


@pytest.mark.parametrize(
    "raw",
    ["42", '"alice@example.com"', "true", "null", "[1, 2]", json.dumps([accelerometer()])],
    ids=["number", "string", "boolean", "null", "array", "array-of-records"],
)
def test_parse_rejects_a_json_value_that_is_not_an_object(spark: SparkSession, raw: str) -> None:
    assert_reasons(parse(spark, ACCELEROMETER_LANDING, [raw]), ["line_number"], [(1, "not_json", None)])


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(accelerometer()) + json.dumps(accelerometer(user="bob@example.com")),
        json.dumps(accelerometer()) + " x",
    ],
    ids=["two-records-on-one-line", "trailing-garbage"],
)
def test_parse_rejects_content_after_the_json_object(spark: SparkSession, raw: str) -> None:
    # Keeping the first object would silently drop the second record of a line that lost its newline.
    assert_reasons(parse(spark, ACCELEROMETER_LANDING, [raw]), ["line_number"], [(1, "not_json", None)])


@pytest.mark.parametrize(
    ("table", "record", "field"),
    [
        (ACCELEROMETER_LANDING, accelerometer(timestamp="yesterday"), "timestamp"),
        (ACCELEROMETER_LANDING, accelerometer(x=True), "x"),
        (ACCELEROMETER_LANDING, accelerometer(y={"value": 2.0}), "y"),
        (STEP_TRAINER_LANDING, step_reading(distanceFromObject=10.5), "distanceFromObject"),
        (STEP_TRAINER_LANDING, step_reading(distanceFromObject=2**31), "distanceFromObject"),
        (CUSTOMER_LANDING, customer(lastUpdateDate="2022-06-18"), "lastUpdateDate"),
    ],
    ids=["text-timestamp", "boolean-double", "object-double", "fractional-integer", "integer-overflow", "date-text"],
)
def test_parse_rejects_a_value_of_the_wrong_type(
    spark: SparkSession, table: ZoneTable, record: Record, field: str
) -> None:
    assert_reasons(parse(spark, table, [json.dumps(record)]), ["line_number"], [(1, "wrong_type", field)])


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
def test_parse_rejects_a_missing_required_field(
    spark: SparkSession, table: ZoneTable, record: Record, field: str
) -> None:
    assert_reasons(parse(spark, table, [json.dumps(record)]), ["line_number"], [(1, "missing_field", field)])


@pytest.mark.parametrize(
    ("table", "record", "detail"),
    [
        (STEP_TRAINER_LANDING, step_reading(distanceFromObject=-1), "distanceFromObject:greater_than_or_equal_to"),
        (ACCELEROMETER_LANDING, accelerometer(timestamp=T0 // 1000), "timestamp:greater_than_or_equal_to"),
        (ACCELEROMETER_LANDING, accelerometer(timestamp=T0 * 1000), "timestamp:less_than_or_equal_to"),
        (STEP_TRAINER_LANDING, step_reading(serialNumber="not-a-uuid"), "serialNumber:str_matches"),
        (CUSTOMER_LANDING, customer(email="alice.example.com"), "email:str_matches"),
        (CUSTOMER_LANDING, customer(birthDay="01/01/1990"), "birthDay:str_matches"),
    ],
    ids=["negative-distance", "epoch-seconds", "epoch-microseconds", "bad-serial", "bad-email", "bad-birthday"],
)
def test_parse_rejects_a_value_outside_the_contract(
    spark: SparkSession, table: ZoneTable, record: Record, detail: str
) -> None:
    assert_reasons(parse(spark, table, [json.dumps(record)]), ["line_number"], [(1, "invalid_value", detail)])
