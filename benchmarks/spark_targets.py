"""Benchmark: the same materialization on each Spark target, and a sensor-triggered run with and without `make up`.

    python -m benchmarks.spark_targets [--customers 1000] [--work /tmp/stedi-targets]

1. `stedi run` on one generated lake with STEDI_SPARK_MASTER set to local[*], to a standalone
   cluster (a master and one 2-core worker started here from pyspark) and to a Spark Connect server (local[*]).
2. A file dropped into a landing folder, until the sensor's run of it succeeds: with only the daemon and
   webserver running (each run starts its own Spark) and with `make up`'s Connect server.
Wall times only: the cluster's processes live outside the run's process tree, so memory is not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from stedi_assets.sample import SAMPLE_SEED, generate
from stedi_assets.services import stack, supervisor
from stedi_assets.spark_settings import SparkTarget
from stedi_assets_tests.servers import free_port, standalone_master, standalone_worker

LOCAL = SparkTarget(master="local[*]")


def fresh_home(path: Path) -> dict[str, str]:
    shutil.rmtree(path, ignore_errors=True)
    return stack.dagster_home(path)


def timed_run(lake: Path, master: str, home: Path) -> float:
    env = {**os.environ, **fresh_home(home), "STEDI_LAKE_ROOT": str(lake), "STEDI_SPARK_MASTER": master}
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "stedi"), "run"], env=env, check=True, capture_output=True)
    return time.monotonic() - started


def wait_for_success(instance: DagsterInstance, count: int, timeout: float = 900) -> float:
    """Waits until `count` runs have succeeded; returns the duration of the newest one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE])):
            raise SystemExit("a run failed")
        done = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        if len(done) >= count:
            stats = instance.get_run_stats(done[0].run_id)
            assert stats.start_time is not None and stats.end_time is not None, "a finished run has both"
            return stats.end_time - stats.start_time
        time.sleep(0.5)
    raise SystemExit("timed out waiting for a run")


def sensor_run(lake: Path, work: Path, connect: bool) -> tuple[float, float]:
    """(file drop -> run success, the run's own duration) for a new accelerometer file."""
    state_dir = work / ("services-connect" if connect else "services-plain")
    env = {**fresh_home(work / "home-sensor"), "STEDI_LAKE_ROOT": str(lake), "STEDI_SENSOR_INTERVAL_SECONDS": "1"}
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    stack.up(LOCAL, state_dir, free_port() if connect else None, free_port(), env)
    try:
        wait_for_success(instance, 1)  # the sensor's first tick loads the whole lake
        reading = {"user": "bench@example.com", "timestamp": 1_800_000_000_000, "x": 0.1, "y": 0.2, "z": 0.3}
        dropped = time.monotonic()
        (lake / "accelerometer" / "landing" / f"bench-{time.time_ns()}.json").write_text(json.dumps(reading) + "\n")
        run_seconds = wait_for_success(instance, 2)
        return time.monotonic() - dropped, run_seconds
    finally:
        supervisor.down(state_dir)
        instance.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stedi-targets")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    lake = args.work / "lake"
    generate(lake, customers=args.customers, seed=SAMPLE_SEED)

    timings = {"local[*]": timed_run(lake, "local[*]", args.work / "home")}
    cluster_dir = args.work / "services-cluster"
    port = free_port()
    master = f"spark://127.0.0.1:{port}"
    try:
        supervisor.launch(standalone_master(port), cluster_dir)
        supervisor.launch(standalone_worker(master, 2, "4g", cluster_dir / "work"), cluster_dir)
        timings["standalone (1 worker, 2 cores)"] = timed_run(lake, master, args.work / "home")
    finally:
        supervisor.down(cluster_dir)
    try:
        connect_port = free_port()
        supervisor.launch(stack.spark_connect(LOCAL, connect_port), cluster_dir)
        remote = f"sc://127.0.0.1:{connect_port}"
        timings["Spark Connect, first run"] = timed_run(lake, remote, args.work / "home")
        timings["Spark Connect, second run"] = timed_run(lake, remote, args.work / "home")
    finally:
        supervisor.down(cluster_dir)

    print(f"lake: {args.customers} customers; stedi run, wall seconds")
    for target, seconds in timings.items():
        print(f"  {target:<34}{seconds:8.1f}")
    print("sensor-triggered run of one new landing file: drop -> SUCCESS / the run itself, seconds")
    for connect in (False, True):
        drop_to_success, run_seconds = sensor_run(lake, args.work, connect)
        label = "make up (Connect server)" if connect else "daemon only (Spark per run)"
        print(f"  {label:<34}{drop_to_success:8.1f}{run_seconds:8.1f}")


if __name__ == "__main__":
    main()
