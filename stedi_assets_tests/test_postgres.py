"""`stedi up`'s PostgreSQL: the Dagster instance it writes keeps runs, event logs and schedules there.

- Fast: the dagster.yaml `up` writes is a valid instance configuration with postgres storage (each field as
  dagster-postgres reads it) and holds no password; state files of earlier versions still read; `down`'s order.
- Services (one `stedi up` for the module, on a tiny lake, no Connect server): the landing sensor's run and a run
  launched as the UI's launchpad launches one (GraphQL) succeed, and their runs and events are rows of PostgreSQL;
  `stedi down` then `stedi up` keeps the run history (no second initdb, the same password); the password is in
  no log, state file, output of `stedi up` / `status` or command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.run_storage import PostgresRunStorage

from stedi_assets.cli import services as cli
from stedi_assets.services import postgres, stack, supervisor
from stedi_assets_tests import tiers
from stedi_assets_tests.lakes import SUBPROCESS_SPARK, generate_lake
from stedi_assets_tests.servers import free_port

LAKE_CUSTOMERS = 4
RUN_TIMEOUT_SECONDS = 600
# One multi-asset (the customer feed's landing table and its quarantine), which the UI selects whole.
LAUNCHPAD_ASSETS = ("customer_landing", "customer_landing_quarantine")
SENSOR_TAG = "dagster/sensor_name"


# --- fast: the instance `up` writes -----------------------------------------------------------------------------


def test_the_instance_up_writes_keeps_its_storage_in_postgres_and_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = postgres.Server(tmp_path / "services", port=15555)
    server.state_dir.mkdir()
    server.password_file.write_text("the-generated-password\n")
    env = stack.postgres_home(server)
    assert env == {"DAGSTER_HOME": str(server.dagster_home), "TMPDIR": str(server.dagster_home / "tmp")}
    text = (server.dagster_home / "dagster.yaml").read_text()
    assert "the-generated-password" not in text

    monkeypatch.setenv(postgres.PASSWORD_ENV, "from-the-environment")
    config, custom_class = dagster_instance_config(str(server.dagster_home))
    assert custom_class is None
    resolved = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    db = resolved.value["postgres_db"]
    assert db == {
        "scheme": "postgresql+psycopg2",
        "hostname": "127.0.0.1",
        "port": 15555,
        "db_name": "dagster",
        "username": "stedi",
        "password": "from-the-environment",
        "params": {},
    }
    # The rest is the project's instance (dagster.yaml.example), as `make run` and `make test` have it.
    assert config["run_coordinator"]["config"] == {
        "dequeue_interval_seconds": 1,
        "tag_concurrency_limits": [{"key": "stedi/trigger", "limit": 1}],
    }
    assert config["telemetry"] == {"enabled": False}
    # Opened in this process, the password is given to the storage, this process's environment left alone.
    monkeypatch.delenv(postgres.PASSWORD_ENV)
    overrides = {"storage": server.storage(server.password())}
    db = overrides["storage"]["postgres"]["postgres_db"]  # type: ignore[index]
    assert db["password"] == "the-generated-password"
    assert postgres.PASSWORD_ENV not in os.environ


def test_make_run_keeps_sqlite() -> None:
    """`make run` and `make test` use $DAGSTER_HOME with dagster.yaml.example: no storage section (SQLite)."""
    makefile = (supervisor.REPO / "Makefile").read_text()
    assert "export DAGSTER_HOME ?= $(CURDIR)/.dagster_home" in makefile
    assert "cp dagster.yaml.example $@" in makefile
    assert "storage" not in (supervisor.REPO / "dagster.yaml.example").read_text()


def test_state_files_of_earlier_versions_read_and_a_bad_leader_signal_proves_nothing(tmp_path: Path) -> None:
    record = {
        "pid": os.getpid(),
        "start_time": 1,
        "boot_id": "b",
        "cmdline": ["x"],
        "service_id": "0123456789abcdef0123456789abcdef",
        "ports": [],
    }
    (tmp_path / "old.json").write_text(json.dumps(record))
    assert supervisor.Record.read(tmp_path / "old.json").leader_signal is None
    (tmp_path / "new.json").write_text(json.dumps(record | {"leader_signal": "SIGINT"}))
    assert supervisor.Record.read(tmp_path / "new.json").leader_signal == "SIGINT"
    (tmp_path / "bad.json").write_text(json.dumps(record | {"leader_signal": "SIGKILL; rm"}))
    with pytest.raises(supervisor.StaleRecord, match="leader_signal"):
        supervisor.Record.read(tmp_path / "bad.json")


def test_postgres_runs_as_an_unprivileged_user_and_stops_with_a_fast_shutdown(tmp_path: Path) -> None:
    service = postgres.Server(tmp_path, port=15555).service()
    assert service.leader_signal == "SIGINT" and service.ports == (15555,)
    assert service.user == ("postgres" if os.geteuid() == 0 else None)
    assert [word for word in service.command if "password" in word.lower()] == []
    assert set(service.env) == {"PATH", "LANG", "TZ"}
    assert supervisor.STOPPED_LAST == ("spark-connect", "postgres")


# --- services: `stedi up` with PostgreSQL -----------------------------------------------------------------------


@dataclass
class Up:
    work: Path
    state_dir: Path
    server: postgres.Server
    url: str
    argv: list[str]
    environment: dict[str, str]
    outputs: list[str]  # what `stedi up`, `status` and `down` printed

    def instance(self) -> DagsterInstance:
        return stack.open_instance(self.server.dagster_home, self.server)

    def cli(self, *action: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.environment.items():
                patch.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = cli.main([*action, *self.argv], prog=f"stedi {action[0]}")
        self.outputs += [out.getvalue(), err.getvalue()]
        assert status == 0, err.getvalue()
        return out.getvalue()


def finished(instance: DagsterInstance, filters: RunsFilter, timeout: float, what: str) -> DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters)
        if runs and runs[0].status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            failures = instance.all_logs(runs[0].run_id, of_type={DagsterEventType.STEP_FAILURE})
            why = [event.dagster_event.step_failure_data.error.message for event in failures if event.dagster_event]
            assert runs[0].status == DagsterRunStatus.SUCCESS, f"{what}: {runs[0].run_id} {runs[0].status} {why}"
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def up() -> Iterator[Up]:
    """`stedi up --no-connect` with PostgreSQL on a tiny lake; `stedi down` after the module, checked to leave no
    process of any group. Its folder is not pytest's (0700, out of reach of the user postgres runs as)."""
    tiers.require("services")
    work = Path(tempfile.mkdtemp(prefix="stedi-postgres-"))
    work.chmod(0o755)
    state_dir = work / "services"
    lake = work / "lake"
    generate_lake(lake, customers=LAKE_CUSTOMERS)
    port, pg_port = free_port(), free_port()
    argv = ["--state-dir", str(state_dir), "--webserver-port", str(port), "--postgres-port", str(pg_port)]
    environment = {"STEDI_LAKE_ROOT": str(lake), "STEDI_SENSOR_INTERVAL_SECONDS": "1", **SUBPROCESS_SPARK}
    servers = Up(
        work, state_dir, postgres.Server(state_dir, pg_port), f"http://127.0.0.1:{port}", argv, environment, []
    )
    started: dict[str, int] = {}
    try:
        servers.cli("up", "--no-connect")
        started = supervisor.running(state_dir)
        yield servers
    finally:
        started |= supervisor.running(state_dir)
        assert supervisor.down(state_dir).stale == []
        assert {name: supervisor._group(pid) for name, pid in started.items()} == {name: [] for name in started}
        shutil.rmtree(work, ignore_errors=True)


LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""


def launch_from_the_launchpad(url: str, assets: tuple[str, ...]) -> str:
    """What the UI's launchpad sends for a materialization of `assets` with no config (their checks: all of
    theirs); returns the run's id."""
    params = {
        "selector": {
            "repositoryLocationName": "stedi_assets",
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": [asset]} for asset in assets],
            "assetCheckSelection": None,
        },
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": []},
    }
    body = json.dumps({"query": LAUNCH, "variables": {"executionParams": params}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())["data"]["launchPipelineExecution"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    run_id: str = answer["run"]["runId"]
    return run_id


def rows(server: postgres.Server, query: str, **params: str) -> list[tuple]:
    engine = server.engine()
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(query), params)]
    finally:
        engine.dispose()


@pytest.mark.services
def test_sensor_and_launchpad_runs_keep_their_records_in_postgres_across_down_and_up(up: Up) -> None:
    assert set(supervisor.running(up.state_dir)) == {"postgres", "dagster-daemon", "dagster-webserver"}
    instance = up.instance()
    try:
        sensor_run = finished(
            instance, RunsFilter(tags={SENSOR_TAG: "landing_files"}), RUN_TIMEOUT_SECONDS, "the sensor's run"
        )
        launched = launch_from_the_launchpad(up.url, LAUNCHPAD_ASSETS)
        launchpad_run = finished(instance, RunsFilter(run_ids=[launched]), RUN_TIMEOUT_SECONDS, "the launchpad's run")
        assert launchpad_run.asset_selection == {AssetKey(name) for name in LAUNCHPAD_ASSETS}
    finally:
        instance.dispose()
    ours = (sensor_run.run_id, launchpad_run.run_id)

    # Rows of PostgreSQL, read as any client of the database reads them.
    statuses = dict(rows(up.server, "SELECT run_id, status FROM runs"))
    assert {run_id: statuses[run_id] for run_id in ours} == {run_id: "SUCCESS" for run_id in ours}
    events = dict(rows(up.server, "SELECT run_id, count(*) FROM event_logs WHERE run_id <> '' GROUP BY run_id"))
    query = "SELECT DISTINCT dagster_event_type FROM event_logs WHERE run_id = :run_id"
    kinds = {run_id: {kind for (kind,) in rows(up.server, query, run_id=run_id)} for run_id in ours}
    for run_id in ours:
        assert events[run_id] > 5, run_id
        wanted = (DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS, DagsterEventType.ASSET_MATERIALIZATION)
        assert {kind.value for kind in wanted} <= kinds[run_id], run_id  # RUN_* are stored as PIPELINE_*
    # The sensor's ticks (schedule storage) are there too.
    assert rows(up.server, "SELECT count(*) FROM job_ticks")[0][0] > 0

    # `stedi down`, then `stedi up` on the same folder: the same cluster (no initdb), the same password.
    password = up.server.password()
    control = up.server.data / "global" / "pg_control"
    created = control.stat().st_ino
    assert "stopped: dagster-daemon, dagster-webserver, postgres" in up.cli("down")
    assert supervisor.running(up.state_dir) == {}
    assert "database system is shut down" in (up.state_dir / "postgres.log").read_text()
    up.cli("up", "--no-connect")
    assert up.server.password() == password and control.stat().st_ino == created
    instance = up.instance()
    try:
        kept = {run.run_id: run.status for run in instance.get_runs()}
        assert {run_id: kept[run_id] for run_id in ours} == {run_id: DagsterRunStatus.SUCCESS for run_id in ours}
        assert len(instance.all_logs(launchpad_run.run_id)) == events[launchpad_run.run_id]
    finally:
        instance.dispose()

    status = up.cli("status")
    assert f"postgres           pid {supervisor.running(up.state_dir)['postgres']}  ports {up.server.port}" in status

    # The password: in its own file (0600) and in the daemon's and webserver's environment, nowhere else.
    assert up.server.password_file.stat().st_mode & 0o777 == 0o600
    assert len(password) >= 32
    for text in up.outputs:
        assert password not in text
    found = subprocess.run(["grep", "-rlF", "--", password, str(up.work)], capture_output=True, text=True)
    assert found.stdout.splitlines() == [str(up.server.password_file)]
    command_lines = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert password not in command_lines
    for pid in supervisor.survey(up.state_dir).running["postgres"].processes():
        assert postgres.PASSWORD_ENV not in Path(f"/proc/{pid}/environ").read_text(errors="replace")


@pytest.mark.services
def test_the_production_instance_file_reads_the_same_postgres(
    up: Up, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dagster.production.yaml, given this server's address and password as a deployment gives its own, is an
    instance that reads the runs `stedi up`'s daemon recorded: its storage settings connect, not only parse."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(stack.supervisor.REPO / "dagster.production.yaml", home / "dagster.yaml")
    deployment = {
        "DAGSTER_PG_HOST": postgres.HOST,
        "DAGSTER_PG_PORT": str(up.server.port),
        "DAGSTER_PG_DB": postgres.DATABASE,
        "DAGSTER_PG_USERNAME": postgres.USERNAME,
        "DAGSTER_PG_PASSWORD": up.server.password(),
        "DAGSTER_COMPUTE_LOG_BUCKET": "compute-logs",
    }
    for name, value in deployment.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        sensor_runs = instance.get_runs(RunsFilter(tags={SENSOR_TAG: "landing_files"}))
        assert [run.status for run in sensor_runs][-1:] == [DagsterRunStatus.SUCCESS]
