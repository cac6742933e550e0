"""Generated lakes, real materializations of the project's Definitions, and reading tables as users do."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import boto3
import pandas as pd
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult
from deltalake import DeltaTable

from stedi_assets.definitions import defs
from stedi_assets.lake.storage import storage_for
from stedi_assets.sample import Rates, generate
from stedi_assets.tables import ZoneTable
from stedi_assets.transforms.readings import ConsentPolicy

# Defects far more often than in real feeds, so that a lake of a few dozen customers has every kind.
DEFECTIVE = Rates(
    duplicate_line=0.05,
    malformed_line=0.03,
    wrong_type=0.03,
    missing_field=0.03,
    unknown_user=0.05,
    unknown_device=0.05,
    shared_device=0.1,
    withdrawn=0.15,
    no_consent=0.15,
    email_variant=0.2,
    exact_tie=0.1,
    malformed_consent=0.1,
    future_consent=0.1,
    device_move=0.1,
)
TEST_KEY = "test-pseudonym-key"  # set as STEDI_PSEUDONYM_KEY by the test session (conftest)
# The test session's Spark (conftest) is reused by runs in this process; keep its small partitioning.
TEST_SPARK = {"master": "local[2]", "conf": json.dumps({"spark.sql.shuffle.partitions": "2"})}


def generate_lake(root: Path, customers: int = 40, seed: int = 11) -> dict:
    return generate(root, customers=customers, seed=seed, readings=12, files=3, rates=DEFECTIVE)


def upload(local: Path, bucket: str, prefix: str) -> None:
    """Copies a local lake to s3://bucket/prefix (the S3 server of the test session), oldest file first.

    A file arrives when it is modified locally and when it is uploaded on S3 (its LastModified), and arrival
    decides exact ties: the local files then take their copies' times, so a run on either lake reads the same
    arrivals and must give the same tables."""
    client = boto3.client("s3")
    files = sorted((p for p in local.rglob("*") if p.is_file()), key=lambda p: (p.stat().st_mtime_ns, str(p)))
    for path in files:
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local)}")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            ns = int(item["LastModified"].timestamp() * 1000) * 1_000_000  # milliseconds, as the lake reads both
            os.utime(local / item["Key"].removeprefix(f"{prefix}/"), ns=(ns, ns))


def generated_lake_on_s3(local: Path, name: str, customers: int) -> str:
    """A generated lake (written at `local` too) copied into a new bucket of the test S3 server; its root."""
    generate_lake(local, customers=customers)
    bucket = f"{name}-{os.urandom(4).hex()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    upload(local, bucket, "lake")
    return f"s3://{bucket}/lake"


def run_config(root: Path | str, policy: ConsentPolicy = ConsentPolicy.SINCE, rebuild: bool = False) -> dict:
    """Per-run settings, as a user gives them in the launchpad or with `dagster asset materialize --config`."""
    return {
        "resources": {
            "lake": {"config": {"root": str(root), "rebuild": rebuild}},
            "privacy": {"config": {"consent_policy": policy.value}},
            "spark": {"config": dict(TEST_SPARK)},
        }
    }


def materialize_lake(
    root: Path | str,
    policy: ConsentPolicy,
    instance: DagsterInstance,
    rebuild: bool = False,
    selection: list[str] | None = None,
) -> ExecuteInProcessResult:
    """Every asset and check (or `selection`) in one real run of the project's Definitions."""
    job = defs().resolve_implicit_global_asset_job_def()
    if selection is not None:
        job = job.get_subset(asset_selection={AssetKey(name) for name in selection})
    return job.execute_in_process(run_config=run_config(root, policy, rebuild), instance=instance, raise_on_error=False)


def table_location(root: Path | str, table: ZoneTable) -> str:
    return f"{str(root).rstrip('/')}/{table.path}"


def delta_table(root: Path | str, table: ZoneTable, version: int | None = None) -> DeltaTable:
    location = table_location(root, table)
    return DeltaTable(location, version=version, storage_options=storage_for(location).delta_options())


def table_frame(root: Path | str, table: ZoneTable, version: int | None = None) -> pd.DataFrame:
    """A table's current version (or `version`) as pandas reads it, through delta-rs (not the project's reader)."""
    return delta_table(root, table, version).to_pandas()


def duckdb_source(root: Path | str, table: ZoneTable) -> str:
    """A DuckDB table expression for the current version: its data files, as the README shows."""
    files = ", ".join(f"'{uri}'" for uri in delta_table(root, table).file_uris())
    return f"read_parquet([{files}])"


def gunzipped(data: bytes) -> bytes:
    """As much of a gzip stream as decompresses: a broken .gz (cut off, or not gzip past its header) included."""
    inflater, parts = zlib.decompressobj(wbits=31), []
    for start in range(0, len(data), 1024):
        try:
            parts.append(inflater.decompress(data[start : start + 1024]))
        except zlib.error:
            break
    return b"".join(parts)
