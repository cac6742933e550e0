"""The same graph on a real Spark standalone cluster and through a real Spark Connect server, both started from
the pyspark installation, compared row for row with a local run on the same lake."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import pandas as pd
import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from stedi_assets.tables import ALL_TABLES
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import generate_lake, materialize_lake, table_frame, upload
from stedi_assets_tests.servers import (
    CLUSTER_RUN_CONF,
    TEST_SERVER_SETTINGS,
    Servers,
    run_graph,
    spark_connect,
    spark_standalone,
)
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


def assert_same_tables(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, check_dtype=True, obj=name)


def check_run(run: subprocess.CompletedProcess, master: str, home: Path) -> None:
    """`stedi run` against `master` succeeded, and its run log names that Spark."""
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
        logs = [entry.user_message for entry in instance.all_logs(record.dagster_run.run_id)]
    assert f"Spark: {master}" in logs


@dataclass
class Outcome:
    """A `stedi run` of a fresh copy of the lake, against one Spark; only that run wrote its tables."""

    root: Path | str
    master: str
    home: Path
    run: subprocess.CompletedProcess
    master_log: str = ""  # a standalone master's log, read before it stopped


def on_standalone(root: Path, work: Path) -> Outcome:
    with spark_standalone(work / "services") as master:
        run = run_graph(root, master, work / "home", CLUSTER_RUN_CONF)
        return Outcome(root, master, work / "home", run, (work / "services" / "spark-master.log").read_text())


def on_connect(root: Path | str, work: Path, remote: str) -> Outcome:
    return Outcome(root, remote, work / "home", run_graph(root, remote, work / "home"))


def on_connect_for_s3(root: str, work: Path) -> Outcome:
    """On a Connect server started for an s3:// lake: it holds the s3a jars, settings and credentials (as `make up`
    starts it for one)."""
    with spark_connect(work / "services", replace(TEST_SERVER_SETTINGS, lake_root=root)) as remote:
        return on_connect(root, work, remote)


@pytest.fixture(scope="module")
def runs(
    spark: SparkSession, s3_server: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, pd.DataFrame], dict[str, Future[Outcome]]]:
    """A generated lake, copied to S3 (same arrivals) and to two local folders (the same files with the same
    modification times: the same arrivals); the tables of a local run on it (the test session's local[2] Spark),
    and the runs of the copies on each Spark under test, all at once: each run waits on its Spark processes
    much of the time, and the machine has two cores to share."""
    work = tmp_path_factory.mktemp("cluster")
    root = work / "lake"
    generate_lake(root, customers=CUSTOMERS)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    upload(root, BUCKET, "lake")
    copies = {name: shutil.copytree(root, work / name / "lake") for name in ("standalone", "connect")}
    with ThreadPoolExecutor(3) as pool:
        started = {
            "standalone": pool.submit(on_standalone, copies["standalone"], work / "standalone"),
            "connect-s3": pool.submit(on_connect_for_s3, f"s3://{BUCKET}/lake", work / "connect-s3"),
        }
        # The session's `make up` (shared_servers), its Connect server started for a local lake; asked for here,
        # not as an argument, so that it starts while the other servers do.
        services_up: Servers = request.getfixturevalue("services_up")
        assert services_up.connect is not None
        started["connect"] = pool.submit(on_connect, copies["connect"], work / "connect", services_up.connect)
        with DagsterInstance.ephemeral() as instance:
            assert materialize_lake(root, ConsentPolicy.SINCE, instance).success
        local = snapshot(root)
        assert all(len(local[name]) > 0 for name in ("machine_learning_curated", "step_trainer_trusted_quarantine"))
        wait(started.values())
    return local, started


def test_a_standalone_cluster_gives_the_local_tables(runs) -> None:
    local, started = runs
    outcome = started["standalone"].result()
    check_run(outcome.run, outcome.master, outcome.home)
    # The master gave the run's application executors on its worker.
    assert "Registering app stedi-lakehouse" in outcome.master_log
    assert_same_tables(snapshot(outcome.root), local)


def test_a_spark_connect_server_gives_the_local_tables(runs) -> None:
    local, started = runs
    outcome = started["connect"].result()
    check_run(outcome.run, outcome.master, outcome.home)
    assert_same_tables(snapshot(outcome.root), local)


def test_a_connect_server_started_for_an_s3_lake_gives_the_local_tables(runs) -> None:
    """The server holds the s3a jars, settings and credentials (as `make up` starts it for an s3:// lake)."""
    local, started = runs
    outcome = started["connect-s3"].result()
    check_run(outcome.run, outcome.master, outcome.home)
    assert_same_tables(snapshot(outcome.root), local)
