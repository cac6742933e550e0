"""Benchmark: a full materialization next to the plain PySpark script, on the same generated lake.

    python -m benchmarks.bench --customers 1000 [--readings 60] [--policy since] [--work /tmp/stedi-bench]

Reports wall time and peak resident memory (the whole process tree: Python and the Spark JVM) of each.
Figures come from this script, never from timed tests: shared machines are noisy, so run it more than once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from stedi_assets.cli.sample import generate
from stedi_assets.cli.services import dagster_home

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            rss[int(entry)] = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak resident bytes of the process tree) of a command that must succeed."""
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0

    def poll() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.2)

    poller = threading.Thread(target=poll)
    poller.start()
    _, stderr = process.communicate()
    poller.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return time.monotonic() - started, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--readings", type=int, default=60)
    parser.add_argument("--policy", default="since", choices=["since", "flag"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stedi-bench")
    args = parser.parse_args()

    lake = args.work / f"lake-{args.customers}x{args.readings}"
    if not lake.exists():
        started = time.monotonic()
        # About 250 customers a file keeps files small enough to be read whole by one task.
        files = max(4, args.customers // 250)
        generate(lake, customers=args.customers, seed=7, readings=args.readings, files=files)
        print(f"generated {lake} in {time.monotonic() - started:.1f}s")
    size = sum(p.stat().st_size for p in lake.glob("*/landing/*") if p.is_file())
    env = {**os.environ, "STEDI_CONSENT_POLICY": args.policy, **dagster_home(args.work / "dagster_home")}
    plain_out = args.work / "plain-out"
    shutil.rmtree(plain_out, ignore_errors=True)

    plain = measure([sys.executable, "-m", "benchmarks.plain_pyspark", str(lake), str(plain_out), args.policy], env)
    graph = measure([sys.executable, "-m", "stedi_assets.cli.run"], {**env, "STEDI_LAKE_ROOT": str(lake)})
    print(f"lake: {args.customers} customers, {size / 1e6:.1f} MB of landing files, policy {args.policy}")
    print(f"{'':34}{'wall s':>8}{'peak RSS MB':>13}")
    print(f"{'plain PySpark script':34}{plain[0]:8.1f}{plain[1] / 1e6:13.0f}")
    print(f"{'dagster materialization + checks':34}{graph[0]:8.1f}{graph[1] / 1e6:13.0f}")
    print(f"ratio (materialization / plain): {graph[0] / plain[0]:.2f}")


if __name__ == "__main__":
    main()
