"""Athena DDL and Glue tables for the lake's Delta tables: personal and research tables in separate databases,
statements Athena accepts for Delta (LOCATION and table_type only), the contract's columns in the Glue entry and
as comments of the DDL, types that agree with the tables a real run wrote, registration on moto's Glue."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
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
    DELTA_PARAMETERS,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    CatalogError,
    Databases,
    athena_ddl,
    database_ddl,
    glue_table_input,
    hive_type,
    main,
    register,
)
from stedi_assets.tables import ALL_TABLES, CUSTOMER_CURATED, CUSTOMER_TRUSTED, Zone, ZoneTable

S3_ROOT = "s3://stedi-lake/prefix"
DATABASES = Databases.named("stedi")
# How Spark writes each column type to Parquet, as pyarrow reads it back, in Athena's words.
ARROW_TO_HIVE = {pa.string(): "string", pa.int64(): "bigint", pa.int32(): "int", pa.float64(): "double"}
STATEMENT = re.compile(
    r"^CREATE EXTERNAL TABLE IF NOT EXISTS `(?P<database>[^`]+)`\.`(?P<name>[^`]+)`\n"
    r"LOCATION '(?P<location>(?:[^'\\]|\\.)*)'\n"
    r"TBLPROPERTIES \('table_type'='DELTA'\);$"
)
COLUMN_COMMENT = re.compile(r"^--   (?P<name>\S+) (?P<type>\S+): (?P<comment>.*)$", re.MULTILINE)


def statement(ddl: str) -> re.Match:
    """The DDL without its comment lines, which must be exactly the Delta statement."""
    match = STATEMENT.fullmatch("\n".join(line for line in ddl.splitlines() if not line.startswith("--")))
    assert match, ddl
    return match


def commented_columns(ddl: str) -> list[tuple[str, str, str]]:
    return [(m["name"], m["type"], m["comment"]) for m in COLUMN_COMMENT.finditer(ddl)]


class CustomerTrustedWithHeight(c.CustomerTrusted):
    """The customer contract with one more column, as a later version of it might declare."""

    heightCm: T.DoubleType = Field(nullable=True, description="Height in cm, as the customer's profile says")


def with_height() -> ZoneTable:
    return ZoneTable("customer_trusted", "customer", Zone.TRUSTED, CustomerTrustedWithHeight, "With a height.")


def test_the_training_table_alone_is_in_the_research_database() -> None:
    personal = {
        name
        for name, table in ALL_TABLES.items()
        if table.zone in (Zone.LANDING, Zone.QUARANTINE, Zone.TRUSTED) or table is CUSTOMER_CURATED
    }
    assert {name for name, t in ALL_TABLES.items() if DATABASES.of(t) == "stedi"} == personal
    assert {name for name, t in ALL_TABLES.items() if DATABASES.of(t) == "stedi_research"} == {
        "machine_learning_curated"
    }
    assert len(personal) == len(ALL_TABLES) - 1


@pytest.mark.parametrize("name", ALL_TABLES)
def test_ddl_is_athenas_delta_statement_with_the_contract_columns_as_comments(name: str) -> None:
    table = ALL_TABLES[name]
    ddl = athena_ddl(table, S3_ROOT, DATABASES)
    docs = c.column_docs(table.model)
    # The contracts use only types whose Spark SQL name is also their Athena name (bigint, int, double, string).
    declared = [(f.name, f.dataType.simpleString(), docs[f.name]) for f in table.schema.fields]

    found = statement(ddl)
    assert (found["database"], found["name"]) == (DATABASES.of(table), name)
    assert found["location"] == f"{S3_ROOT}/{table.path}/"
    assert commented_columns(ddl) == declared
    assert ddl.splitlines()[0] == f"-- {name} ({table.zone.value} zone): {table.description}"


@pytest.fixture
def unreserved_properties(spark: SparkSession) -> Iterator[None]:
    """Spark reserves the property `table_type` for its own catalogs (its parser refuses it), where Athena's Delta
    DDL needs it: parse with Spark's legacy switch, which drops reserved properties instead."""
    spark.conf.set("spark.sql.legacy.notReserveProperties", "true")
    yield
    spark.conf.unset("spark.sql.legacy.notReserveProperties")


def test_ddl_parses_as_hive_ddl(spark: SparkSession, unreserved_properties: None) -> None:
    """Spark's parser speaks the Hive DDL dialect Athena uses: quoting, escapes and clauses must parse."""
    parser = spark._jsparkSession.sessionState().sqlParser()
    for text in database_ddl(DATABASES):
        parser.parsePlan(text.removesuffix(";"))
    for root in (S3_ROOT, "/data/lake"):
        for table in ALL_TABLES.values():
            found = statement(athena_ddl(table, root, DATABASES))
            plan = parser.parsePlan(found[0].removesuffix(";")).toString()
            assert f"Some({found['location']})" in plan and f"[{found['database']}, {table.name}]" in plan, plan


def written_columns(folder: Path) -> list[tuple[str, str]]:
    """The table's columns as written: the latest schema of its Delta log (what Athena reads), or, for a table
    that is still plain Parquet, its files' schema."""
    log = folder / "_delta_log"
    if log.is_dir():
        schemas = [
            json.loads(line)["metaData"]["schemaString"]
            for path in sorted(log.glob("*.json"))
            for line in path.read_text().splitlines()
            if '"metaData"' in line
        ]
        return [(f.name, hive_type(f.dataType)) for f in T.StructType.fromJson(json.loads(schemas[-1])).fields]
    if not any(folder.glob("*.parquet")):
        pytest.skip(f"{folder} holds neither a Delta log nor Parquet files in this lake")
    return [(f.name, ARROW_TO_HIVE[f.type]) for f in ds.dataset(folder, format="parquet").schema]


@pytest.mark.parametrize("name", ALL_TABLES)
def test_ddl_and_glue_columns_agree_with_the_tables_written(name: str, materialized_lake: Path) -> None:
    table = ALL_TABLES[name]
    written = written_columns(materialized_lake / table.path)
    ddl = athena_ddl(table, str(materialized_lake), DATABASES)
    assert [(column, kind) for column, kind, _ in commented_columns(ddl)] == written
    glue = glue_table_input(table, str(materialized_lake))["StorageDescriptor"]["Columns"]
    assert [(column["Name"], column["Type"]) for column in glue] == written


def test_a_local_root_gives_file_uris_and_says_athena_needs_s3(tmp_path: Path) -> None:
    ddl = athena_ddl(CUSTOMER_TRUSTED, str(tmp_path), DATABASES)
    assert statement(ddl)["location"] == f"{tmp_path.as_uri()}/customer/trusted/"
    assert "-- Athena reads only S3: set STEDI_LAKE_ROOT=s3://" in ddl
    assert statement(athena_ddl(CUSTOMER_TRUSTED, "s3a://b/p", DATABASES))["location"] == "s3://b/p/customer/trusted/"


def test_a_contract_change_reaches_the_ddl_and_glue_without_editing_them() -> None:
    table = with_height()
    added = ("heightCm", "double", "Height in cm, as the customer's profile says")
    assert commented_columns(athena_ddl(table, S3_ROOT, DATABASES))[-1] == added
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
        athena_ddl(table, S3_ROOT, DATABASES)


class CustomerTrustedWithLongDoc(c.CustomerTrusted):
    notes: T.StringType = Field(nullable=True, description="x" * 256)


def test_a_doc_longer_than_glue_allows_is_a_clear_error() -> None:
    table = ZoneTable("customer_trusted", "customer", Zone.TRUSTED, CustomerTrustedWithLongDoc, "With notes.")
    with pytest.raises(CatalogError, match=r"^customer_trusted\.notes: its doc is longer than Glue's 255 characters"):
        glue_table_input(table, S3_ROOT)


def stored_tables(glue, database: str) -> dict[str, dict]:
    pages = glue.get_paginator("get_tables").paginate(DatabaseName=database)
    return {table["Name"]: table for page in pages for table in page["TableList"]}


def test_register_creates_then_updates_each_table_in_its_database(s3_server: str) -> None:
    glue = boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")
    databases = Databases.named("stedi_register")
    tables = list(ALL_TABLES.values())

    assert register(glue, databases, S3_ROOT, tables) == [
        "created database stedi_register",
        "created database stedi_register_research",
        *(f"created table {databases.of(t)}.{t.name}" for t in tables),
    ]
    assert register(glue, databases, S3_ROOT, tables) == [f"updated table {databases.of(t)}.{t.name}" for t in tables]

    personal, research = stored_tables(glue, "stedi_register"), stored_tables(glue, "stedi_register_research")
    assert research.keys() == {"machine_learning_curated"}
    assert personal.keys() == ALL_TABLES.keys() - {"machine_learning_curated"}
    for name, stored in (personal | research).items():
        table = ALL_TABLES[name]
        location = statement(athena_ddl(table, S3_ROOT, databases))["location"]
        descriptor = stored["StorageDescriptor"]
        columns = [(col["Name"], col["Type"], col["Comment"]) for col in descriptor["Columns"]]
        assert columns == commented_columns(athena_ddl(table, S3_ROOT, databases))
        assert descriptor["Location"] == location == f"{S3_ROOT}/{table.path}/"
        assert (descriptor["InputFormat"], descriptor["OutputFormat"]) == (PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT)
        assert descriptor["SerdeInfo"] == {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1", "path": location},
        }
        assert stored["TableType"] == "EXTERNAL_TABLE"
        assert stored["Parameters"] == DELTA_PARAMETERS
        assert stored["Description"] == table.description
        assert stored.get("PartitionKeys", []) == []

    assert register(glue, databases, S3_ROOT, [with_height()]) == ["updated table stedi_register.customer_trusted"]
    descriptor = glue.get_table(DatabaseName="stedi_register", Name="customer_trusted")["Table"]["StorageDescriptor"]
    assert descriptor["Columns"][-1]["Name"] == "heightCm"


def test_register_moves_a_table_out_of_the_wrong_database_and_leaves_other_tables_alone(s3_server: str) -> None:
    """As after the single-database layout: the training table registered next to the personal ones."""
    glue = boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")
    glue.create_database(DatabaseInput={"Name": "stedi_old"})
    for table in ALL_TABLES.values():
        glue.create_table(DatabaseName="stedi_old", TableInput=glue_table_input(table, S3_ROOT))
    unrelated = glue_table_input(CUSTOMER_TRUSTED, S3_ROOT) | {"Name": "someone_elses_table"}
    glue.create_table(DatabaseName="stedi_old", TableInput=unrelated)

    done = register(glue, Databases.named("stedi_old"), S3_ROOT, list(ALL_TABLES.values()))
    assert "removed table stedi_old.machine_learning_curated (it belongs in stedi_old_research)" in done
    assert stored_tables(glue, "stedi_old").keys() == ALL_TABLES.keys() - {"machine_learning_curated"} | {
        "someone_elses_table"
    }
    assert stored_tables(glue, "stedi_old_research").keys() == {"machine_learning_curated"}


def test_cli_prints_ddl_and_registers(
    s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_LAKE_ROOT", S3_ROOT)
    assert main(["--database", "stedi_cli"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("CREATE DATABASE IF NOT EXISTS `stedi_cli`\nCOMMENT '")
    assert "\n\nCREATE DATABASE IF NOT EXISTS `stedi_cli_research`\nCOMMENT '" in printed
    assert printed.count("CREATE EXTERNAL TABLE IF NOT EXISTS `stedi_cli`.") == len(ALL_TABLES) - 1
    assert printed.count("CREATE EXTERNAL TABLE IF NOT EXISTS `stedi_cli_research`.") == 1
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `stedi_cli_research`.`machine_learning_curated`" in printed

    assert main(["--database", "stedi_cli", "--register"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "created database stedi_cli",
        "created database stedi_cli_research",
        *(f"created table {Databases.named('stedi_cli').of(t)}.{name}" for name, t in ALL_TABLES.items()),
    ]

    monkeypatch.setenv("STEDI_LAKE_ROOT", str(tmp_path))
    assert main(["--register"]) == 2
    assert capsys.readouterr().err == (
        f"stedi catalog: STEDI_LAKE_ROOT='{tmp_path}' is not on S3, which --register needs (Athena reads only S3):"
        " set it to the lake's s3://bucket/prefix\n"
    )
