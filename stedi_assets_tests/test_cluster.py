"""The same graph on a real Spark standalone cluster and through a real Spark Connect server, both started from
the pyspark installation, compared row for row with a local run on the same lake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from stedi_assets.tables import ALL_TABLES, Zone
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import generate_lake, materialize_lake
from stedi_assets_tests.servers import run_graph, spark_connect, spark_standalone

STORED_TABLES = [table for table in ALL_TABLES.values() if table.zone is not Zone.LANDING]


def snapshot(lake: Path) -> dict[str, pd.DataFrame]:
    """Every stored table as pandas reads it (pyarrow skips _SUCCESS and the like), in a canonical row order;
    the quarantines' run_id differs between runs by design, so it is left out."""
    tables = {}
    for table in STORED_TABLES:
        frame = pd.read_parquet(lake / table.path).drop(columns=["run_id"], errors="ignore")
        tables[table.name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


def remove_outputs(lake: Path) -> None:
    """So that only the run under test can have written the tables compared afterwards."""
    for table in STORED_TABLES:
        shutil.rmtree(lake / table.path)


def assert_same_tables(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, check_dtype=True, obj=name)


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A generated lake and the tables of a local run on it (the test session's local[2] Spark)."""
    root = tmp_path_factory.mktemp("cluster-lake")
    generate_lake(root, customers=30)
    with DagsterInstance.ephemeral() as instance:
        assert materialize_lake(root, ConsentPolicy.SINCE, instance).success
    local = snapshot(root)
    assert all(len(local[name]) > 0 for name in ("machine_learning_curated", "step_trainer_trusted_quarantine"))
    return root, local


def test_a_standalone_cluster_gives_the_local_tables(lake, tmp_path: Path) -> None:
    root, local = lake
    remove_outputs(root)
    with spark_standalone(tmp_path / "services") as master:
        run = run_graph(root, master, tmp_path / "home")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert f"Spark: {master}" in run.stderr
        # The master gave the run's application executors on its worker.
        assert "Registering app stedi-lakehouse" in (tmp_path / "services" / "spark-master.log").read_text()
    assert_same_tables(snapshot(root), local)


def test_a_spark_connect_server_gives_the_local_tables(lake, tmp_path: Path) -> None:
    root, local = lake
    remove_outputs(root)
    with spark_connect(tmp_path / "services") as remote:
        run = run_graph(root, remote, tmp_path / "home")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert f"Spark: {remote}" in run.stderr
    assert_same_tables(snapshot(root), local)
