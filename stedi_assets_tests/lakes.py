"""Generated lakes, real materializations of the project's Definitions, and reading tables as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import boto3
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult
from deltalake import DeltaTable

from stedi_assets.definitions import defs
from stedi_assets.lake.storage import storage_for
from stedi_assets.sample import Rates, generate
from stedi_assets.tables import ALL_TABLES, LANDING_TABLES, ZoneTable
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import tiers
from stedi_assets_tests.servers import QUICK_JVM

REPO = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).parent / "dagster"
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
# For a run in a process of its own (`stedi run`, `dagster asset materialize`), as a user sets it: the test lakes'
# small partitioning, and only the JVM's quick compiler (C1), whose warm-up costs a fraction of C2's on a run
# of about a minute on two busy cores (a run of a small lake took half the time or less).
SUBPROCESS_SPARK = {
    "STEDI_SPARK_MASTER": "local[2]",
    "STEDI_SPARK_CONF": json.dumps({"spark.sql.shuffle.partitions": "2", "spark.driver.extraJavaOptions": QUICK_JVM}),
}


def generate_lake(root: Path, customers: int = 40, seed: int = 11) -> dict:
    return generate(root, customers=customers, seed=seed, readings=12, files=3, rates=DEFECTIVE)


def empty_lake(root: Path) -> None:
    """A lake root with its landing folders and nothing delivered: what a run's lake check accepts."""
    for table in LANDING_TABLES:
        (root / table.files_path).mkdir(parents=True)


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


def generated_lake_on_s3(local: Path, name: str, customers: int, seed: int = 11) -> str:
    """A generated lake (written at `local` too) copied into a new bucket of the test S3 server; its root."""
    generate_lake(local, customers=customers, seed=seed)
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
    tiers.require("graph")
    job = defs().resolve_implicit_global_asset_job_def()
    if selection is not None:
        job = job.get_subset(asset_selection={AssetKey(name) for name in selection})
    return job.execute_in_process(run_config=run_config(root, policy, rebuild), instance=instance, raise_on_error=False)


@dataclass(frozen=True)
class Materialized:
    """A generated lake with every asset materialized once, and that run's result (its events, checks, metadata)."""

    root: Path
    policy: ConsentPolicy
    result: ExecuteInProcessResult


_materialized: dict[ConsentPolicy, Materialized] = {}


def materialized(policy: ConsentPolicy, tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    """The default generated lake (40 customers) with every asset materialized under `policy`, once per test
    session: for the tests that only read its tables or its run (conftest's `materialized_lake` is the `since`
    one). A materialization takes most of a minute, so they share it: no test may write to it."""
    if policy not in _materialized:
        root = tmp_path_factory.mktemp(f"materialized-lake-{policy.value}")
        generate_lake(root)
        instance = DagsterInstance.ephemeral()  # kept: the result's events stay readable for every test
        result = materialize_lake(root, policy, instance)
        assert result.success, f"the shared {policy.value} lake did not materialize"
        _materialized[policy] = Materialized(root, policy, result)
    return _materialized[policy]


@dataclass(frozen=True)
class OnS3:
    """A generated lake materialized locally and, copied to the test S3 server, materialized there; each table of
    both runs as it was right after them (quarantine run ids included), so that a test changing the S3 lake
    later (test_erasure's erasure on S3) changes nothing another test compares."""

    local: Path
    root: str
    local_run: ExecuteInProcessResult
    s3_run: ExecuteInProcessResult
    instance: DagsterInstance
    local_tables: dict[str, pd.DataFrame]
    s3_tables: dict[str, pd.DataFrame]

    @property
    def bucket(self) -> str:
        return self.root.split("/")[2]


_on_s3: list[OnS3] = []


def on_s3(tmp_path_factory: pytest.TempPathFactory) -> OnS3:
    """The lake of test_s3's comparison, once per test session (the S3 run costs most of a minute on moto).

    test_s3 compares its tables as they were committed; test_erasure then erases a customer from the S3 lake
    (and only there): whichever runs first, each sees what it needs."""
    if not _on_s3:
        local = tmp_path_factory.mktemp("on-s3") / "lake"
        root = generated_lake_on_s3(local, "on-s3", customers=30)
        instance = DagsterInstance.ephemeral()
        local_run = materialize_lake(local, ConsentPolicy.SINCE, instance)
        s3_run = materialize_lake(root, ConsentPolicy.SINCE, instance)
        assert local_run.success and s3_run.success
        local_tables = {name: table_frame(local, table) for name, table in ALL_TABLES.items()}
        s3_tables = {name: table_frame(root, table) for name, table in ALL_TABLES.items()}
        _on_s3.append(OnS3(local, root, local_run, s3_run, instance, local_tables, s3_tables))
    return _on_s3[0]


def dagster_materialize(lake_root: Path, home: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """`dagster asset materialize -m stedi_assets --select '*'`, run for real as a user would."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {**os.environ, "STEDI_LAKE_ROOT": str(lake_root), "DAGSTER_HOME": str(home), **env}
    command = [str(DAGSTER), "asset", "materialize", "-m", "stedi_assets", "--select", "*"]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, timeout=900)


@dataclass(frozen=True)
class CliRun:
    """A real `dagster asset materialize` of every asset, in a process of its own, and where it wrote."""

    lake: Path
    home: Path  # its DAGSTER_HOME
    events: Path  # Spark's event log (compressed, as by default)
    output: Path  # its stdout and stderr
    key: str  # its pseudonym key
    policy: ConsentPolicy
    done: subprocess.CompletedProcess[bytes]


_cli_runs: list[CliRun] = []


def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """The real Dagster CLI on the smallest generated lake with rows in every table, once per test session, with
    the `flag` policy, a pseudonym key of its own and Spark's event log on: test_cli holds its tables to the
    generator, test_secrets searches the event log, the Dagster instance, the lake and the output for the key.
    A run in a process of its own costs a JVM's start and warm-up, so both read this one."""
    tiers.require("graph")
    if not _cli_runs:
        work = tmp_path_factory.mktemp("cli-run")
        lake, events, home = work / "lake", work / "events", work / "home"
        generate_lake(lake, customers=6, seed=5)
        events.mkdir()
        key = "k3y-" + os.urandom(12).hex()
        conf = json.loads(SUBPROCESS_SPARK["STEDI_SPARK_CONF"])
        conf |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri()}
        policy = ConsentPolicy.FLAG
        env = {"STEDI_CONSENT_POLICY": policy.value, "STEDI_PSEUDONYM_KEY": key, "STEDI_SPARK_CONF": json.dumps(conf)}
        done = dagster_materialize(lake, home, **{**SUBPROCESS_SPARK, **env})
        (work / "output.txt").write_bytes(done.stdout + done.stderr)
        _cli_runs.append(CliRun(lake, home, events, work / "output.txt", key, policy, done))
    return _cli_runs[0]


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
