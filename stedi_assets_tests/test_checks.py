"""Contract checks: pandera findings with failing-row counts, and a failing trusted check blocks downstream."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets.checks import failing_rows, schema_errors
from stedi_assets.contracts import CustomerTrusted, StepTrainerTrusted
from stedi_assets.tables import CUSTOMER_TRUSTED, STEP_TRAINER_TRUSTED
from stedi_assets_tests.builders import T0, customer


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
