"""Progress of the long commands (stedi_assets/progress.py): the reporter on a terminal and in a log, Spark's
stages read from a real job while it runs, a small run's step lines, and `stedi sample` writing to a pipe."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from dagster import DagsterInstance, Definitions, MaterializeResult, asset
from pyspark.sql import SparkSession

from stedi_assets.cli import run
from stedi_assets.progress import ConnectStages, Reporter, SparkStages, StageProgress, seconds
from stedi_assets.sample import cli as sample_cli
from stedi_assets_tests import lakes


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_in_a_log_a_status_is_a_plain_line_after_15_s_of_silence() -> None:
    out, clock = io.StringIO(), Clock()
    reporter = Reporter(out, clock=clock)  # StringIO is no terminal
    steps: list[tuple[float, str, bool]] = [
        (0, "line a started", False),
        (5, "status 5", False),  # 5 s after a line: nothing
        (14.9, "status 14.9", False),
        (15, "status 15", False),  # 15 s of silence: printed
        (20, "status 20", False),
        (29, "line b", False),
        (40, "status 40", False),  # 11 s after b
        (44, "status 44", False),  # 15 s after b
        (45, "milestone 45", True),  # kept: printed at once
    ]
    for now, text, keep in steps:
        clock.now = now
        if text.startswith("line"):
            reporter.line(text)
        else:
            reporter.status(text, keep=keep)
    reporter.clear()
    assert out.getvalue() == "line a started\nstatus 15\nline b\nstatus 44\nmilestone 45\n"


def test_in_a_log_statuses_every_second_make_a_heartbeat_every_15_s() -> None:
    out, clock = io.StringIO(), Clock()
    reporter = Reporter(out, clock=clock)
    for now in range(1, 101):
        clock.now = now
        reporter.status(f"at {now}")
    assert out.getvalue() == "".join(f"at {now}\n" for now in (15, 30, 45, 60, 75, 90))


def test_on_a_terminal_the_status_is_rewritten_in_place_and_cleared_before_a_line() -> None:
    out = io.StringIO()
    reporter = Reporter(out, tty=True, width=20)
    reporter.status("abc")
    reporter.status("a")  # shorter: the rest of "abc" is blanked
    reporter.line("done")
    reporter.status("x" * 30)  # cut to the terminal's width less one: it must not wrap
    reporter.clear()
    reporter.clear()  # nothing shown: nothing written
    reporter.line("end")
    assert out.getvalue() == "\rabc" + "\ra  " + "\r \r" + "done\n" + "\r" + "x" * 19 + "\r" + " " * 19 + "\r" + "end\n"


def test_waiting_renews_the_status_from_a_thread_and_clears_it_at_the_end() -> None:
    out = io.StringIO()
    reporter = Reporter(out, tty=True, width=80)
    with reporter.waiting(lambda: "busy", tick=0.01):
        time.sleep(0.2)
    shown, _, cleared = out.getvalue().rpartition("\r    \r")
    assert cleared == ""
    assert shown.startswith("\rbusy") and set(shown.split("\rbusy")) == {""}


def test_seconds_and_stage_descriptions() -> None:
    assert [seconds(s) for s in (0.4, 42.9, 425)] == ["0 s", "42 s", "7 min 05 s"]
    assert StageProgress((12,), 37, 200, 1_234_567).describe() == "stage 12: 37/200 tasks, 1,234,567 rows read"
    assert StageProgress((3, 4), 1, 8, 0).describe() == "stages 3, 4: 1/8 tasks, 0 rows read"
    assert StageProgress((), 0, 0, 10).describe() == "no Spark stage running, 10 rows read"
    assert StageProgress((5,), 1, 2, None, 3_500_000).describe() == "stage 5: 1/2 tasks, 4 MB read"


def test_connect_progress_reports_keep_each_operation_until_it_ends() -> None:
    """The handler as pyspark's Spark Connect client calls it (keywords; stages as its StageInfo has them)."""
    progress = ConnectStages()

    def stage(sid: int, tasks: int, completed: int, read: int, done: bool) -> SimpleNamespace:
        return SimpleNamespace(
            stage_id=sid, num_tasks=tasks, num_completed_tasks=completed, num_bytes_read=read, done=done
        )

    first, second = stage(1, 4, 4, 1000, True), stage(2, 10, 3, 500, False)
    progress(stages=[first, second], inflight_tasks=2, operation_id="a", done=False)
    assert progress.sample() == StageProgress((2,), 3, 10, None, 1500)
    progress(stages=[first, stage(2, 10, 10, 900, True)], inflight_tasks=0, operation_id="a", done=True)
    assert progress.sample() == StageProgress((), 0, 0, None, 1900)
    progress.mark()
    assert progress.sample() == StageProgress((), 0, 0, None, 0)


ROWS = 32_000
FILES = 32


def test_spark_stages_of_a_running_job(spark: SparkSession, tmp_path: Path) -> None:
    """A job of 32 tasks, each hashing its rows many times (seconds on two busy cores), sampled as it runs."""
    data = str(tmp_path / "numbers")
    spark.range(0, ROWS, 1, FILES).selectExpr("id", "cast(id as string) s").write.parquet(data)
    stages = SparkStages(spark.sparkContext)
    stages.mark()
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    # A task per file: a partition is closed once a file's size plus the cost of opening one exceed this.
    spark.conf.set("spark.sql.files.maxPartitionBytes", spark.conf.get("spark.sql.files.openCostInBytes"))
    try:
        frame = spark.read.parquet(data).selectExpr("aggregate(sequence(1, 60), s, (h, _) -> sha2(h, 256)) h")
        job = threading.Thread(target=lambda: frame.agg({"h": "max"}).collect())
        job.start()
        seen: list[StageProgress] = []
        deadline = time.monotonic() + 120
        while job.is_alive() and time.monotonic() < deadline:
            sample = stages.sample()
            assert sample is not None
            seen.append(sample)
            time.sleep(0.05)
        if job.is_alive():
            spark.sparkContext.cancelAllJobs()
        job.join()
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    assert time.monotonic() < deadline, "the job took over 120 s: cancelled"
    running = [s for s in seen if s.stages]
    assert running, f"no stage seen running in {len(seen)} samples"
    assert all(0 <= s.done <= s.total for s in seen)
    assert any(s.total == FILES and s.rows is not None and 0 < s.rows < ROWS for s in running), running
    line = next(s.describe() for s in running if s.rows)
    assert re.fullmatch(rf"stage \d+: \d+/{FILES} tasks, [\d,]+ rows read", line), line
    rows = [s.rows or 0 for s in seen]
    assert rows == sorted(rows)  # rows read only grow
    assert stages.sample() == StageProgress((), 0, 0, ROWS)  # nothing running; every row read once


def test_a_run_prints_each_step_as_it_starts_ends_or_fails(spark: SparkSession) -> None:
    """`stedi run`'s progress on a small job of its own (not the project's graph): a line as each step starts and
    as each asset is committed, one for a failed step, and the running step's status (every poll: `every=0`)."""

    @asset
    def numbers() -> MaterializeResult:
        rows = spark.range(0, 2_000_000, 1, 8).selectExpr("sum(id)").count()
        return MaterializeResult(metadata={"dagster/row_count": 7, "rows_out": rows})

    @asset(deps=[numbers])
    def broken() -> None:
        raise RuntimeError("on purpose")

    job = Definitions(assets=[numbers, broken]).resolve_implicit_global_asset_job_def()
    out = io.StringIO()
    with DagsterInstance.ephemeral() as instance:
        result = run.run_job(job, {}, instance, Reporter(out, every=0))
    assert not result.success
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    steps = [line for line in lines if " running " not in line]
    patterns = [
        r" +\d+\.\ds  numbers +started",
        r" +\d+\.\ds  numbers +1 rows this run, +7 in the table",
        r" +\d+\.\ds  broken +started",
        r" +\d+\.\ds  broken +FAILED after \d+ s \(the error follows the summary\)",
    ]
    assert len(steps) == len(patterns) and all(map(re.fullmatch, patterns, steps)), steps
    statuses = [line for line in lines if " running " in line]
    assert all(re.fullmatch(r" +\d+\.\ds  (numbers|broken) +running \d+ s(: .*)?", line) for line in statuses)


def test_sample_to_a_pipe_prints_plain_lines_every_10_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sample_cli, "PROGRESS_FROM", 1)  # a small lake shows its progress too
    argv = ["--customers", "100", "--readings", "2", "--files", "1", "--out", str(tmp_path / "lake")]
    assert sample_cli.main(argv) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    assert "\r" not in err
    lines = err.splitlines()
    patterns = [rf"   {p}% {p} / 100 customers, \d+ s" for p in range(10, 100, 10)]
    patterns += [r"  100 customers written, finishing the files, \d+ s", r"  100 customers written in \d+ s"]
    assert len(lines) == len(patterns) and all(map(re.fullmatch, patterns, lines)), lines


@pytest.mark.graph
def test_stedi_run_lines_in_a_log(tmp_path: Path) -> None:
    """`stedi run` writing to a pipe (a log): each asset's step starts before its assets are committed, and no
    carriage return. Not run by the fast tier: a whole-graph run in a process of its own."""
    lake = tmp_path / "lake"
    lakes.generate_lake(lake, customers=6, seed=5)
    env = {**os.environ, **lakes.SUBPROCESS_SPARK, "STEDI_LAKE_ROOT": str(lake)}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "stedi"), "run"], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\r" not in done.stdout
    lines = [line.split() for line in done.stdout.splitlines() if re.match(r" +\d+\.\ds  \w+ ", line)]
    started = [(i, words[1]) for i, words in enumerate(lines) if words[2:] == ["started"]]
    committed = [(i, words[1]) for i, words in enumerate(lines) if "rows this run," in " ".join(words)]
    assert {"customer_landing", "customer_trusted", "machine_learning_curated"} <= {step for _, step in started}
    for at, table in committed:  # after its step's start (a multi-asset's quarantine table: its op's name first)
        assert any(i < at and table.startswith(step) for i, step in started), (table, started)
