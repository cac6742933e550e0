"""Real dagster-webserver and dagster-daemon processes for end-to-end tests, in their own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAGSTER_YAML = (REPO / "dagster.yaml.example").read_text()


@dataclass
class Servers:
    url: str
    instance: DagsterInstance
    lake: Path

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group, SIGKILL what is left after 20 s; nothing of the group survives."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                process.wait(timeout=5)
                return
            process.poll()
            time.sleep(0.2)
    raise AssertionError(f"process group {process.pid} survived SIGKILL")


@contextmanager
def dagster_servers(home: Path, lake: Path, logs: Path) -> Iterator[Servers]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    (home / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "STEDI_LAKE_ROOT": str(lake),
        "STEDI_SENSOR_INTERVAL_SECONDS": "1",
    }
    # Created once here first: concurrent first use of a fresh instance by two servers can race.
    instance = DagsterInstance.from_config(str(home))
    port = _free_port()
    commands = {
        "webserver": [str(BIN / "dagster-webserver"), "-m", "stedi_assets", "-h", "127.0.0.1", "-p", str(port)],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-m", "stedi_assets"],
    }
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield Servers(url=url, instance=instance, lake=lake)
    finally:
        for process in processes:
            _stop(process)
        instance.dispose()
