"""Athena DDL and AWS Glue Data Catalog tables, derived from each zone table's one declaration.

python -m stedi_assets.cli.catalog [--database stedi]              # prints CREATE EXTERNAL TABLE statements
python -m stedi_assets.cli.catalog [--database stedi] --register   # creates or updates them in the Glue catalog

Columns, types and comments come only from the registry (`tables.py`) and the table's contract, through
`catalog_columns`, which both the DDL and the Glue TableInput use: the two cannot drift apart, and a contract
change reaches them without editing anything here. Locations are the table folders under STEDI_LAKE_ROOT.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyspark.sql.types as T
from botocore.exceptions import BotoCoreError, ClientError

from stedi_assets.contracts import column_docs
from stedi_assets.resources.storage import is_s3
from stedi_assets.settings import SettingsError, from_env
from stedi_assets.tables import ALL_TABLES, Zone, ZoneTable
from stedi_assets.transforms.landing import LINEAGE_COLUMNS

DEFAULT_DATABASE = "stedi"
# Spark types with a fixed Athena/Hive name; parameterised and nested types are spelled in `hive_type`.
HIVE_TYPES: dict[type[T.DataType], str] = {
    T.StringType: "string",
    T.LongType: "bigint",
    T.IntegerType: "int",
    T.ShortType: "smallint",
    T.ByteType: "tinyint",
    T.DoubleType: "double",
    T.FloatType: "float",
    T.BooleanType: "boolean",
    T.TimestampType: "timestamp",
    T.DateType: "date",
    T.BinaryType: "binary",
}


class CatalogError(ValueError):
    """A table that cannot be described to Athena / Glue as declared."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class StorageFormat:
    classification: str
    input_format: str
    output_format: str
    serde: str
    serde_parameters: dict[str, str]


PARQUET = StorageFormat(
    classification="parquet",
    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    serde="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    serde_parameters={"serialization.format": "1"},
)
# Landing feeds are the raw JSON-lines files. The OpenX SerDe matches JSON keys to columns case-insensitively
# (stated explicitly here because the registry relies on it: accelerometer's `timeStamp` is column `timestamp`).
# A `mapping.<column>` property would read one key only, so an alias differing beyond case is refused instead.
JSON_LINES = StorageFormat(
    classification="json",
    input_format="org.apache.hadoop.mapred.TextInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    serde="org.openx.data.jsonserde.JsonSerDe",
    serde_parameters={"ignore.malformed.json": "true", "case.insensitive": "true"},
)


def hive_type(dtype: T.DataType) -> str:
    """The Athena/Hive spelling of a Spark type; CatalogError for a type without one."""
    if isinstance(dtype, T.DecimalType):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, T.ArrayType):
        return f"array<{hive_type(dtype.elementType)}>"
    if isinstance(dtype, T.MapType):
        return f"map<{hive_type(dtype.keyType)},{hive_type(dtype.valueType)}>"
    if isinstance(dtype, T.StructType):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.dataType)}" for f in dtype.fields) + ">"
    if type(dtype) not in HIVE_TYPES:
        raise CatalogError(f"Spark type {dtype.simpleString()} has no Athena/Hive type here: add it to HIVE_TYPES")
    return HIVE_TYPES[type(dtype)]


def storage_format(table: ZoneTable) -> StorageFormat:
    if table.zone is not Zone.LANDING:
        return PARQUET
    for alias, column in table.aliases.items():
        if alias.lower() != column.lower():
            raise CatalogError(
                f"{table.name}: JSON key {alias!r} for column {column!r} differs beyond case; the OpenX SerDe maps"
                " one key per column, so Athena would miss one spelling"
            )
    return JSON_LINES


def catalog_columns(table: ZoneTable) -> list[Column]:
    """The table's columns as the catalog stores them, from its contract alone.

    Landing tables leave out the lineage columns: the parser adds them, the JSON lines do not hold them
    (Athena's "$path" names a row's file).
    """
    docs = column_docs(table.model)
    columns = []
    for field in table.schema.fields:
        if table.zone is Zone.LANDING and field.name in LINEAGE_COLUMNS:
            continue
        try:
            columns.append(Column(field.name, hive_type(field.dataType), docs.get(field.name, "")))
        except CatalogError as error:
            raise CatalogError(f"{table.name}.{field.name}: {error}") from None
    return columns


def table_location(table: ZoneTable, root: str) -> str:
    """The table's folder: s3:// for S3 roots (also given as s3a://), a file:// URI for a local root."""
    base = "s3://" + root.split("://", 1)[1] if is_s3(root) else Path(root).resolve().as_uri()
    return f"{base.rstrip('/')}/{table.path}/"


def table_parameters(table: ZoneTable) -> dict[str, str]:
    return {"classification": storage_format(table).classification}


def _quoted(text: str) -> str:
    """A Hive string literal (Hive escapes with backslashes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _properties(values: dict[str, str]) -> str:
    return "(" + ", ".join(f"{_quoted(k)}={_quoted(v)}" for k, v in values.items()) + ")"


def athena_ddl(table: ZoneTable, root: str, database: str = DEFAULT_DATABASE) -> str:
    """CREATE EXTERNAL TABLE IF NOT EXISTS for one table, runnable in Athena (for an s3:// root)."""
    fmt = storage_format(table)
    columns = ",\n".join(
        f"  {_identifier(c.name)} {c.type} COMMENT {_quoted(c.comment)}" for c in catalog_columns(table)
    )
    lines = [f"-- {table.name}: {table.zone.value} zone"]
    if not is_s3(root):
        lines.append("-- Athena reads only S3: set STEDI_LAKE_ROOT=s3://bucket/prefix for usable locations")
    if fmt is JSON_LINES:
        lines.append("-- Raw lines as delivered, including those the pipeline quarantines; JSON keys match any case")
    lines += [
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {_identifier(database)}.{_identifier(table.name)} (",
        columns,
        ")",
        f"COMMENT {_quoted(table.description)}",
    ]
    if fmt is PARQUET:
        lines.append("STORED AS PARQUET")
    else:
        lines += [
            f"ROW FORMAT SERDE {_quoted(fmt.serde)}",
            f"WITH SERDEPROPERTIES {_properties(fmt.serde_parameters)}",
            f"STORED AS INPUTFORMAT {_quoted(fmt.input_format)}",
            f"OUTPUTFORMAT {_quoted(fmt.output_format)}",
        ]
    lines += [
        f"LOCATION {_quoted(table_location(table, root))}",
        f"TBLPROPERTIES {_properties(table_parameters(table))};",
    ]
    return "\n".join(lines)


def glue_table_input(table: ZoneTable, root: str) -> dict[str, Any]:
    """The Glue TableInput of one table: the same columns, format and location as its DDL."""
    fmt = storage_format(table)
    return {
        "Name": table.name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {**table_parameters(table), "EXTERNAL": "TRUE"},
        "StorageDescriptor": {
            "Columns": [{"Name": c.name, "Type": c.type, "Comment": c.comment} for c in catalog_columns(table)],
            "Location": table_location(table, root),
            "InputFormat": fmt.input_format,
            "OutputFormat": fmt.output_format,
            "SerdeInfo": {"SerializationLibrary": fmt.serde, "Parameters": fmt.serde_parameters},
        },
    }


def register(glue: Any, database: str, root: str, tables: list[ZoneTable]) -> list[str]:
    """Creates the database if absent, then creates or updates every table (safe to rerun). Returns what it did."""
    done = []
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "STEDI lakehouse zone tables"})
        done.append(f"created database {database}")
    except glue.exceptions.AlreadyExistsException:
        pass
    for table in tables:
        table_input = glue_table_input(table, root)
        try:
            glue.create_table(DatabaseName=database, TableInput=table_input)
            done.append(f"created table {database}.{table.name}")
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=database, TableInput=table_input)
            done.append(f"updated table {database}.{table.name}")
    return done


def database_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", text):
        raise argparse.ArgumentTypeError(f"{text!r}: Glue database names are lowercase letters, digits and _")
    return text


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Athena DDL for every zone table of the lake of STEDI_LAKE_ROOT, or register them in AWS Glue.",
    )
    parser.add_argument("--database", type=database_name, default=DEFAULT_DATABASE)
    parser.add_argument(
        "--register",
        action="store_true",
        help="create or update the database and tables in the Glue Data Catalog (AWS_* environment variables)",
    )
    args = parser.parse_args(argv)
    try:
        settings = from_env()
        root, tables = settings.lake_root_or_sample, list(ALL_TABLES.values())
        if not args.register:
            statements = [f"CREATE DATABASE IF NOT EXISTS {_identifier(args.database)};"]
            print("\n\n".join(statements + [athena_ddl(t, root, args.database) for t in tables]))
            return 0
        if not settings.uses_s3:
            raise CatalogError(f"--register needs an s3:// lake root (STEDI_LAKE_ROOT); Athena cannot read {root}")
        glue = boto3.client(
            "glue", region_name=settings.aws_region or None, endpoint_url=settings.aws_endpoint_url or None
        )
        print("\n".join(register(glue, args.database, root, tables)))
    except (CatalogError, SettingsError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
