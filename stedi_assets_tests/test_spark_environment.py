"""The pseudonym key never reaches a JVM's environment (nor the Python workers it starts): a run needs it in
the driver only, and a process environment is readable (/proc/<pid>/environ, Spark's UI, crash dumps)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from stedi_assets import spark_settings
from stedi_assets.resources import spark as spark_resource
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.spark import Spark
from stedi_assets.spark_settings import PSEUDONYM_KEY_ENV, SECRET_ENV, without_secrets

KEY = "key-that-must-stay-in-the-driver"


def test_a_runs_session_starts_without_the_key_which_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, KEY)
    seen: list[str | None] = []

    def start(settings: dict[str, str]) -> object:  # where dagster-pyspark would start the JVM
        seen.append(os.environ.get(PSEUDONYM_KEY_ENV))
        return object()

    monkeypatch.setattr(spark_resource, "spark_session_from_config", start)
    Spark(master="local[1]", lake=Lake(root="")).session  # noqa: B018 - starts the session
    assert seen == [None]
    assert os.environ[PSEUDONYM_KEY_ENV] == KEY


def test_the_secrets_come_back_even_when_the_start_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, KEY)
    with pytest.raises(RuntimeError), without_secrets():
        assert all(name not in os.environ for name in SECRET_ENV)
        raise RuntimeError("the JVM did not start")
    assert os.environ[PSEUDONYM_KEY_ENV] == KEY


def started_with(monkeypatch: pytest.MonkeyPatch, spark: Spark) -> dict[str, str]:
    """The settings `spark` starts its session with (no JVM is started)."""
    started: list[dict[str, str]] = []
    monkeypatch.setattr(spark_resource, "spark_session_from_config", lambda settings: started.append(settings))
    spark.session  # noqa: B018 - starts the session
    return started[0]


def test_a_local_run_gets_a_scratch_folder_of_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(spark_settings, "SCRATCH_ROOT", tmp_path / "scratch")
    settings = started_with(monkeypatch, Spark(master="local[1]", lake=Lake(root="")))
    folder = Path(settings["spark.local.dir"])
    assert folder.parent == tmp_path / "scratch" and folder.name.startswith(f"{os.getpid()}-")
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    mine = '{"spark.local.dir": "/mnt/fast"}'
    assert started_with(monkeypatch, Spark(master="local[1]", conf=mine, lake=Lake(root="")))["spark.local.dir"] == (
        "/mnt/fast"
    )
    assert "spark.local.dir" not in started_with(monkeypatch, Spark(master="spark://h:7077", lake=Lake(root="")))


SCRATCH_USER = """
import os, sys, time
from pathlib import Path
from stedi_assets import spark_settings
spark_settings.SCRATCH_ROOT = Path(sys.argv[1])
folder = spark_settings.scratch_dir()
(folder / "blockmgr-1").mkdir()
(folder / "blockmgr-1" / "rdd_0_0").write_bytes(b"rows of personal data")
print(folder, flush=True)
if sys.argv[2] == "wait":
    time.sleep(60)
"""


def test_scratch_is_removed_when_the_process_ends_however_it_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "scratch"
    ended = subprocess.run([sys.executable, "-c", SCRATCH_USER, str(root), "exit"], capture_output=True, text=True)
    assert ended.returncode == 0 and not Path(ended.stdout.strip()).exists()
    killed = subprocess.Popen(
        [sys.executable, "-c", SCRATCH_USER, str(root), "wait"], stdout=subprocess.PIPE, text=True
    )
    alive = subprocess.Popen([sys.executable, "-c", SCRATCH_USER, str(root), "wait"], stdout=subprocess.PIPE, text=True)
    try:
        left, kept = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert left.is_dir()  # a kill runs no exit handler
        monkeypatch.setattr(spark_settings, "SCRATCH_ROOT", root)
        assert spark_settings.remove_stale_scratch() == [left]  # what the next run or `stedi down` does
        assert not left.exists() and (kept / "blockmgr-1" / "rdd_0_0").exists()
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.spark
def test_the_test_sessions_jvm_and_workers_hold_no_key(spark: SparkSession) -> None:
    """The test session is started the way a run starts its own (conftest uses `without_secrets`), while the
    test environment holds a pseudonym key: neither the JVM nor a Python worker may have it."""
    assert os.environ.get(PSEUDONYM_KEY_ENV)  # the driver has it
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    pid = jvm.java.lang.ProcessHandle.current().pid()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [entry for entry in environ if entry.startswith(PSEUDONYM_KEY_ENV.encode() + b"=")]
    worker = spark.sparkContext.parallelize([0], 1).map(lambda _: os.environ.get(PSEUDONYM_KEY_ENV)).collect()
    assert worker == [None]
