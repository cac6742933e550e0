"""Benchmark: one tick of the landing sensor at 100,000 landing files, on a local folder and on moto's S3 server.

    python -m benchmarks.sensor_tick [--files 100000] [--repeat 3] [--work /tmp/stedi-sensor-tick]

The files are small JSON-lines files in one feed's landing folder (accelerometer/landing/). States:
- nothing consumed: no landing table yet, so an empty ledger: every file is pending;
- everything consumed, 1 new: a ledger holding every file, written with `ledger.write_ledger` and committed as
  the landing table's first Delta version (through `delta.DeltaFolder.commit`, as a run commits it), then one
  more file delivered;
- everything consumed, nothing new: the steady state, the tick the daemon makes most often (a skip).

Each tick is evaluated in a fresh process (`dagster.build_sensor_context` with the lake resource and an ephemeral
instance, then `landing_sensor(...)`), after the imports: seconds for the tick, the process's peak resident memory
during the tick (VmHWM, reset before the tick through /proc/self/clear_refs) and its growth over the resident
memory before the tick, and the cursor's size in bytes. The tick's parts are timed by wrapping the functions the
sensor calls: the lake resource's check of its root and landing folders, listing the landing folders, opening
each table's Delta snapshot, reading the ledgers, comparing, and the run key. moto's server runs in its own
process group (started and stopped by stedi_assets.services.supervisor, as the tests' S3 server is). Figures come
from this script, never from timed tests; shared machines are noisy.
Writes the tables to benchmarks/results/sensor_tick.md and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import wraps
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "sensor_tick.md"
FEED = "accelerometer"
LINE = b'{"user": "a@b.com", "timestamp": 1655564444000, "x": 1.0, "y": 0.5, "z": -0.25}\n'
STATES = ("nothing consumed", "everything consumed, 1 new", "everything consumed, nothing new")
# Timed parts of a tick: (module, attribute) of what the sensor calls, and how the report names it.
PARTS = {
    "root check": ("stedi_assets.lake.store", "LakeStore", "check_root"),
    "listing": ("stedi_assets.lake.store", "LakeStore", "landing_files"),
    "delta snapshot": ("stedi_assets.lake.delta", "DeltaFolder", "snapshot"),
    "ledger read": ("stedi_assets.sensors", None, "read_ledger"),
    "comparison": ("stedi_assets.sensors", None, "compare"),
    "run key": ("stedi_assets.sensors", None, "batch_key"),
}
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "moto-access-key",
    "AWS_SECRET_ACCESS_KEY": "moto-secret-key",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --- one tick, in a process of its own ---------------------------------------------------------------------------


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _timed(spent: dict[str, float], part: str, function):
    @wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - started

    return timed


def tick(root: str) -> dict:
    """Evaluates the sensor once against `root`; returns what the report shows."""
    import importlib

    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from stedi_assets.resources.lake import Lake
    from stedi_assets.sensors import landing_sensor

    spent: dict[str, float] = defaultdict(float)
    for part, (module_name, owner, name) in PARTS.items():
        module = importlib.import_module(module_name)
        holder = module if owner is None else getattr(module, owner)
        setattr(holder, name, _timed(spent, part, getattr(holder, name)))
    sensor = landing_sensor(minimum_interval_seconds=30)
    with DagsterInstance.ephemeral() as instance:
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the peak below is the tick's
        started = time.perf_counter()
        context = build_sensor_context(instance=instance, cursor=None, resources={"lake": Lake(root=root)})
        result = sensor(context)
        seconds = time.perf_counter() - started
        peak = _status("VmHWM")
    if isinstance(result, SensorResult):
        assert result.run_requests is not None and result.cursor is not None, "the sensor sets both (sensors.py)"
        (request,) = result.run_requests
        outcome = f"run request ({request.tags['stedi/landing_file_count']} files)"
        cursor = len(result.cursor.encode())
    else:
        outcome, cursor = "skip", 0
    return {
        "seconds": seconds,
        "rss_before": before,
        "rss_peak": peak,
        "cursor_bytes": cursor,
        "outcome": outcome,
        "parts": dict(spent),
    }


def tick_in_process(root: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.sensor_tick", "--tick", root],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"the tick failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the lakes ---------------------------------------------------------------------------------------------------


class LocalLake:
    def __init__(self, root: Path) -> None:
        self.root = str(root)
        shutil.rmtree(root, ignore_errors=True)
        for feed in ("customer", "accelerometer", "step_trainer"):
            (root / feed / "landing").mkdir(parents=True)

    def put_many(self, names: list[str]) -> None:
        folder = Path(self.root, FEED, "landing")
        for name in names:
            (folder / name).write_bytes(LINE)


class S3Lake:
    def __init__(self, bucket: str) -> None:
        import boto3

        self.client = boto3.client("s3")
        self.client.create_bucket(Bucket=bucket)
        self.bucket, self.root = bucket, f"s3://{bucket}/lake"
        for feed in ("customer", "accelerometer", "step_trainer"):
            self.client.put_object(Bucket=bucket, Key=f"lake/{feed}/landing/_keep", Body=b"")  # the folders exist

    def put_many(self, names: list[str]) -> None:
        def put(name: str) -> None:
            self.client.put_object(Bucket=self.bucket, Key=f"lake/{FEED}/landing/{name}", Body=LINE)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(put, names))


def consume_everything(root: str) -> int:
    """Commits the landing table's next version with a ledger of every file delivered (as a run would)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructField, StructType

    from stedi_assets.lake.ledger import LedgerEntry, write_ledger
    from stedi_assets.lake.store import LakeStore
    from stedi_assets.tables import ACCELEROMETER_LANDING as TABLE

    lake = LakeStore(root)
    files = lake.landing_files(TABLE)
    entries = {f.uri: replace(LedgerEntry.of(f), lines=1) for f in files}
    delta = lake.delta(TABLE)
    ledger = write_ledger(delta, entries)
    schema = to_arrow_schema(StructType([StructField(f.name, f.dataType, True) for f in TABLE.schema.fields]))
    base = delta.snapshot()
    delta.commit(
        schema,
        [],
        None,
        None if base is None else base.version,
        {"ledger": ledger, "write_id": "benchmark", "table": TABLE.name},
    )
    return len(entries)


def measure_lake(lake: LocalLake | S3Lake, files: int, repeat: int, env: dict[str, str]) -> dict[str, list[dict]]:
    started = time.monotonic()
    batch = 10_000
    for first in range(0, files, batch):
        lake.put_many([f"part-{n:06d}.json" for n in range(first, min(files, first + batch))])
    print(f"  {files:,} files written in {time.monotonic() - started:.0f}s", flush=True)
    found: dict[str, list[dict]] = {}
    found[STATES[0]] = [tick_in_process(lake.root, env) for _ in range(repeat)]
    print(f"  {STATES[0]}: {_summary(found[STATES[0]])}", flush=True)
    consumed = consume_everything(lake.root)
    assert consumed == files, consumed
    lake.put_many(["part-new.json"])
    found[STATES[1]] = [tick_in_process(lake.root, env) for _ in range(repeat)]
    print(f"  {STATES[1]}: {_summary(found[STATES[1]])}", flush=True)
    consume_everything(lake.root)  # a second version whose ledger holds the new file too
    found[STATES[2]] = [tick_in_process(lake.root, env) for _ in range(repeat)]
    print(f"  {STATES[2]}: {_summary(found[STATES[2]])}", flush=True)
    return found


def _summary(ticks: list[dict]) -> str:
    return f"{statistics.median(t['seconds'] for t in ticks):.2f}s, {ticks[0]['outcome']}"


# --- the report --------------------------------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def report(results: dict[str, dict[str, list[dict]]], files: int, repeat: int) -> str:
    lines = [
        f"# One landing-sensor tick at {files:,} landing files",
        "",
        f"`python -m benchmarks.sensor_tick --files {files} --repeat {repeat}`; each tick in a fresh process,"
        f" {repeat} times: the median (min-max). {os.cpu_count()} cores, shared with other work while measured.",
        "",
        "| storage | state | seconds per tick | peak RSS (MiB) | RSS growth (MiB) | cursor (bytes) | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for storage, states in results.items():
        for state, ticks in states.items():
            seconds = [t["seconds"] for t in ticks]
            peak = statistics.median(t["rss_peak"] for t in ticks)
            growth = statistics.median(t["rss_peak"] - t["rss_before"] for t in ticks)
            cursor = ticks[0]["cursor_bytes"] or "none (skip: unchanged)"
            lines.append(
                f"| {storage} | {state} | {statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})"
                f" | {_mib(peak)} | {_mib(growth)} | {cursor} | {ticks[0]['outcome']} |"
            )
    lines += [
        "",
        "Where a tick's time goes (median seconds; `rest`: the sensor's own work and Dagster's, the run request):",
        "",
        "| storage | state | " + " | ".join(PARTS) + " | rest |",
        "|---|---|" + "---|" * (len(PARTS) + 1),
    ]
    for storage, states in results.items():
        for state, ticks in states.items():
            parts = [statistics.median(t["parts"].get(part, 0.0) for t in ticks) for part in PARTS]
            rest = statistics.median(t["seconds"] - sum(t["parts"].values()) for t in ticks)
            lines.append(f"| {storage} | {state} | " + " | ".join(f"{p:.2f}" for p in [*parts, rest]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stedi-sensor-tick")
    parser.add_argument("--storage", choices=["local", "s3", "both"], default="both")
    parser.add_argument("--tick", help=argparse.SUPPRESS)  # internal: one tick in this process, as JSON
    args = parser.parse_args(argv)
    if args.tick:
        print(json.dumps(tick(args.tick)))
        return 0

    from stedi_assets.services import supervisor
    from stedi_assets_tests.servers import free_port

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1", "DAGSTER_HOME": str(args.work / "home")}
    (args.work / "home").mkdir()
    (args.work / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    results: dict[str, dict[str, list[dict]]] = {}
    if args.storage in ("local", "both"):
        print("local filesystem", flush=True)
        results["local"] = measure_lake(LocalLake(args.work / "lake"), args.files, args.repeat, env)
    if args.storage in ("s3", "both"):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        s3_env = {**env, **MOTO_ENV, "AWS_ENDPOINT_URL": endpoint}
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            s3_env.pop(name, None)
        os.environ.update({k: v for k, v in s3_env.items() if k.startswith("AWS_")})
        moto = supervisor.Service(
            "moto",
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            {"PATH": os.environ["PATH"]},
            ports=(port,),
        )
        state = args.work / "services"
        supervisor.launch(moto, state)
        try:
            print(f"moto's S3 server at {endpoint}", flush=True)
            results["S3 (moto)"] = measure_lake(S3Lake("sensor-tick"), args.files, args.repeat, s3_env)
        finally:
            supervisor.down(state)
    text = report(results, args.files, args.repeat)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
