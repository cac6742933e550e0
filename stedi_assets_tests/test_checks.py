"""Contract checks: pandera findings with failing-row counts, and a failing trusted check blocks downstream."""

from __future__ import annotations

import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets.checks import descriptive_failures, failing_rows, schema_errors
from stedi_assets.contracts import CustomerTrusted, StepTrainerTrusted
from stedi_assets.tables import ACCELEROMETER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED, STEP_TRAINER_TRUSTED
from stedi_assets.transforms.parsing import LINES_SCHEMA, parse_landing
from stedi_assets_tests.builders import T0, accelerometer, customer


def _as_read_from_files(schema: T.StructType) -> T.StructType:
    """Spark reads every file column as nullable, so the contract, not the schema, must catch nulls."""
    return T.StructType([T.StructField(f.name, f.dataType, nullable=True) for f in schema.fields])


def _customers(spark: SparkSession, *records: dict) -> DataFrame:
    rows = [tuple(r[c] for c in CUSTOMER_TRUSTED.columns) for r in records]
    return spark.createDataFrame(rows, _as_read_from_files(CUSTOMER_TRUSTED.schema))


def _failed(counts: dict[str, int]) -> dict[str, int]:
    return {check: rows for check, rows in counts.items() if rows}


def test_a_conforming_frame_has_no_errors(spark: SparkSession) -> None:
    frame = _customers(spark, customer(email="a@x.com"), customer(email="b@x.com"))
    assert schema_errors(CustomerTrusted, frame) == []
    assert _failed(failing_rows(CustomerTrusted, frame)) == {}


def test_the_schema_is_checked_without_a_spark_job(spark: SparkSession) -> None:
    # pandera counts the nulls of each non-nullable column (a job each) even when told to check the schema only.
    frame = _customers(spark, customer(email="a@x.com"), customer(email="b@x.com", phone=None))
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup())
    assert schema_errors(CustomerTrusted, frame) == []
    assert set(tracker.getJobIdsForGroup()) == before


def test_a_missing_or_extra_column_or_a_wrong_type_is_a_schema_error(spark: SparkSession) -> None:
    frame = _customers(spark, customer(email="a@x.com")).drop("phone").withColumn("ssn", F.lit("x"))
    frame = frame.withColumn("registrationDate", F.col("registrationDate").cast("string"))
    findings = {(e["check"], e["column"]) for e in schema_errors(CustomerTrusted, frame)}
    assert {check for check, _ in findings} == {"column_in_schema", "column_in_dataframe", "dtype('LongType()')"}


def test_violations_are_named_and_their_rows_counted(spark: SparkSession) -> None:
    frame = _customers(
        spark,
        customer(email="a@x.com"),
        customer(email="a@x.com", shareWithResearchAsOfDate=T0 + 1),  # email must be unique
        customer(email="b@x.com", shareWithResearchAsOfDate=None),  # trusted customers consent
        customer(email="not-an-email"),
    )
    assert schema_errors(CustomerTrusted, frame) == []  # the schema is right; the rows are not
    assert _failed(failing_rows(CustomerTrusted, frame)) == {
        "unique(email)": 1,
        "shareWithResearchAsOfDate:not_nullable": 1,
        "email:str_matches": 1,
    }


def test_descriptive_columns_are_not_held_to_their_rules_here(spark: SparkSession) -> None:
    # A trusted customer with a malformed birth date, an odd phone and no name is still a trusted customer.
    frame = _customers(spark, customer(email="a@x.com", birthDay="1990-13-45", phone="call me", customerName=None))
    counts = failing_rows(CustomerTrusted, frame)
    assert _failed(counts) == {}
    assert not any(rule.split(":")[0] in ("birthDay", "phone", "customerName") for rule in counts)
    assert "email:str_matches" in counts  # the required rules are all reported


def _parsed(spark: SparkSession, table, lines: list[tuple[str, int, str]]) -> DataFrame:
    return parse_landing(spark.createDataFrame([(f, n, 0, raw) for f, n, raw in lines], LINES_SCHEMA), table)


def test_descriptive_failures_counts_kept_rows_per_rule_with_their_places(spark: SparkSession) -> None:
    lines = [
        ("a.json", 1, json.dumps(customer(birthDay="1990-13-45"))),
        ("a.json", 2, json.dumps(customer(birthDay="01/02/1990", phone="(801) 555-0100"))),
        ("b.json", 7, json.dumps(customer(birthDay="1990-00-01"))),
        ("b.json", 9, json.dumps(customer(birthDay="1990-02-31x", email="broken"))),  # quarantined: not counted
        ("b.json", 10, json.dumps(customer(customerName=42, shareWithPublicAsOfDate="2022-01-01"))),
        ("b.json", 11, json.dumps(customer())),
    ]
    report = descriptive_failures(CUSTOMER_LANDING, _parsed(spark, CUSTOMER_LANDING, lines))
    rows = {rule: found["rows"] for rule, found in report.items()}
    assert {rule: n for rule, n in rows.items() if n} == {
        "birthDay:str_matches": 3,
        "phone:str_matches": 1,
        "customerName:wrong_type": 1,
        "shareWithPublicAsOfDate:wrong_type": 1,
    }
    assert rows["shareWithFriendsAsOfDate:greater_than_or_equal_to"] == 0  # every rule is reported
    places = [(e["source_file"], e["line_number"]) for e in report["birthDay:str_matches"]["examples"]]
    assert places[0] == ("a.json", 1) and places[-1] == ("b.json", 7)
    assert set(places) <= {("a.json", 1), ("a.json", 2), ("b.json", 7)}
    assert report["phone:str_matches"]["examples"] == [{"source_file": "a.json", "line_number": 2}]
    assert report["birthDay:wrong_type"] == {"rows": 0, "examples": []}


def test_descriptive_failures_never_reports_a_value(spark: SparkSession) -> None:
    secret = "1955-13-13"
    lines = [("a.json", 1, json.dumps(customer(birthDay=secret, phone="phone: 555 SECRET")))]
    report = descriptive_failures(CUSTOMER_LANDING, _parsed(spark, CUSTOMER_LANDING, lines))
    assert report["birthDay:str_matches"]["rows"] == 1
    assert secret not in json.dumps(report) and "SECRET" not in json.dumps(report)


def test_a_table_without_descriptive_columns_has_no_descriptive_rules(spark: SparkSession) -> None:
    lines = [("a.json", 1, json.dumps(accelerometer()))]
    assert descriptive_failures(ACCELEROMETER_LANDING, _parsed(spark, ACCELEROMETER_LANDING, lines)) == {}


def test_value_checks_count_rows_out_of_range(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [(T0, "9b6ae8f4-7a4b-4a59-9f5e-6a1c2f7b8d90", -3), (5, "9b6ae8f4-7a4b-4a59-9f5e-6a1c2f7b8d90", 4)],
        _as_read_from_files(STEP_TRAINER_TRUSTED.schema),
    )
    counts = failing_rows(StepTrainerTrusted, frame)
    assert counts["serialNumber:str_matches"] == 0  # every check is reported, passing ones with 0
    assert _failed(counts) == {
        "distanceFromObject:greater_than_or_equal_to": 1,
        "sensorReadingTime:greater_than_or_equal_to": 1,
    }
