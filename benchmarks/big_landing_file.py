"""One big accelerometer landing file, read and parsed with Spark's default driver memory.

    python -m benchmarks.big_landing_file --gigabytes 2 [--folder /tmp] [--master local[2]] [--keep]

Writes a JSON-lines file of about that size (valid readings with a few defects), reads it with the landing
reader (`landing_files.read_lines`) and parses it (`parse_landing`), counting rows by reason, and prints
the wall time of the read + parse, the peak resident memory of the Spark JVM and the tasks that read it.
The file is deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession

from stedi_assets.assets.landing_files import read_lines
from stedi_assets.tables import ACCELEROMETER_LANDING
from stedi_assets.transforms.parsing import parse_landing


def write_file(path: Path, size: int, seed: int = 7) -> int:
    """About `size` bytes of accelerometer lines; returns the number of lines."""
    rng = random.Random(seed)
    lines, written, t = 0, 0, 1_675_000_000_000
    with path.open("w") as out:
        while written < size:
            chunk = []
            for _ in range(10_000):
                t += 200
                x, y, z = (round(rng.uniform(-2, 2), 3) for _ in range(3))
                roll = rng.random()
                if roll < 0.001:
                    chunk.append("not json")
                elif roll < 0.002:
                    chunk.append(f'{{"user":"u{t % 997}@test.com","timestamp":"soon","x":{x},"y":{y},"z":{z}}}')
                else:
                    chunk.append(f'{{"user":"u{t % 997}@test.com","timestamp":{t},"x":{x},"y":{y},"z":{z}}}')
            text = "\n".join(chunk) + "\n"
            out.write(text)
            written += len(text)
            lines += len(chunk)
    return lines


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--folder", default=tempfile.gettempdir())
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="stedi-big-", dir=args.folder))
    path = folder / "accelerometer-big.json"
    started = time.monotonic()
    lines = write_file(path, int(args.gigabytes * 1e9))
    print(f"wrote {path.stat().st_size / 1e9:.2f} GB, {lines:,} lines in {time.monotonic() - started:.0f}s")
    try:
        spark = (
            SparkSession.builder.master(args.master)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "16")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        jvm_pid = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
        tracker = spark.sparkContext.statusTracker()
        spark.sparkContext.setJobGroup("big", "read and parse")
        started = time.monotonic()
        parsed = parse_landing(read_lines(spark, {str(path): 0}), ACCELEROMETER_LANDING)
        by_reason = {row["reason"]: row["count"] for row in parsed.groupBy("reason").count().collect()}
        elapsed = time.monotonic() - started
        jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup("big")]
        stages = [tracker.getStageInfo(s) for job in jobs if job is not None for s in job.stageIds]
        tasks = [(stage.name.split(" at ")[0], stage.numTasks) for stage in stages if stage is not None]
        print(f"read + parse: {elapsed:.0f}s; rows by reason: {by_reason}; total {sum(by_reason.values()):,}")
        memory = spark.conf.get("spark.driver.memory", "1g (default)")
        print(f"driver memory: {memory}; peak JVM RSS: {peak_rss_kib(jvm_pid) / 1024:.0f} MiB")
        print(f"stages (name, tasks): {tasks}")
        spark.stop()
    finally:
        if not args.keep:
            path.unlink()
            folder.rmdir()


if __name__ == "__main__":
    main()
