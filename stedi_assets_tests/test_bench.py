"""The benchmark's machinery (benchmarks/bench.py) on a tiny lake: the baseline and DuckDB variants only.

The hand-written PySpark baseline and the DuckDB SQL implement the same simplified rules independently; on a lake
without the defects the baseline skips (rates 0), they must produce the same tables, so the baseline is known to
compute what it claims. No timing is asserted: figures come from `make bench` alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench
from stedi_assets_tests.servers import QUICK_JVM

# The cases the baseline does not implement (see benchmarks/plain_spark.py), switched off in the generator.
CLEAN = (
    "malformed_consent=0",
    "exact_tie=0",
    "device_move=0",
    "malformed_line=0",
    "wrong_type=0",
    "missing_field=0",
)


@pytest.mark.graph  # the baseline is a whole pipeline, run in a Spark process of its own (about 20 s)
def test_baseline_and_duckdb_write_the_same_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The baseline's Spark is a process of its own: only the JVM's quick compiler (C1), whose warm-up costs a
    # fraction of C2's on a run this short (the variants' environment is this process's).
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", QUICK_JVM)
    results = bench.run([("1e3", 1000)], ["baseline", "duckdb"], tmp_path, seed=11, rates=CLEAN, log=lambda _: None)
    by = {r.variant: r for r in results}
    assert set(by) == {"baseline", "duckdb"}
    baseline, duckdb = by["baseline"], by["duckdb"]
    assert baseline.ml_rows == duckdb.ml_rows
    assert baseline.ml_rows > 0, "the tiny lake pairs no readings: the comparison would prove nothing"
    assert baseline.tables == duckdb.tables
    assert set(baseline.tables) == {table.name for table in bench.OUTPUT_TABLES}
    assert "rows differ" not in duckdb.note
    # Both read the same lake: the one generated for this size and seed, with the clean rates.
    assert baseline.rows == duckdb.rows == bench.landing_lines(next((tmp_path / "lakes").iterdir()))


def test_the_table_reports_ratios_and_targets(tmp_path: Path) -> None:
    results = [
        bench.Result("1e5", "baseline", 100_000, 20.0, 2_000_000_000, 10, 1.0),
        bench.Result("1e5", "duckdb", 100_000, 2.0, 500_000_000, 10, 1.0),
        bench.Result("1e5", "pipeline", 100_000, 40.0, 3_000_000_000, 10, 1.0),
        bench.Result("1e5", "incremental_warm", 1_000, 8.0, 3_000_000_000, 10, 1.0),
    ]
    rows = {row["what"]: row for row in bench.table_rows(results)}
    pipeline = rows[bench.LABELS["pipeline"]]
    assert (pipeline["x baseline"], pipeline["x DuckDB"], pipeline["rows/s"]) == ("2.00", "20.00", "2,500")
    assert rows[bench.LABELS["incremental_warm"]]["note"].startswith("20.0% of the full run")
    verdicts = {goal.split(" (")[0]: verdict for goal, _, verdict in bench.targets(results)}
    assert verdicts["full materialization <= 1.15x the baseline"] == "NOT met"
    assert verdicts["+1% data on warm Spark <= 10% of a full run"] == "NOT met"
    # A larger size run by the pipeline alone keeps each comparison at the largest size that has both.
    bigger = [*results, bench.Result("1e7", "pipeline", 10_000_000, 400.0, 3_300_000_000, 1_000, 1.0)]
    goals = [goal for goal, _, _ in bench.targets(bigger)]
    assert "full materialization <= 1.15x the baseline (1e5)" in goals
    assert "memory flat as data grows (peak 1e5 -> 1e7, flat: at most 1.5x)" in goals
    bench.write_results(results, tmp_path, "context")
    assert (tmp_path / "bench.csv").read_text().splitlines()[0].startswith("size,what,rows,seconds,rows/s")
    assert "| 1e5 | stedi run --rebuild (Dagster) |" in (tmp_path / "bench.md").read_text()
