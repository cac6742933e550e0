"""Athena DDL and Glue tables from the contracts: every declared column with its type and comment, types that
agree with the Parquet files a real run wrote, a contract change reaching both, registration on moto's Glue."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyspark.sql.types as T
import pytest
from pandera.pyspark import Field
from pyspark.sql import SparkSession

from stedi_assets import contracts as c
from stedi_assets.cli.catalog import (
    JSON_LINES,
    PARQUET,
    CatalogError,
    athena_ddl,
    glue_table_input,
    hive_type,
    main,
    register,
)
from stedi_assets.tables import ALL_TABLES, CUSTOMER_TRUSTED, Zone, ZoneTable
from stedi_assets.transforms.landing import LINEAGE_COLUMNS

S3_ROOT = "s3://stedi-lake/prefix"
LANDING = [name for name, table in ALL_TABLES.items() if table.zone is Zone.LANDING]
PARQUET_TABLES = [name for name in ALL_TABLES if name not in LANDING]
# How Spark writes each column type to Parquet, as pyarrow reads it back, in Athena's words.
ARROW_TO_HIVE = {pa.string(): "string", pa.int64(): "bigint", pa.int32(): "int", pa.float64(): "double"}
COLUMN_LINE = re.compile(r"^  `(?P<name>[^`]+)` (?P<type>\S+) COMMENT '(?P<comment>(?:[^'\\]|\\.)*)',?$", re.MULTILINE)


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def ddl_columns(ddl: str) -> list[tuple[str, str, str]]:
    return [(m["name"], m["type"], unescaped(m["comment"])) for m in COLUMN_LINE.finditer(ddl)]


def ddl_clause(ddl: str, keyword: str) -> str:
    """The quoted value of a one-line clause, e.g. LOCATION '...'."""
    return unescaped(re.search(rf"^{keyword} '((?:[^'\\]|\\.)*)'$", ddl, re.MULTILINE)[1])


class CustomerTrustedWithHeight(c.CustomerTrusted):
    """The customer contract with one more column, as a later version of it might declare."""

    heightCm: T.DoubleType = Field(nullable=True, description="Height in cm, as the customer's profile says")


def with_height() -> ZoneTable:
    return ZoneTable("customer_trusted", "customer", Zone.TRUSTED, CustomerTrustedWithHeight, "With a height.")


@pytest.mark.parametrize("name", ALL_TABLES)
def test_ddl_declares_every_contract_column_with_its_type_and_comment(name: str) -> None:
    table = ALL_TABLES[name]
    ddl = athena_ddl(table, S3_ROOT, "stedi")
    docs = c.column_docs(table.model)
    # The contracts use only types whose Spark SQL name is also their Athena name (bigint, int, double, string).
    declared = [(f.name, f.dataType.simpleString(), docs[f.name]) for f in table.schema.fields]
    if table.zone is Zone.LANDING:  # the parser's lineage columns are not in the JSON lines
        declared = [column for column in declared if column[0] not in LINEAGE_COLUMNS]

    assert ddl_columns(ddl) == declared
    assert f"CREATE EXTERNAL TABLE IF NOT EXISTS `stedi`.`{name}` (" in ddl
    assert ddl_clause(ddl, "COMMENT") == table.description
    assert ddl_clause(ddl, "LOCATION") == f"{S3_ROOT}/{table.path}/"
    if table.zone is Zone.LANDING:
        assert "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'" in ddl
        assert ddl.endswith("TBLPROPERTIES ('classification'='json');")
    else:
        assert "STORED AS PARQUET" in ddl
        assert ddl.endswith("TBLPROPERTIES ('classification'='parquet');")


@pytest.mark.parametrize("root", [S3_ROOT, "/data/lake"])
def test_ddl_parses_as_hive_ddl(root: str, spark: SparkSession) -> None:
    """Spark's parser speaks the Hive DDL dialect Athena uses: quoting, SerDe and format clauses must parse."""
    parser = spark._jsparkSession.sessionState().sqlParser()
    for table in ALL_TABLES.values():
        parser.parsePlan(athena_ddl(table, root, "stedi"))


@pytest.mark.parametrize("name", PARQUET_TABLES)
def test_ddl_types_agree_with_the_parquet_files_written(name: str, materialized_lake: Path) -> None:
    table = ALL_TABLES[name]
    written = ds.dataset(materialized_lake / table.path, format="parquet").schema
    ddl = athena_ddl(table, str(materialized_lake), "stedi")
    assert [(column, kind) for column, kind, _ in ddl_columns(ddl)] == [
        (f.name, ARROW_TO_HIVE[f.type]) for f in written
    ]


@pytest.mark.parametrize("name", LANDING)
def test_landing_ddl_columns_are_the_keys_of_the_json_lines(name: str, materialized_lake: Path) -> None:
    """The OpenX SerDe matches keys case-insensitively, so `timeStamp` lines fill column `timestamp`."""
    table = ALL_TABLES[name]
    keys = set()
    for path in (materialized_lake / table.path).glob("*.json"):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the generator's malformed lines
            keys |= {key.lower() for key in record}
    columns = ddl_columns(athena_ddl(table, str(materialized_lake), "stedi"))
    assert keys == {column.lower() for column, _, _ in columns}


def test_a_local_root_gives_file_uris_and_says_athena_needs_s3(tmp_path: Path) -> None:
    ddl = athena_ddl(CUSTOMER_TRUSTED, str(tmp_path), "stedi")
    assert ddl_clause(ddl, "LOCATION") == f"{tmp_path.as_uri()}/customer/trusted/"
    assert "-- Athena reads only S3: set STEDI_LAKE_ROOT=s3://" in ddl
    assert ddl_clause(athena_ddl(CUSTOMER_TRUSTED, "s3a://b/p", "stedi"), "LOCATION") == "s3://b/p/customer/trusted/"


def test_a_contract_change_reaches_the_ddl_and_glue_without_editing_them() -> None:
    table = with_height()
    added = ("heightCm", "double", "Height in cm, as the customer's profile says")
    assert ddl_columns(athena_ddl(table, S3_ROOT, "stedi"))[-1] == added
    assert glue_table_input(table, S3_ROOT)["StorageDescriptor"]["Columns"][-1] == dict(
        zip(("Name", "Type", "Comment"), added, strict=True)
    )


@pytest.mark.parametrize(
    "spark_type, athena_type",
    [
        (T.ShortType(), "smallint"),
        (T.ByteType(), "tinyint"),
        (T.FloatType(), "float"),
        (T.BooleanType(), "boolean"),
        (T.TimestampType(), "timestamp"),
        (T.DateType(), "date"),
        (T.DecimalType(12, 3), "decimal(12,3)"),
        (T.MapType(T.StringType(), T.DoubleType()), "map<string,double>"),
        (
            T.ArrayType(
                T.StructType([T.StructField("at", T.LongType()), T.StructField("tags", T.ArrayType(T.StringType()))])
            ),
            "array<struct<at:bigint,tags:array<string>>>",
        ),
    ],
)
def test_hive_types(spark_type: T.DataType, athena_type: str) -> None:
    assert hive_type(spark_type) == athena_type


@dataclass(frozen=True)
class WithInterval(ZoneTable):
    """A table whose schema has a column type Athena has no name for."""

    @property
    def schema(self) -> T.StructType:
        return T.StructType([*super().schema.fields, T.StructField("waited", T.DayTimeIntervalType())])


def test_an_unmapped_type_is_a_clear_error() -> None:
    with pytest.raises(CatalogError, match=r"Spark type variant has no Athena/Hive type here: add it to HIVE_TYPES"):
        hive_type(T.ArrayType(T.VariantType()))
    table = WithInterval("customer_trusted", "customer", Zone.TRUSTED, c.CustomerTrusted, "With an interval.")
    with pytest.raises(CatalogError, match=r"^customer_trusted\.waited: Spark type interval day to second"):
        athena_ddl(table, S3_ROOT, "stedi")


def test_a_json_key_differing_beyond_case_is_refused() -> None:
    table = ZoneTable(
        "accelerometer_landing", "accelerometer", Zone.LANDING, c.AccelerometerLanding, "d", aliases={"ts": "timestamp"}
    )
    with pytest.raises(CatalogError, match="JSON key 'ts' for column 'timestamp' differs beyond case"):
        glue_table_input(table, S3_ROOT)


def stored_tables(glue, database: str) -> dict[str, dict]:
    pages = glue.get_paginator("get_tables").paginate(DatabaseName=database)
    return {table["Name"]: table for page in pages for table in page["TableList"]}


def test_register_creates_then_updates_tables_matching_the_ddl(s3_server: str) -> None:
    glue = boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")
    tables = list(ALL_TABLES.values())

    assert register(glue, "stedi_register", S3_ROOT, tables) == [
        "created database stedi_register",
        *(f"created table stedi_register.{t.name}" for t in tables),
    ]
    assert register(glue, "stedi_register", S3_ROOT, tables) == [
        f"updated table stedi_register.{t.name}" for t in tables
    ]

    stored = stored_tables(glue, "stedi_register")
    assert stored.keys() == ALL_TABLES.keys()
    for name, table in ALL_TABLES.items():
        ddl = athena_ddl(table, S3_ROOT, "stedi_register")
        fmt = JSON_LINES if table.zone is Zone.LANDING else PARQUET
        descriptor = stored[name]["StorageDescriptor"]
        assert [(col["Name"], col["Type"], col["Comment"]) for col in descriptor["Columns"]] == ddl_columns(ddl)
        assert descriptor["Location"] == ddl_clause(ddl, "LOCATION")
        assert (descriptor["InputFormat"], descriptor["OutputFormat"]) == (fmt.input_format, fmt.output_format)
        assert descriptor["SerdeInfo"] == {"SerializationLibrary": fmt.serde, "Parameters": fmt.serde_parameters}
        assert stored[name]["TableType"] == "EXTERNAL_TABLE"
        assert stored[name]["Parameters"]["classification"] == fmt.classification
        assert stored[name]["Description"] == table.description

    assert register(glue, "stedi_register", S3_ROOT, [with_height()]) == [
        "updated table stedi_register.customer_trusted"
    ]
    columns = glue.get_table(DatabaseName="stedi_register", Name="customer_trusted")["Table"]["StorageDescriptor"]
    assert columns["Columns"][-1]["Name"] == "heightCm"


def test_cli_prints_ddl_and_registers(
    s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_LAKE_ROOT", S3_ROOT)
    assert main(["--database", "stedi_cli"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("CREATE DATABASE IF NOT EXISTS `stedi_cli`;\n")
    assert printed.count("CREATE EXTERNAL TABLE IF NOT EXISTS `stedi_cli`.") == len(ALL_TABLES)

    assert main(["--database", "stedi_cli", "--register"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "created database stedi_cli",
        *(f"created table stedi_cli.{name}" for name in ALL_TABLES),
    ]

    monkeypatch.setenv("STEDI_LAKE_ROOT", str(tmp_path))
    assert main(["--register"]) == 1
    assert capsys.readouterr().err == (
        f"error: --register needs an s3:// lake root (STEDI_LAKE_ROOT); Athena cannot read {tmp_path}\n"
    )
