"""Real servers for the end-to-end and cluster tests, started and stopped through `stedi_assets.cli.services`
(the code behind `make up` / `make down`): each in its own process group, stopped by its id."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from stedi_assets.cli import services

REPO = Path(__file__).resolve().parent.parent
# Small Spark processes: the test session's JVM and a run's driver share the machine's 2 cores with them.
SPARK_DAEMON_ENV = {"SPARK_DAEMON_MEMORY": "512m"}
WORKER_MEMORY = "2g"
TEST_SERVER_SETTINGS = services.SparkTarget(master="local[2]")


@dataclass
class Servers:
    url: str
    instance: DagsterInstance
    lake: Path
    state_dir: Path

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


@contextmanager
def dagster_servers(home: Path, lake: Path, state_dir: Path, connect: bool = False) -> Iterator[Servers]:
    """`make up` on a lake, with a 1 s sensor interval; `make down` on exit, checked to leave nothing running."""
    env = {**services.dagster_home(home), "STEDI_LAKE_ROOT": str(lake), "STEDI_SENSOR_INTERVAL_SECONDS": "1"}
    # Created once here first: concurrent first use of a fresh instance by two servers can race.
    instance = DagsterInstance.from_config(str(home))
    port = services.free_port()
    try:
        services.up(TEST_SERVER_SETTINGS, state_dir, services.free_port() if connect else None, port, env)
        yield Servers(url=f"http://127.0.0.1:{port}", instance=instance, lake=lake, state_dir=state_dir)
    finally:
        services.down(state_dir)
        instance.dispose()
    assert services.running(state_dir) == {}


@contextmanager
def spark_standalone(state_dir: Path, cores: int = 2) -> Iterator[str]:
    """A Spark standalone master and one worker, started with pyspark's own spark-class; yields spark://..."""
    port = services.free_port()
    master_url = f"spark://127.0.0.1:{port}"
    try:
        services.launch(replace(services.standalone_master(port), env=SPARK_DAEMON_ENV), state_dir)
        worker = services.standalone_worker(master_url, cores, WORKER_MEMORY, state_dir / "work")
        services.launch(replace(worker, env=SPARK_DAEMON_ENV), state_dir)
        yield master_url
    finally:
        services.down(state_dir)
    assert services.running(state_dir) == {}


@contextmanager
def spark_connect(state_dir: Path, settings: services.SparkTarget = TEST_SERVER_SETTINGS) -> Iterator[str]:
    """A Spark Connect server (pyspark's start-connect-server.sh) as `make up` starts it; yields sc://..."""
    port = services.free_port()
    try:
        services.launch(services.spark_connect(settings, port), state_dir)
        yield f"sc://127.0.0.1:{port}"
    finally:
        services.down(state_dir)
    assert services.running(state_dir) == {}


def run_graph(lake: Path | str, master: str, home: Path) -> subprocess.CompletedProcess:
    """`stedi run` (what `make run` runs) in its own process, against a Spark master."""
    env = {**os.environ, **services.dagster_home(home), "STEDI_LAKE_ROOT": str(lake), "STEDI_SPARK_MASTER": master}
    command = [str(Path(sys.executable).parent / "stedi"), "run"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
