"""`stedi bench`: the benchmark (issue 12), run from this checkout's `benchmarks/` (see benchmarks/bench.py).

Times the Dagster materialization next to a hand-written PySpark script, five separate Spark jobs and DuckDB on
generated lakes of 1e5, 1e6 and 5e6 landing rows, then incremental runs (cold and warm Spark) and a file drop
with `stedi up`; prints the table and writes it to benchmarks/results/. Lakes are cached in ~/.cache/stedi/bench.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    if not (CHECKOUT / "benchmarks" / "bench.py").exists():
        print(f"error: no benchmarks/bench.py in {CHECKOUT}: `stedi bench` runs from a checkout", file=sys.stderr)
        return 1
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    from benchmarks.bench import main as bench

    return bench(argv, prog)
