"""Athena DDL and AWS Glue Data Catalog entries for the lake's Delta tables, from each table's one declaration.

    stedi catalog [--database stedi]              # prints CREATE DATABASE and CREATE EXTERNAL TABLE statements
    stedi catalog [--database stedi] --register   # creates or updates them in the Glue Data Catalog

Two databases, so that read access to the training table can be granted without access to personal data:
- `{database}` (default `stedi`): every table that holds personal data: the parsed landing tables, the quarantine
  tables (their `raw` lines), the trusted tables and customer_curated;
- `{database}_research`: machine_learning_curated, which holds no direct identifier (`subject_key` is a keyed
  pseudonym).
A table the registry adds later goes to the personal database unless it is named in RESEARCH_TABLES.

Every table is a Delta table (its folder under STEDI_LAKE_ROOT holds `_delta_log/`), which Athena (engine v3)
reads natively: it takes the schema and the current file list from the Delta log. Athena's DDL for such a table
allows LOCATION and TBLPROPERTIES ('table_type'='DELTA') only, so the printed statements carry each column's
type and comment as SQL comments; the Glue registration stores them as the table's columns (Athena's Lake
Formation, views and column filters need the Glue schema to match the log's). Columns, types and comments come
only from the registry (`tables.py`) and the table's contract, through `catalog_columns`: a contract change
reaches both without editing anything here.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyspark.sql.types as T
from botocore.exceptions import BotoCoreError, ClientError, InvalidRegionError
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url, validate_region_name

from stedi_assets.cli import settings
from stedi_assets.contracts import column_docs
from stedi_assets.lake.storage import is_s3
from stedi_assets.lake.store import LakeStore
from stedi_assets.tables import ALL_TABLES, MACHINE_LEARNING_CURATED, ZoneTable

DEFAULT_DATABASE = "stedi"
RESEARCH_SUFFIX = "_research"
# The tables without personal data: readable by whoever may read the research database.
RESEARCH_TABLES = frozenset({MACHINE_LEARNING_CURATED.name})
# Glue's limits (API_Column.html, API_TableInput.html).
GLUE_COMMENT_MAX = 255
GLUE_DESCRIPTION_MAX = 2048
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
# What marks a Glue table as Delta: `table_type` is what Athena's own DDL sets, `spark.sql.sources.provider` what
# Spark and Trino (Athena engine v3's base) look for; both are set.
DELTA_PARAMETERS = {"table_type": "DELTA", "spark.sql.sources.provider": "delta", "EXTERNAL": "TRUE"}
# Delta's data files are Parquet: Hive-compatible readers of the Glue entry (and Glue catalog federation, which
# validates every table's storage descriptor) get the Parquet formats; Athena's Delta reader ignores them.
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


class CatalogError(ValueError):
    """A table that cannot be described to Athena / Glue as declared."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class Databases:
    """The personal-data database and the research database, both named from one prefix."""

    personal: str
    research: str

    @classmethod
    def named(cls, prefix: str = DEFAULT_DATABASE) -> Databases:
        return cls(prefix, f"{prefix}{RESEARCH_SUFFIX}")

    def of(self, table: ZoneTable) -> str:
        return self.research if table.name in RESEARCH_TABLES else self.personal

    def descriptions(self) -> dict[str, str]:
        personal = sorted(name for name in ALL_TABLES if name not in RESEARCH_TABLES)
        return {
            self.personal: "STEDI lakehouse tables that hold personal data (restricted): " + ", ".join(personal),
            self.research: "STEDI lakehouse research tables, no direct identifiers: "
            + ", ".join(sorted(RESEARCH_TABLES)),
        }


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


def catalog_columns(table: ZoneTable) -> list[Column]:
    """The table's columns as the catalog stores them, from its contract alone (lineage columns included: the
    Delta tables hold them)."""
    docs = column_docs(table.model)
    columns = []
    for field in table.schema.fields:
        try:
            column = Column(field.name, hive_type(field.dataType), docs.get(field.name, ""))
        except CatalogError as error:
            raise CatalogError(f"{table.name}.{field.name}: {error}") from None
        if len(column.comment) > GLUE_COMMENT_MAX:
            raise CatalogError(
                f"{table.name}.{field.name}: its doc is longer than Glue's {GLUE_COMMENT_MAX} characters"
            )
        columns.append(column)
    if len(table.description) > GLUE_DESCRIPTION_MAX:
        raise CatalogError(f"{table.name}: its description is longer than Glue's {GLUE_DESCRIPTION_MAX} characters")
    return columns


def table_location(table: ZoneTable, root: str) -> str:
    """The Delta table's root folder: s3:// for S3 roots (also given as s3a://), a file:// URI for a local root."""
    base = "s3://" + root.split("://", 1)[1] if is_s3(root) else Path(root).resolve().as_uri()
    return f"{base.rstrip('/')}/{table.path}/"


def _quoted(text: str) -> str:
    """A Hive string literal (Hive escapes with backslashes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def database_ddl(databases: Databases) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS {_identifier(name)}\nCOMMENT {_quoted(description)};"
        for name, description in databases.descriptions().items()
    ]


def athena_ddl(table: ZoneTable, root: str, databases: Databases) -> str:
    """CREATE EXTERNAL TABLE for one Delta table, as Athena accepts it (LOCATION and table_type, nothing else);
    the contract's description and columns above it as comments."""
    lines = [f"-- {table.name} ({table.zone.value} zone): {_one_line(table.description)}"]
    if not is_s3(root):
        lines.append("-- Athena reads only S3: set STEDI_LAKE_ROOT=s3://bucket/prefix for usable locations")
    lines.append("-- Columns (Athena reads them from the Delta log):")
    lines += [f"--   {c.name} {c.type}: {_one_line(c.comment)}" for c in catalog_columns(table)]
    lines += [
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {_identifier(databases.of(table))}.{_identifier(table.name)}",
        f"LOCATION {_quoted(table_location(table, root))}",
        "TBLPROPERTIES ('table_type'='DELTA');",
    ]
    return "\n".join(lines)


def glue_table_input(table: ZoneTable, root: str) -> dict[str, Any]:
    """The Glue TableInput of one Delta table: its location, the Delta markers, the contract's columns."""
    location = table_location(table, root)
    return {
        "Name": table.name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": dict(DELTA_PARAMETERS),
        # Athena wants the key present, even empty, on tables it did not create.
        "PartitionKeys": [],
        "StorageDescriptor": {
            "Columns": [{"Name": c.name, "Type": c.type, "Comment": c.comment} for c in catalog_columns(table)],
            "Location": location,
            "InputFormat": PARQUET_INPUT_FORMAT,
            "OutputFormat": PARQUET_OUTPUT_FORMAT,
            # Athena's Delta reader takes the table's path from here when the table was not made by its own DDL.
            "SerdeInfo": {
                "SerializationLibrary": PARQUET_SERDE,
                "Parameters": {"serialization.format": "1", "path": location},
            },
        },
    }


def register(glue: Any, databases: Databases, root: str, tables: list[ZoneTable]) -> list[str]:
    """Creates the two databases if absent, then creates or updates every table in its database, and removes it
    from the other one (where an earlier layout may have put it). Tables the registry does not declare are left
    alone. Safe to rerun. Returns what it did, a line each."""
    done = []
    for name, description in databases.descriptions().items():
        try:
            glue.create_database(DatabaseInput={"Name": name, "Description": description})
            done.append(f"created database {name}")
        except glue.exceptions.AlreadyExistsException:
            pass
    for table in tables:
        database = databases.of(table)
        table_input = glue_table_input(table, root)
        try:
            glue.create_table(DatabaseName=database, TableInput=table_input)
            done.append(f"created table {database}.{table.name}")
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=database, TableInput=table_input)
            done.append(f"updated table {database}.{table.name}")
        other = databases.personal if database == databases.research else databases.research
        try:
            glue.delete_table(DatabaseName=other, Name=table.name)
            done.append(f"removed table {other}.{table.name} (it belongs in {database})")
        except glue.exceptions.EntityNotFoundException:
            pass
    return done


def database_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", text) or len(text) + len(RESEARCH_SUFFIX) > 255:
        raise argparse.ArgumentTypeError(f"{text!r}: Glue database names are lowercase letters, digits and _")
    return text


def lake_root(register: bool) -> str:
    """The root of STEDI_LAKE_ROOT, checked: a local one must be a lake (the printed statements name its folders),
    an s3:// one is not read (printing needs no credentials); --register needs an s3:// root."""
    store = LakeStore(os.environ.get("STEDI_LAKE_ROOT", ""))
    if register and not is_s3(store.uri):
        shown = f"={store.root_setting!r}" if not store.is_sample else " is unset (the built-in sample lake) and"
        raise settings.SettingError(
            f"STEDI_LAKE_ROOT{shown} is not on S3, which --register needs (Athena reads only S3): set it to the"
            " lake's s3://bucket/prefix"
        )
    if not is_s3(store.uri):
        store.check_root()
    return store.uri


def glue_region() -> str:
    """The region --register uses: AWS_REGION, AWS_DEFAULT_REGION or the AWS profile's, checked as boto3 would."""
    name = next((name for name in ("AWS_REGION", "AWS_DEFAULT_REGION") if os.environ.get(name)), None)
    region = os.environ[name] if name else boto3.session.Session().region_name
    if not region:
        raise settings.SettingError(
            "AWS_REGION is unset, and so are AWS_DEFAULT_REGION and the AWS profile's region: set AWS_REGION to the"
            " region of your Glue Data Catalog, e.g. us-east-1"
        )
    try:
        validate_region_name(region)
    except InvalidRegionError:
        raise settings.SettingError(
            f"{name or 'the AWS profile region'}={region!r} is not a region name: set it to the region of your Glue"
            " Data Catalog, e.g. us-east-1"
        ) from None
    return region


def check_endpoints() -> None:
    """AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_GLUE (read by boto3 itself) must be http(s) URLs when set."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_GLUE"):
        url = os.environ.get(name, "")
        if url and not (
            url.startswith(("http://", "https://")) and (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url))
        ):
            shown = re.sub(r"//[^/@]*@", "//...@", url)  # a user:password in the URL is never quoted
            raise settings.SettingError(
                f"{name}={shown!r} is not an http(s) URL: set it to the address of a Glue-compatible server, e.g."
                " http://127.0.0.1:5000, or unset it to use AWS"
            )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database",
        type=database_name,
        default=DEFAULT_DATABASE,
        metavar="NAME",
        help=f"the personal-data database; the research database is NAME{RESEARCH_SUFFIX} (default: %(default)s)",
    )
    parser.add_argument(
        "--register",
        action="store_true",
        help="create or update the databases and tables in the Glue Data Catalog (AWS_* environment variables)",
    )
    settings.add_debug_option(parser)
    args = parser.parse_args(argv)
    databases = Databases.named(args.database)
    try:  # every setting checked before anything is printed or sent
        root = lake_root(args.register)
        region = glue_region() if args.register else None
        if args.register:
            check_endpoints()
    except settings.SETTING_ERRORS as error:
        return settings.report(prog or "stedi catalog", error, args.debug)
    try:
        tables = list(ALL_TABLES.values())
        if not args.register:
            print("\n\n".join(database_ddl(databases) + [athena_ddl(t, root, databases) for t in tables]))
            return 0
        # boto3 takes credentials and AWS_ENDPOINT_URL from the environment itself; AWS_REGION is spelled out.
        print("\n".join(register(boto3.client("glue", region_name=region), databases, root, tables)))
    except (CatalogError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
