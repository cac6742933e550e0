"""The same graph on a real Spark standalone cluster and through a real Spark Connect server, both started from
the pyspark installation, compared row for row with a local run on the same lake."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import boto3
import pandas as pd
import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from stedi_assets.tables import ALL_TABLES
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import generate_lake, materialize_lake, table_frame, upload
from stedi_assets_tests.servers import TEST_SERVER_SETTINGS, Servers, run_graph, spark_connect, spark_standalone
from stedi_assets_tests.test_s3 import comparable

pytest_plugins = ["stedi_assets_tests.shared_servers"]
pytestmark = [pytest.mark.services, pytest.mark.graph, pytest.mark.s3]

BUCKET = "stedi-connect"
CUSTOMERS = 22  # the smallest lake (of seed 11) with a device of two owners at once: a step_trainer_trusted_quarantine


def snapshot(root: Path | str) -> dict[str, pd.DataFrame]:
    """Every table's current version as delta-rs reads it, in a canonical row order.

    Quarantine rows name their run, which differs between runs by design, and lineage names files under the
    lake root: the run is left out and the file kept relative to the root.
    """
    return {table.name: comparable(table_frame(root, table), str(root)) for table in ALL_TABLES.values()}


def remove_outputs(lake: Path) -> None:
    """So that only the run under test can have written the tables compared afterwards."""
    for table in ALL_TABLES.values():
        shutil.rmtree(lake / table.path)


def assert_same_tables(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, check_dtype=True, obj=name)


def run_on(root: Path | str, master: str, home: Path) -> None:
    """`stedi run` against `master`: it must succeed, and its run log name that Spark."""
    run = run_graph(root, master, home)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
        logs = [entry.user_message for entry in instance.all_logs(record.dagster_run.run_id)]
    assert f"Spark: {master}" in logs


@pytest.fixture(scope="module")
def lake(spark: SparkSession, s3_server: str, tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A generated lake, copied to S3 (same arrivals), and the tables of a local run on it (the test session's
    local[2] Spark)."""
    root = tmp_path_factory.mktemp("cluster-lake")
    generate_lake(root, customers=CUSTOMERS)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    upload(root, BUCKET, "lake")
    with DagsterInstance.ephemeral() as instance:
        assert materialize_lake(root, ConsentPolicy.SINCE, instance).success
    local = snapshot(root)
    assert all(len(local[name]) > 0 for name in ("machine_learning_curated", "step_trainer_trusted_quarantine"))
    return root, local


def test_a_standalone_cluster_gives_the_local_tables(lake, tmp_path: Path) -> None:
    root, local = lake
    remove_outputs(root)
    with spark_standalone(tmp_path / "services") as master:
        run_on(root, master, tmp_path / "home")
        # The master gave the run's application executors on its worker.
        assert "Registering app stedi-lakehouse" in (tmp_path / "services" / "spark-master.log").read_text()
    assert_same_tables(snapshot(root), local)


def test_a_spark_connect_server_gives_the_local_tables(lake, services_up: Servers, tmp_path: Path) -> None:
    """On the session's `make up` Connect server, started for a local lake (shared_servers)."""
    root, local = lake
    remove_outputs(root)
    assert services_up.connect is not None
    run_on(root, services_up.connect, tmp_path / "home")
    assert_same_tables(snapshot(root), local)


def test_a_connect_server_started_for_an_s3_lake_gives_the_local_tables(lake, s3_server: str, tmp_path: Path) -> None:
    """The server holds the s3a jars, settings and credentials (as `make up` starts it for an s3:// lake)."""
    _, local = lake
    root = f"s3://{BUCKET}/lake"
    server_settings = replace(TEST_SERVER_SETTINGS, lake_root=root)
    with spark_connect(tmp_path / "services", server_settings) as remote:
        run_on(root, remote, tmp_path / "home")
    assert_same_tables(snapshot(root), local)
