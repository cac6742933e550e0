"""Real servers for the end-to-end and cluster tests (and benchmarks/spark_targets.py), started and stopped
through `stedi_assets.services` (the code behind `make up` / `make down`): each in its own process group,
stopped by its recorded identity. The standalone cluster's builders live here: only tests and benchmarks use them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from stedi_assets.services import stack, supervisor
from stedi_assets.spark_settings import SparkTarget
from stedi_assets_tests import tiers

REPO = Path(__file__).resolve().parent.parent
SPARK_CLASS = str(stack.SPARK_HOME / "bin" / "spark-class")
# Only the JVM's quick compiler (C1) in the test servers' JVMs and in a cluster run's driver and executors, as a
# user sets it (STEDI_SPARK_CONF, SPARK_DAEMON_JAVA_OPTS): on runs of a small lake, of a minute or two, C2's warm-up
# dominates. Measured on 2 busy cores: a standalone cluster's run 80 CPU-seconds instead of 173 (Spark's default
# partitioning kept: it is the cluster's); a Connect server's start and two runs 112 instead of 157 with the test
# runs' small partitioning too (the local master's 16 partitions otherwise; sessions may set their own).
# C1 alone also shrinks the JVM's code cache from 240 MB to 48 MB, which a warm Connect server filled within one
# pipeline run ("Out of space in CodeCache for adapters": the JVM ends, and its clients retry for minutes): the
# cache keeps its usual size.
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
# Small Spark processes: the test session's JVM and a run's driver share the machine's 2 cores with them.
SPARK_DAEMON_ENV = {"SPARK_DAEMON_MEMORY": "512m", "SPARK_DAEMON_JAVA_OPTS": QUICK_JVM}
WORKER_MEMORY = "2g"
TEST_SERVER_SETTINGS = SparkTarget(
    master="local[2]", conf={"spark.driver.extraJavaOptions": QUICK_JVM, "spark.sql.shuffle.partitions": "2"}
)
CLUSTER_RUN_CONF = {"spark.driver.extraJavaOptions": QUICK_JVM, "spark.executor.extraJavaOptions": QUICK_JVM}
# A secret no service needs (test_services reads every service process's environment for it).
UNRELATED_SECRET = ("GITHUB_TOKEN", "ghp_unrelated-secret-that-no-service-needs")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def standalone_master(port: int, daemon_env: dict[str, str] | None = None) -> supervisor.Service:
    """A Spark standalone master through pyspark's spark-class (pyspark ships no start-master.sh)."""
    options = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", "0"]
    env = stack.spark_environment(os.environ) | (daemon_env or {})
    command = [SPARK_CLASS, "org.apache.spark.deploy.master.Master", *options]
    return supervisor.Service("spark-master", command, env, ports=(port,))


def standalone_worker(
    master_url: str, cores: int, memory: str, work_dir: Path, daemon_env: dict[str, str] | None = None
) -> supervisor.Service:
    options = ["--host", "127.0.0.1", "--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir)]
    command = [SPARK_CLASS, "org.apache.spark.deploy.worker.Worker", master_url, *options, "--webui-port", "0"]
    env = stack.spark_environment(os.environ) | (daemon_env or {})
    return supervisor.Service("spark-worker", command, env, ready_log="Successfully registered with master")


@dataclass
class Servers:
    url: str
    instance: DagsterInstance
    lake: Path
    state_dir: Path
    connect: str | None = None  # the Spark Connect server `up` started (sc://...), if it started one

    def runs(self, status: DagsterRunStatus | None = None) -> list[DagsterRun]:
        return list(self.instance.get_runs(RunsFilter(statuses=[status] if status else [])))

    def wait_for(self, condition: Callable[[], DagsterRun | None], timeout: float, what: str) -> DagsterRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found is not None:
                return found
            failed = self.runs(DagsterRunStatus.FAILURE)
            if failed:
                raise AssertionError(f"a run failed while waiting for {what}: {failed[0].run_id}")
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def initial_load(self, timeout: float) -> DagsterRun:
        """The landing sensor's first run (of every file of the new lake), once it has succeeded. (Not merely the
        first run: the freshness sensor may run its check first, the generated files having arrived long ago.)"""

        def loaded() -> DagsterRun | None:
            first = list(self.instance.get_runs(RunsFilter(tags={"dagster/sensor_name": "landing_files"})))[-1:]
            return first[0] if first and first[0].status == DagsterRunStatus.SUCCESS else None

        return self.wait_for(loaded, timeout, "the initial load")


@contextmanager
def dagster_servers(home: Path, lake: Path, state_dir: Path, connect: bool = False) -> Iterator[Servers]:
    """`make up` on a lake (with a Connect server if `connect`), with a 1 s sensor interval; `make down` on exit,
    checked to leave no process of any service's group behind."""
    tiers.require("services")
    env = {**stack.dagster_home(home), "STEDI_LAKE_ROOT": str(lake), "STEDI_SENSOR_INTERVAL_SECONDS": "1"}
    port = free_port()
    connect_port = free_port() if connect else None
    instance = None
    started: dict[str, int] = {}
    try:
        # On a fresh DAGSTER_HOME: `up` creates the instance before the daemon and the webserver start.
        started = stack.up(TEST_SERVER_SETTINGS, state_dir, connect_port, port, env)
        instance = DagsterInstance.from_config(str(home))
        yield Servers(
            url=f"http://127.0.0.1:{port}",
            instance=instance,
            lake=lake,
            state_dir=state_dir,
            connect=f"sc://127.0.0.1:{connect_port}" if connect_port is not None else None,
        )
    finally:
        assert supervisor.down(state_dir).stale == []
        if instance is not None:
            instance.dispose()
    assert supervisor.running(state_dir) == {}
    # No process of any group is left (an orphan's zombie may wait a moment for init to reap it: it runs nothing).
    assert {name: supervisor._group(pid) for name, pid in started.items()} == {name: [] for name in started}


@contextmanager
def spark_standalone(state_dir: Path, cores: int = 2) -> Iterator[str]:
    """A Spark standalone master and one worker, started with pyspark's own spark-class; yields spark://..."""
    tiers.require("services")
    port = free_port()
    master_url = f"spark://127.0.0.1:{port}"
    try:
        supervisor.launch(standalone_master(port, SPARK_DAEMON_ENV), state_dir)
        worker = standalone_worker(master_url, cores, WORKER_MEMORY, state_dir / "work", SPARK_DAEMON_ENV)
        supervisor.launch(worker, state_dir)
        yield master_url
    finally:
        assert supervisor.down(state_dir).stale == []
    assert supervisor.running(state_dir) == {}


@contextmanager
def spark_connect(
    state_dir: Path, target: SparkTarget = TEST_SERVER_SETTINGS, ui_port: int | None = None
) -> Iterator[str]:
    """A Spark Connect server (pyspark's start-connect-server.sh) as `make up` starts it, its UI on `ui_port` if
    given (as STEDI_SPARK_CONF's spark.ui.enabled=true turns it on), off otherwise; yields sc://..."""
    tiers.require("services")
    port = free_port()
    if ui_port is not None:
        target = replace(target, conf={**target.conf, "spark.ui.enabled": "true", "spark.ui.port": str(ui_port)})
    try:
        supervisor.launch(stack.spark_connect(target, port), state_dir)
        yield f"sc://127.0.0.1:{port}"
    finally:
        assert supervisor.down(state_dir).stale == []
    assert supervisor.running(state_dir) == {}


def run_graph(
    lake: Path | str, master: str, home: Path, conf: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`stedi run` (what `make run` runs) in its own process, against a Spark master (with STEDI_SPARK_CONF=conf)."""
    tiers.require("services")
    tiers.require("graph")
    env = {**os.environ, **stack.dagster_home(home), "STEDI_LAKE_ROOT": str(lake), "STEDI_SPARK_MASTER": master}
    env |= {"STEDI_SPARK_CONF": json.dumps(conf)} if conf is not None else {}
    return subprocess.run(
        [str(Path(sys.executable).parent / "stedi"), "run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
