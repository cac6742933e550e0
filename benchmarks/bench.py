"""The benchmark (`make bench`): the pipeline next to hand-written Spark, five Spark jobs and DuckDB.

    python -m benchmarks.bench [--sizes 1e5,1e6,5e6] [--variants ...] [--seed 7] [--work ~/.cache/stedi/bench]
                               [--results DIR]

For each size (landing rows, generated with `stedi sample` and cached in WORK/lakes by size and seed), each
measured as a whole process on the same lake with fresh output, wall seconds and the peak resident memory of
its whole process tree (Python and JVM):
  baseline          one hand-written PySpark script (benchmarks/plain_spark.py), one Parquet write per table
  duckdb            the same rules in DuckDB SQL over the raw JSON (benchmarks/duckdb_sql.py)
  five_jobs         five separate Spark processes, each rereading the previous ones' Parquet (five_jobs.py)
  pipeline          `stedi run --rebuild`: the Dagster materialization, on a copy of the lake with no tables
  incremental_cold  `stedi run` after 1% new landing files were added to the lake the full run left
  incremental_warm  the same through a warm Spark Connect server: `stedi up`, a warm-up run on a tiny lake, the
                    run with STEDI_SPARK_MASTER=sc://..., `stedi down` (memory: the run and the server)
and once, on the sample lake (1,000 customers, seed 7):
  file_drop         `stedi up` with its own DAGSTER_HOME; after the sensor's first run, a new accelerometer file
                    is dropped, until the sensor's run of it succeeds (the median of --drops drops)

Prints the table and writes it (bench.md, bench.csv) to --results (default benchmarks/results). Figures come from
here only; the machine is shared, so the 1-minute load average at the start of each measurement is recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.measure import CommandFailed, PeakSampler, load_average, timed
from stedi_assets import tables as t
from stedi_assets.progress import Reporter, seconds

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STEDI = str(BIN / "stedi")
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_WORK = Path.home() / ".cache" / "stedi" / "bench"
DEFAULT_SIZES = "1e5,1e6,5e6"
# Landing lines per customer with 60 phone readings each and the generator's default rates (measured).
LINES_PER_CUSTOMER = 130
CUSTOMERS_PER_FILE = 250  # files per feed grow with the lake: about 30,000 lines a file
# Broken .gz files and a .bz2 copy (a real feed has them; the pipeline quarantines them) would stop or double the
# hand-written variants, which read whole folders: every benchmark lake is generated without them.
WHOLE_FILES = ("truncated_gzip_files=0", "fake_gzip_files=0", "bzip2_files=0")
SAMPLE_CUSTOMERS = 1000  # the built-in sample lake's size (stedi sample's default)
SIZE_VARIANTS = ("baseline", "duckdb", "five_jobs", "pipeline", "incremental_cold", "incremental_warm")
VARIANTS = (*SIZE_VARIANTS, "file_drop")
LABELS = {
    "baseline": "plain PySpark script (baseline)",
    "duckdb": "DuckDB SQL",
    "five_jobs": "five Spark jobs",
    "pipeline": "stedi run --rebuild (Dagster)",
    "incremental_cold": "stedi run, +1% files, cold Spark",
    "incremental_warm": "stedi run, +1% files, warm Connect",
    "file_drop": "file drop -> tables, stedi up",
}
FIVE_JOBS = (
    "customer_trusted",
    "accelerometer_trusted",
    "customer_curated",
    "step_trainer_trusted",
    "machine_learning_curated",
)
FEEDS = ("customer", "accelerometer", "step_trainer")


@dataclass
class Result:
    size: str
    variant: str
    rows: int  # landing lines the run took in (the increment's lines for incremental runs, the dropped file's)
    seconds: float
    peak_bytes: int
    ml_rows: int | None  # machine_learning_curated rows after the run
    load: float  # 1-minute load average when it started
    note: str = ""
    progress: list[str] = field(default_factory=list)  # `stedi run`'s per-asset lines
    tables: dict[str, int] = field(default_factory=dict)  # rows of each trusted and curated table after the run
    when: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))  # UTC, at its end


@dataclass(frozen=True)
class Lake:
    path: Path
    lines: int  # landing lines, every feed


# --- lakes -----------------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    try:
        rows = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1e5)") from None
    if rows < LINES_PER_CUSTOMER:
        raise argparse.ArgumentTypeError(f"size {text} is under one customer's {LINES_PER_CUSTOMER} lines")
    return rows


def landing_lines(root: Path) -> int:
    report = json.loads((root / "_sample_expected.json").read_text())
    return sum(report["landing_rows"].values()) + sum(
        report["quarantined_rows"][f"{feed}_landing_quarantine"] for feed in FEEDS
    )


def generate(
    work: Path, name: str, customers: int, seed: int, files: int, readings: int = 60, rates: Iterable[str] = ()
) -> Lake:
    """A lake made by `stedi sample`, cached under WORK/lakes/NAME (generated once, then reused)."""
    path = work / "lakes" / name
    if not (path / "_sample_expected.json").exists():
        staging = path.with_name(f".{name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        command = [STEDI, "sample", "--customers", str(customers), "--seed", str(seed), "--out", str(staging)]
        command += ["--readings", str(readings), "--files", str(files)]
        for rate in rates:
            command += ["--rate", rate]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(path, ignore_errors=True)
        staging.rename(path)
    return Lake(path, landing_lines(path))


def lake_of_size(work: Path, rows: int, seed: int, rates: Iterable[str] = ()) -> Lake:
    customers = max(1, round(rows / LINES_PER_CUSTOMER))
    files = max(4, customers // CUSTOMERS_PER_FILE)
    rates = (*WHOLE_FILES, *rates)
    suffix = "-".join(sorted(rates)).replace("=", "")
    return generate(work, f"lake-{rows}-s{seed}-{suffix}", customers, seed, files, rates=rates)


def increment_of(work: Path, rows: int, seed: int, fraction: float) -> Lake:
    """New landing files holding `fraction` of a lake's lines: another seed's customers, one file per feed."""
    customers = max(1, round(rows * fraction / LINES_PER_CUSTOMER))
    return generate(
        work, f"increment-{rows}-s{seed}-{fraction:g}-whole", customers, seed + 1_000, files=1, rates=WHOLE_FILES
    )


def copy_lake(source: Path, target: Path) -> Path:
    """A copy of a lake's folders: raw landing files hard-linked (never written to), tables copied."""
    shutil.rmtree(target, ignore_errors=True)

    def link_or_copy(src: str, dst: str) -> str:
        if f"{os.sep}landing{os.sep}" in src:
            os.link(src, dst)
            return dst
        return shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)
    return target


def landing_copy(source: Path, target: Path) -> Path:
    """A lake with the source's landing files and no tables yet."""
    shutil.rmtree(target, ignore_errors=True)
    for feed in FEEDS:
        copy_lake(source / feed / "landing", target / feed / "landing")
    return target


def add_increment(lake: Path, increment: Lake) -> None:
    """Delivers the increment's files into the lake's landing folders as new files arriving now."""
    now = time.time_ns()
    for feed in FEEDS:
        for path in sorted((increment.path / feed / "landing").iterdir()):
            target = lake / feed / "landing" / f"increment-{path.name}"
            shutil.copyfile(path, target)
            os.utime(target, ns=(now, now))


# --- reading results -------------------------------------------------------------------------------------------


def parquet_rows(files: Iterable[str]) -> int:
    return sum(pq.ParquetFile(f.removeprefix("file://")).metadata.num_rows for f in files)


def delta_rows(lake: Path, table: t.ZoneTable) -> int:
    from deltalake import DeltaTable

    return parquet_rows(DeltaTable(str(lake / table.path)).file_uris())


def output_rows(out: Path, table: t.ZoneTable) -> int:
    return parquet_rows(str(p) for p in (out / table.path).glob("*.parquet"))


OUTPUT_TABLES = [table for table in t.ZONE_TABLES if table.zone is not t.Zone.LANDING]


def table_counts(out: Path) -> dict[str, int]:
    """Rows of each trusted and curated table a baseline-style variant wrote (plain Parquet folders)."""
    return {table.name: output_rows(out, table) for table in OUTPUT_TABLES}


def delta_counts(lake: Path) -> dict[str, int]:
    return {table.name: delta_rows(lake, table) for table in OUTPUT_TABLES}


def progress_lines(log: Path) -> list[str]:
    """`stedi run`'s per-asset lines: '  12.3s  asset_name   N rows this run, M in the table'."""
    return [line.strip() for line in log.read_text(errors="replace").splitlines() if " rows this run, " in line]


# --- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A run on a lake other than the built-in sample needs a pseudonym key: one for this benchmark run unless set.
BENCH_KEY = secrets.token_hex(32)


def base_env() -> dict[str, str]:
    """This process's environment without the lake and Spark target the user may have set for other work. Every
    variant computes subject_key with the same key (STEDI_PSEUDONYM_KEY, or one made for this run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("STEDI_LAKE_ROOT", "STEDI_SPARK_MASTER", "DAGSTER_HOME")}
    return env | {
        "SPARK_LOCAL_IP": env.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "STEDI_PSEUDONYM_KEY": env.get("STEDI_PSEUDONYM_KEY") or BENCH_KEY,
    }


def dagster_home(path: Path) -> dict[str, str]:
    from stedi_assets.services import stack

    shutil.rmtree(path, ignore_errors=True)
    return stack.dagster_home(path)


class Bench:
    def __init__(
        self, work: Path, seed: int, increment: float, drops: int, log=print, profile: Path | None = None
    ) -> None:
        self.work, self.seed, self.increment, self.drops, self.log = work, seed, increment, drops, log
        self.profile = profile  # where the full run's Spark jobs per asset go (profile-SIZE.md); None: not profiled
        self.runs = work / "runs"
        self.logs = work / "logs"

    def fresh(self, name: str) -> Path:
        path = self.runs / name
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # Each variant returns its Result; `size` is the label of the lake's size.

    def baseline(self, lake: Lake, size: str) -> Result:
        return self._script(lake, size, "baseline", "benchmarks.plain_spark")

    def duckdb(self, lake: Lake, size: str) -> Result:
        return self._script(lake, size, "duckdb", "benchmarks.duckdb_sql")

    def _script(self, lake: Lake, size: str, variant: str, module: str) -> Result:
        out = self.fresh(f"{variant}-{size}")
        load = load_average()
        measured = timed([sys.executable, "-m", module, str(lake.path), str(out)], base_env(), self._log(size, variant))
        tables = table_counts(out)
        ml = tables[t.MACHINE_LEARNING_CURATED.name]
        return Result(size, variant, lake.lines, measured.seconds, measured.peak_bytes, ml, load, tables=tables)

    def five_jobs(self, lake: Lake, size: str) -> Result:
        out = self.fresh(f"five_jobs-{size}")
        load = load_average()
        seconds, peak, each = 0.0, 0, []
        for job in FIVE_JOBS:
            command = [sys.executable, "-m", "benchmarks.five_jobs", job, str(lake.path), str(out)]
            measured = timed(command, base_env(), self._log(size, f"five_jobs-{job}"))
            seconds += measured.seconds
            peak = max(peak, measured.peak_bytes)
            each.append(f"{measured.seconds:.0f}")
        tables = table_counts(out)
        note = f"jobs: {' + '.join(each)} s"
        ml = tables[t.MACHINE_LEARNING_CURATED.name]
        return Result(size, "five_jobs", lake.lines, seconds, peak, ml, load, note, tables=tables)

    def pipeline(self, lake: Lake, size: str) -> Result:
        """The full materialization, on a lake with no tables yet and a fresh Dagster instance; keeps a copy of
        both as they are after it (WORK/runs/full-SIZE) for the incremental runs."""
        state = self.fresh(f"stedi-{size}")
        run_lake = landing_copy(lake.path, state / "lake")
        log = self._log(size, "pipeline")
        load = load_average()
        home = dagster_home(state / "home")
        events = state / "spark-events"
        extra = self._event_log(events) if self.profile is not None else None
        measured = self._stedi_run(["--rebuild"], run_lake, home, log, extra)
        if self.profile is not None:
            self._write_profile(size, events, home)
        backup = self.fresh(f"full-{size}")
        copy_lake(run_lake, backup / "lake")
        shutil.copytree(state / "home", backup / "home")
        return self._run_result(size, "pipeline", lake.lines, measured, load, run_lake, log)

    @staticmethod
    def _event_log(events: Path) -> dict[str, str]:
        """The environment that turns Spark's event log on for a `stedi run` (added to the user's settings)."""
        events.mkdir(parents=True, exist_ok=True)
        conf = json.loads(os.environ.get("STEDI_SPARK_CONF") or "{}")
        conf |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri()}
        return {"STEDI_SPARK_CONF": json.dumps(conf)}

    def _write_profile(self, size: str, events: Path, home: dict[str, str]) -> None:
        from dagster import DagsterInstance

        from benchmarks.spark_jobs import markdown, run_profile

        assert self.profile is not None
        with DagsterInstance.from_config(home["DAGSTER_HOME"]) as instance:
            (record,) = instance.get_run_records(limit=1)
            table = markdown(run_profile(events, instance, record.dagster_run.run_id))
        self.profile.mkdir(parents=True, exist_ok=True)
        path = self.profile / f"profile-{size}.md"
        path.write_text(f"# `stedi run --rebuild` at {size} landing rows: Spark jobs per asset\n\n{table}")
        self.log(f"  profile: {path}")

    def _after_full_run(self, lake: Lake, size: str) -> tuple[Path, dict[str, str]]:
        """The lake and Dagster instance as the full run left them, at the paths it ran with: the ledger and the
        Delta logs name files by absolute URI, so a copy elsewhere would read as all new files."""
        backup = self.runs / f"full-{size}"
        if not backup.exists():
            self.log(f"  (a full run first, not measured, for the incremental runs at {size})")
            self.pipeline(lake, size)
        state = self.fresh(f"stedi-{size}")
        copy_lake(backup / "lake", state / "lake")
        shutil.copytree(backup / "home", state / "home")
        return state / "lake", {"DAGSTER_HOME": str(state / "home"), "TMPDIR": str(state / "home" / "tmp")}

    def incremental_cold(self, lake: Lake, size: str, rows: int) -> Result:
        increment = increment_of(self.work, rows, self.seed, self.increment)
        run_lake, home = self._after_full_run(lake, size)
        add_increment(run_lake, increment)
        log = self._log(size, "incremental_cold")
        load = load_average()
        measured = self._stedi_run([], run_lake, home, log)
        return self._run_result(size, "incremental_cold", increment.lines, measured, load, run_lake, log)

    def incremental_warm(self, lake: Lake, size: str, rows: int) -> Result:
        increment = increment_of(self.work, rows, self.seed, self.increment)
        run_lake, home = self._after_full_run(lake, size)
        add_increment(run_lake, increment)
        # The daemon `stedi up` starts watches a lake with nothing to do, so that no sensor run competes.
        idle = self.fresh("idle-lake")
        for feed in FEEDS:
            (idle / feed / "landing").mkdir(parents=True)
        connect_port = free_port()
        state = self.fresh("services-warm")
        env = base_env() | dagster_home(self.runs / "home-services-warm") | {"STEDI_LAKE_ROOT": str(idle)}
        self._up(state, connect_port, env, size, "incremental_warm")
        try:
            remote = {"STEDI_SPARK_MASTER": f"sc://127.0.0.1:{connect_port}"}
            warmup_lake = landing_copy(self._tiny().path, self.fresh("warmup-lake"))
            warmup_home = dagster_home(self.runs / "home-warmup")
            self._stedi_run(["--rebuild"], warmup_lake, warmup_home, self._log(size, "warmup"), remote)
            server = self._service_pids(state, ("spark-connect",))
            log = self._log(size, "incremental_warm")
            load = load_average()
            measured = self._stedi_run([], run_lake, home, log, remote, also=server)
        finally:
            self._down(state, size, "incremental_warm")
        result = self._run_result(size, "incremental_warm", increment.lines, measured, load, run_lake, log)
        result.note = "memory: the run and the Connect server"
        return result

    @staticmethod
    def _run_result(size: str, variant: str, rows: int, measured, load: float, lake: Path, log: Path) -> Result:
        """A `stedi run`'s result: its tables' rows read from their Delta versions, its per-asset lines."""
        tables = delta_counts(lake)
        ml = tables[t.MACHINE_LEARNING_CURATED.name]
        return Result(size, variant, rows, measured.seconds, measured.peak_bytes, ml, load,
                      progress=progress_lines(log), tables=tables)  # fmt: skip

    def file_drop(self) -> Result:
        from dagster import DagsterInstance

        sample = generate(self.work, f"sample-s{self.seed}", SAMPLE_CUSTOMERS, self.seed, files=4)
        run_lake = landing_copy(sample.path, self.fresh("file_drop-lake"))
        home = dagster_home(self.runs / "home-file-drop")
        env = base_env() | home | {"STEDI_LAKE_ROOT": str(run_lake), "STEDI_SENSOR_INTERVAL_SECONDS": "1"}
        state = self.fresh("services-file-drop")
        self._up(state, free_port(), env, "sample", "file_drop")
        instance = DagsterInstance.from_config(home["DAGSTER_HOME"])
        try:
            started = time.monotonic()
            _wait_for_success(instance, 1)
            self.log(
                f"  the sensor's first run (the whole sample lake) done {time.monotonic() - started:.0f}s after up"
            )
            template = _drop_lines(sample.path)
            waits, runs, loads = [], [], []
            services = self._service_pids(state, ("spark-connect", "dagster-daemon", "dagster-webserver"))
            with PeakSampler(lambda: services) as sampler:
                for n in range(self.drops):
                    loads.append(load_average())
                    folder = run_lake / "accelerometer" / "landing"
                    staging = folder / f".drop-{n}.json"
                    staging.write_text(_shifted(template, n + 1))
                    dropped = time.time()
                    staging.rename(folder / f"drop-{n}.json")
                    run_id = _wait_for_success(instance, n + 2)
                    stats = instance.get_run_stats(run_id)
                    assert stats.start_time is not None and stats.end_time is not None, "a finished run has both"
                    waits.append(stats.end_time - dropped)
                    runs.append(stats.end_time - stats.start_time)
                    self.log(
                        f"  drop {n + 1}: tables done {waits[-1]:.1f}s after the drop (the run itself {runs[-1]:.1f}s)"
                    )
        finally:
            instance.dispose()
            self._down(state, "sample", "file_drop")
        note = "each drop: " + ", ".join(f"{w:.1f}" for w in waits)
        note += " s; the runs themselves: " + ", ".join(f"{r:.1f}" for r in runs) + " s"
        return Result("sample", "file_drop", len(template), statistics.median(waits), sampler.peak, None,
                      statistics.mean(loads), note)  # fmt: skip

    # --- helpers ---

    def _tiny(self) -> Lake:
        return generate(self.work, f"tiny-s{self.seed}", 10, self.seed, files=1)

    def _log(self, size: str, name: str) -> Path:
        return self.logs / size / f"{name}.log"

    @staticmethod
    def _stedi_run(
        args: list[str],
        lake: Path,
        home: dict[str, str],
        log: Path,
        extra: dict | None = None,
        also: Iterable[int] = (),
    ):
        env = base_env() | home | {"STEDI_LAKE_ROOT": str(lake)} | (extra or {})
        return timed([STEDI, "run", *args], env, log, also)

    def _up(self, state: Path, connect_port: int, env: dict[str, str], size: str, name: str) -> None:
        command = [STEDI, "up", "--state-dir", str(state), "--connect-port", str(connect_port)]
        command += ["--webserver-port", str(free_port())]
        timed(command, env, self._log(size, f"{name}-up"))

    def _down(self, state: Path, size: str, name: str) -> None:
        timed([STEDI, "down", "--state-dir", str(state)], base_env(), self._log(size, f"{name}-down"))

    @staticmethod
    def _service_pids(state: Path, names: Iterable[str]) -> list[int]:
        return [json.loads((state / f"{name}.json").read_text())["pid"] for name in names]


def _wait_for_success(instance, count: int, timeout: float = 1800) -> str:
    """Waits until `count` runs have succeeded; returns the newest one's id. A failed run fails the benchmark."""
    from dagster import DagsterRunStatus, RunsFilter

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failed = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]), limit=1)
        if failed:
            raise CommandFailed(f"the sensor's run {failed[0].run_id} failed")
        done = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        if len(done) >= count:
            return done[0].run_id
        time.sleep(0.1)
    raise CommandFailed(f"no {count} successful runs within {timeout:.0f}s")


def _drop_lines(sample: Path, count: int = 100) -> list[dict]:
    """Readings to deliver again at new times: the first `count` valid lines of the sample's first phone file."""
    readings = []
    for line in (sample / "accelerometer" / "landing" / "accelerometer-0000.json").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("timestamp", record.get("timeStamp")), int):
            readings.append(record)
        if len(readings) == count:
            break
    return readings


def _shifted(readings: list[dict], n: int) -> str:
    """The readings `n` ms later: new readings of the same customers."""
    lines = []
    for record in readings:
        spelling = "timestamp" if "timestamp" in record else "timeStamp"
        lines.append(json.dumps({**record, spelling: record[spelling] + n}))
    return "\n".join(lines) + "\n"


# --- the table -------------------------------------------------------------------------------------------------


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else ""


def table_rows(results: list[Result]) -> list[dict[str, str]]:
    """One row per result: the columns of the printed, markdown and CSV table."""
    by = {(r.size, r.variant): r for r in results}
    rows = []
    for r in results:
        baseline, duck = by.get((r.size, "baseline")), by.get((r.size, "duckdb"))
        full = by.get((r.size, "pipeline"))
        note = r.note
        if r.variant.startswith("incremental") and full:
            note = f"{100 * r.seconds / full.seconds:.1f}% of the full run" + (f"; {note}" if note else "")
        rows.append(
            {
                "size": r.size,
                "what": LABELS[r.variant],
                "rows": f"{r.rows:,}",
                "seconds": f"{r.seconds:.1f}",
                "rows/s": f"{r.rows / r.seconds:,.0f}",
                "x baseline": ratio(r.seconds, baseline.seconds if baseline else None),
                "x DuckDB": ratio(r.seconds, duck.seconds if duck else None),
                "peak MB": f"{r.peak_bytes / 1e6:,.0f}",
                "ml rows": "" if r.ml_rows is None else f"{r.ml_rows:,}",
                "load": f"{r.load:.1f}",
                "note": note,
            }
        )
    return rows


def targets(results: list[Result]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each of issue 12's targets that the results can speak to."""
    by = {(r.size, r.variant): r for r in results}
    sizes = [r.size for r in results if r.variant == "pipeline"]
    out: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def largest_with(variant: str) -> tuple[str, Result, Result] | None:
        """The largest size measured with the pipeline and `variant`: (size, the pipeline's, the variant's)."""
        both = [size for size in sizes if (size, variant) in by]
        return (both[-1], by[(both[-1], "pipeline")], by[(both[-1], variant)]) if both else None

    if found := largest_with("baseline"):
        size, full, other = found
        x = full.seconds / other.seconds
        out.append((f"full materialization <= 1.15x the baseline ({size})", f"{x:.2f}x", verdict(x <= 1.15)))
    if found := largest_with("five_jobs"):
        size, full, other = found
        x = other.seconds / full.seconds
        out.append((f"at least 2x faster than five jobs ({size})", f"{x:.2f}x faster", verdict(x >= 2)))
    if found := largest_with("incremental_warm"):
        size, full, other = found
        share = other.seconds / full.seconds
        out.append(
            (f"+1% data on warm Spark <= 10% of a full run ({size})", f"{100 * share:.0f}%", verdict(share <= 0.1))
        )
    if len(sizes) > 1:
        smallest, largest = by[(sizes[0], "pipeline")], by[(sizes[-1], "pipeline")]
        growth = largest.peak_bytes / smallest.peak_bytes
        out.append(
            (
                f"memory flat as data grows (peak {sizes[0]} -> {sizes[-1]}, flat: at most 1.5x)",
                f"{smallest.peak_bytes / 1e6:,.0f} -> {largest.peak_bytes / 1e6:,.0f} MB ({growth:.2f}x)",
                verdict(growth <= 1.5),
            )
        )
    if found := largest_with("duckdb"):
        size, full, other = found
        x = full.seconds / other.seconds
        out.append((f"stretch: within 10x of DuckDB ({size})", f"{x:.1f}x", verdict(x <= 10)))
    if ("sample", "file_drop") in by:
        seconds = by[("sample", "file_drop")].seconds
        out.append(
            ("file drop to finished tables with stedi up <= 10 s (sample)", f"{seconds:.1f} s", verdict(seconds <= 10))
        )
    return out


def markdown(results: list[Result], context: str) -> str:
    rows = table_rows(results)
    header = list(rows[0]) if rows else []
    lines = [context, "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row.values()) + " |" for row in rows]
    goals = targets(results)
    if goals:
        lines += ["", "| target | measured | |", "|---|---|---|"]
        lines += [f"| {goal} | {value} | {verdict} |" for goal, value, verdict in goals]
    for r in results:
        if r.progress:
            lines += ["", f"`{LABELS[r.variant]}` at {r.size}, per asset (seconds since the run started):", "```"]
            lines += [*r.progress, "```"]
    return "\n".join(lines) + "\n"


def plain(results: list[Result]) -> str:
    rows = table_rows(results)
    if not rows:
        return "no results"
    columns = [c for c in rows[0] if c != "note"]
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    lines = ["  ".join(c.rjust(widths[c]) if c not in ("size", "what") else c.ljust(widths[c]) for c in columns)]
    for row in rows:
        cells = [row[c].rjust(widths[c]) if c not in ("size", "what") else row[c].ljust(widths[c]) for c in columns]
        lines.append("  ".join(cells) + (f"  {row['note']}" if row["note"] else ""))
    lines += [f"{verdict:>8}  {goal}: {value}" for goal, value, verdict in targets(results)]
    return "\n".join(lines)


def write_results(results: list[Result], folder: Path, context: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.md").write_text(markdown(results, context))
    rows = table_rows(results)
    with (folder / "bench.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["size"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "bench.json").write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")


def previous_results(folder: Path) -> list[Result]:
    path = folder / "bench.json"
    return [Result(**item) for item in json.loads(path.read_text())] if path.exists() else []


def merged(old: list[Result], new: list[Result]) -> list[Result]:
    """The new results, and the old ones of (size, variant) pairs not measured again; by size, then variant."""
    measured = {(r.size, r.variant) for r in new}
    kept = [r for r in old if (r.size, r.variant) not in measured] + new

    def order(r: Result) -> tuple[float, int]:
        size = float("inf") if r.size == "sample" else float(r.size)
        return size, VARIANTS.index(r.variant)

    return sorted(kept, key=order)


def context_line(results: list[Result], seed: int) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    times = sorted(r.when for r in results) or [datetime.now(UTC).strftime("%Y-%m-%d %H:%M")]
    when = times[0] if times[0] == times[-1] else f"between {times[0]} and {times[-1]}"
    return (
        f"Measured {when} UTC by `make bench` on {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB; seed {seed};"
        " a size is the landing rows asked of the generator (`rows`: the lines it wrote). Seconds are the wall"
        " time of the whole process; peak MB the resident memory of its whole process tree (Python and JVM); load"
        " the 1-minute load average when the measurement started (the machine is shared)."
    )


# --- the command -----------------------------------------------------------------------------------------------


def compare_with_baseline(results: list[Result], log=print) -> None:
    """DuckDB and the five jobs implement the baseline's rules: a table whose rows differ is noted on the result."""
    baseline = next((r for r in results if r.variant == "baseline"), None)
    for r in results:
        if baseline is None or r.variant not in ("duckdb", "five_jobs"):
            continue
        differ = [f"{name} {n:,} (baseline {baseline.tables[name]:,})" for name, n in r.tables.items()
                  if n != baseline.tables.get(name)]  # fmt: skip
        if differ:
            r.note = "; ".join([*([r.note] if r.note else []), "rows differ: " + ", ".join(differ)])
            log(f"WARNING {r.size} {LABELS[r.variant]}: rows differ from the baseline: {', '.join(differ)}")


def run(
    sizes: list[tuple[str, int]],
    variants: Iterable[str],
    work: Path,
    seed: int = 7,
    increment: float = 0.01,
    drops: int = 3,
    rates: Iterable[str] = (),
    log: Callable[[str], None] = print,
    measured: Callable[[list[Result]], object] = lambda results: None,
    profile: Path | None = None,
    reporter: Reporter | None = None,
) -> list[Result]:
    """Measures the variants on each size (in the order of SIZE_VARIANTS), then file_drop; returns the results.
    `measured` is called with the results so far after each measurement (to write them as they come); with
    `profile`, the full run's Spark jobs per asset go there (profile-SIZE.md); with a `reporter`, a status says
    what is measured and for how long while it runs (lake generation has `stedi sample`'s own progress)."""
    wanted = set(variants)
    bench = Bench(work, seed, increment, drops, log, profile)
    shutil.rmtree(bench.runs, ignore_errors=True)
    results: list[Result] = []

    def measuring(what: str) -> AbstractContextManager[None]:
        if reporter is None:
            return nullcontext()
        began = time.monotonic()
        return reporter.waiting(lambda: f"{what}: running {seconds(time.monotonic() - began)}")

    for label, rows in sizes:
        started = time.monotonic()
        log(f"{label}: the lake of {rows:,} landing lines (generated once, then reused) ...")
        lake = lake_of_size(work, rows, seed, rates)
        log(f"{label}: lake {lake.path} ({lake.lines:,} landing lines), ready in {time.monotonic() - started:.0f}s")
        for variant in (v for v in SIZE_VARIANTS if v in wanted):
            log(f"{label}: {LABELS[variant]} ...")
            method = getattr(bench, variant)
            with measuring(f"{label}: {LABELS[variant]}"):
                result = method(lake, label, rows) if variant.startswith("incremental") else method(lake, label)
            log(f"{label}: {LABELS[variant]}: {result.seconds:.1f}s, peak {result.peak_bytes / 1e6:,.0f} MB")
            results.append(result)
            measured(results)
        compare_with_baseline([r for r in results if r.size == label], log)
        shutil.rmtree(bench.runs, ignore_errors=True)  # the outputs of this size: gigabytes at the largest
    if "file_drop" in wanted:
        log(f"sample: {LABELS['file_drop']} ...")
        with measuring(f"sample: {LABELS['file_drop']}"):
            results.append(bench.file_drop())
        log(f"sample: {LABELS['file_drop']}: {results[-1].seconds:.1f}s (median)")
        measured(results)
        shutil.rmtree(bench.runs, ignore_errors=True)
    return results


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"landing rows, comma-separated (default {DEFAULT_SIZES})"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--increment", type=float, default=0.01, help="new data for the incremental runs (0.01: 1%%)")
    parser.add_argument("--drops", type=int, default=3, help="file drops to time with stedi up (the median counts)")
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help=f"lakes (cached) and runs (default {DEFAULT_WORK})"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"where bench.md and bench.csv go (default {RESULTS})"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with Spark's event log on for the full run: its Spark jobs, stages and seconds per asset, in"
        " RESULTS/profile-SIZE.md",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the rows of the results already in --results that this run does not measure (size and variant)",
    )
    args = parser.parse_args(argv)
    try:
        sizes = [(text.strip(), parse_size(text)) for text in args.sizes.split(",") if text.strip()]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    previous = previous_results(args.results) if args.keep else []

    def write(new: list[Result]) -> list[Result]:
        results = merged(previous, new)
        write_results(results, args.results, context_line(results, args.seed))
        return results

    # Progress on stderr (stdout is the results): a line as each lake and measurement starts and ends, and while
    # one runs, a status (rewritten on a terminal, a line every 15 s in a log).
    reporter = Reporter(sys.stderr)
    try:
        profile = args.results if args.profile else None
        results = write(
            run(
                sizes, variants, args.work, args.seed, args.increment, args.drops,
                log=reporter.line, measured=write, profile=profile, reporter=reporter,
            )
        )  # fmt: skip
    except CommandFailed as error:
        print(f"error: {error} (the results measured before are in {args.results})", file=sys.stderr)
        return 1
    print(plain(results))
    print(f"written: {args.results / 'bench.md'}, {args.results / 'bench.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m benchmarks.bench"))
