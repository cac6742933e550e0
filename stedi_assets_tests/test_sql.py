"""`python -m stedi_assets.cli.sql`: queries by table name on a materialized lake, held to DuckDB over the same
files; rendering; the command line in-process. What it refuses: test_sql_guard.py."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import DataFrame, SparkSession

from stedi_assets import sql_guard
from stedi_assets.cli.sql import QueryError, main, open_session, query, render_text, write_csv, write_json_lines
from stedi_assets.lake.store import LakeStore
from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.spark_settings import SparkTarget
from stedi_assets.tables import ALL_TABLES, LANDING_TABLES, Zone
from stedi_assets_tests.lakes import duckdb_source, generate_lake
from stedi_assets_tests.servers import free_port

PARQUET_TABLES = [name for name, table in ALL_TABLES.items() if table.zone is not Zone.LANDING]


def lake_at(root: Path) -> LakeStore:
    """The lake as the command builds it: its Spark resource finds the test run's session already running."""
    return LakeStore(str(root))


@pytest.fixture(scope="module")
def lake(materialized_lake: Path) -> LakeStore:
    return lake_at(materialized_lake)


def parquet(root: Path, name: str) -> str:
    """The table's current version for DuckDB: its Delta data files."""
    return duckdb_source(root, ALL_TABLES[name])


def stored_rows(root: Path, name: str) -> int:
    return duckdb.sql(f"select count(*) from {parquet(root, name)}").fetchall()[0][0]


def run_query(lake: LakeStore, sql: str) -> DataFrame:
    """A query in a new session of the test run's application, as the command runs each query in its own."""
    return query(lake, SparkSession.getActiveSession().newSession(), sql)


def rows_of(lake: LakeStore, sql: str) -> list[tuple]:
    return [tuple(row) for row in run_query(lake, sql).collect()]


def test_each_query_has_a_guarded_session_of_its_own(lake: LakeStore, spark: SparkSession) -> None:
    session = open_session(SparkTarget(), LakeStore())
    assert session is not spark and session.sparkContext is spark.sparkContext
    assert sql_guard.CLASS in spark.conf.get("spark.sql.extensions")
    query(lake, session, "select 1")
    assert session.conf.get(sql_guard.ENABLED) == "true"
    assert spark.conf.get(sql_guard.ENABLED, "false") == "false", "the application's first session stays as it is"


def test_counts_by_name_equal_the_parquet_files(lake: LakeStore, materialized_lake: Path) -> None:
    sql = " union all ".join(f"select '{name}' as name, count(*) as n from {name}" for name in PARQUET_TABLES)
    stored = {name: stored_rows(materialized_lake, name) for name in PARQUET_TABLES}
    assert dict(rows_of(lake, sql)) == stored
    assert all(n > 0 for n in stored.values())


def test_landing_tables_by_name_are_the_parsed_accepted_rows(lake: LakeStore, materialized_lake: Path) -> None:
    expected = json.loads((materialized_lake / EXPECTED_FILE).read_text())["landing_rows"]
    sql = " union all ".join(f"select '{t.name}', count(*) from {t.name}" for t in LANDING_TABLES)
    assert dict(rows_of(lake, sql)) == expected
    # Accelerometer lines spelling `timeStamp` are read into `timestamp`, as in the pipeline.
    assert rows_of(lake, "select count(*) from accelerometer_landing where timestamp is null") == [(0,)]
    lineage = rows_of(lake, "select min(line_number), count(distinct source_file) from customer_landing")
    assert lineage[0][0] == 1 and lineage[0][1] > 1


def test_a_join_across_two_tables(lake: LakeStore, materialized_lake: Path) -> None:
    join = "select c.email, count(*) as readings from {a} a join {c} c on a.user = c.email group by c.email"
    by_spark = rows_of(lake, join.format(a="accelerometer_trusted", c="customer_curated") + " order by 1")
    by_duckdb = duckdb.sql(
        join.format(
            a=parquet(materialized_lake, "accelerometer_trusted"), c=parquet(materialized_lake, "customer_curated")
        )
        + " order by 1"
    ).fetchall()
    assert by_spark == by_duckdb
    assert len(by_spark) > 1


def test_a_cte_keeps_its_order(lake: LakeStore, materialized_lake: Path) -> None:
    cte = "with per_reason as (select reason, count(*) as n from {q} group by reason) select * from per_reason"
    sql = cte.format(q="accelerometer_landing_quarantine") + " order by n desc, reason;"
    expected = duckdb.sql(
        cte.format(q=parquet(materialized_lake, "accelerometer_landing_quarantine")) + " order by 2 desc, 1"
    )
    assert rows_of(lake, sql) == expected.fetchall()


def test_values_and_table_forms(lake: LakeStore, materialized_lake: Path) -> None:
    assert rows_of(lake, "values (1, 'a'), (2, 'b')") == [(1, "a"), (2, "b")]
    curated = stored_rows(materialized_lake, "customer_curated")
    assert run_query(lake, "TABLE customer_curated").count() == curated


def test_unknown_table_is_named(lake: LakeStore) -> None:
    with pytest.raises(QueryError, match=r"`no_such_table` cannot be found.*--tables"):
        run_query(lake, "select * from no_such_table")


def test_a_table_not_materialized_yet_says_so(lake: LakeStore, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    generate_lake(fresh, customers=5)
    assert rows_of(lake, "select count(*) > 0 from customer_trusted") == [(True,)]
    # Landing tables too are tables the run parses (raw files are not queried).
    for name in ("customer_trusted", "step_trainer_landing"):
        with pytest.raises(QueryError, match=rf"table {name} has not been materialized yet .*make run"):
            run_query(lake_at(fresh), f"select * from {name}")


def test_render_text_aligns_and_counts() -> None:
    text = render_text(["name", "n", "ok"], [("a", 1, True), ("bbb", None, False)], max_rows=10)
    assert text.splitlines() == [
        "name |    n | ok",
        "-----+------+------",
        "a    |    1 | true",
        "bbb  | NULL | false",
        "(2 rows)",
    ]
    assert render_text(["n"], [(1,)], max_rows=10).endswith("(1 row)")
    truncated = render_text(["n"], [(1,), (2,), (3,)], max_rows=2).splitlines()
    assert truncated[2:4] == ["1", "2"]
    assert truncated[-1].startswith("(first 2 rows shown; there are more")


def test_csv_and_json_lines_output() -> None:
    columns, rows = ["name", "n", "tags"], [("a,b", 1, ["x", "y"]), ("c", None, None)]
    out = io.StringIO()
    write_csv(columns, rows, out)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [columns, ["a,b", "1", '["x", "y"]'], ["c", "", ""]]
    out = io.StringIO()
    write_json_lines(columns, rows, out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"name": "a,b", "n": 1, "tags": ["x", "y"]},
        {"name": "c", "n": None, "tags": None},
    ]
    with pytest.raises(QueryError, match="distinct column names"):
        write_json_lines(["a", "a"], [(1, 2)], io.StringIO())


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, materialized_lake: Path) -> None:
    """The command's environment: this lake, and the defaults for everything Spark."""
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(materialized_lake))
    for name in ("STEDI_SPARK_MASTER", "STEDI_SPARK_CONF"):
        monkeypatch.delenv(name, raising=False)


def test_cli_prints_a_table(environment: None, materialized_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select count(*) as n from customer_curated"]) == 0
    curated = stored_rows(materialized_lake, "customer_curated")
    width = len(str(curated))
    assert capsys.readouterr().out.splitlines() == ["n".rjust(width), "-" * width, str(curated), "(1 row)"]


def test_cli_csv_for_piping(environment: None, materialized_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "select subject_key, sensorReadingTime, x from machine_learning_curated order by 1, 2, 3"
    assert main(["--format", "csv", sql]) == 0
    lines = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    expected = duckdb.sql(
        sql.replace("machine_learning_curated", parquet(materialized_lake, "machine_learning_curated"))
    )
    assert lines[0] == ["subject_key", "sensorReadingTime", "x"]
    assert [(key, int(time), float(x)) for key, time, x in lines[1:]] == expected.fetchall()


def test_cli_json_lines_with_max_rows(environment: None, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "select reason, line_number from step_trainer_landing_quarantine order by source_file, line_number"
    assert main(["--format", "json", "--max-rows", "2", sql]) == 0
    captured = capsys.readouterr()
    assert [set(json.loads(line)) for line in captured.out.splitlines()] == [{"reason", "line_number"}] * 2
    assert captured.err == "note: only the first 2 rows were written (--max-rows)\n"


def test_cli_max_rows(environment: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--max-rows", "3", "select * from accelerometer_trusted"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 3 + 1
    assert lines[-1].startswith("(first 3 rows shown")


def test_cli_lists_tables(environment: None, materialized_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tables"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split(" | ")[0].strip(): line for line in lines[2:-1]}
    assert listed.keys() == ALL_TABLES.keys()
    for name, line in listed.items():
        assert f"{materialized_lake}/{ALL_TABLES[name].path}" in line
        assert line.rstrip().endswith("yes")


@pytest.mark.parametrize(
    "sql, message",
    [
        ("drop table customer_trusted", "error: only queries (SELECT / WITH / VALUES / TABLE) are allowed"),
        ("select cast(email as int) from customer_trusted", "error: [CAST_INVALID_INPUT]"),
        ("select nope from customer_trusted", "error: [UNRESOLVED_COLUMN"),
    ],
    ids=["write", "failing_row", "bad_column"],
)
def test_cli_errors_are_one_line(environment: None, sql: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([sql]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message)
    assert captured.err.count("\n") == 1, captured.err


def test_cli_with_a_missing_lake_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-lake"
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(missing))
    assert main(["select 1"]) == 2
    assert capsys.readouterr().err == (
        f"stedi sql: STEDI_LAKE_ROOT / lake.root='{missing}' names no folder: set it to your lake's folder or"
        " s3://bucket/prefix, or unset it for the built-in sample lake (`stedi sample` generates it)\n"
    )


def test_cli_without_a_connect_server(
    environment: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sc://127.0.0.1:{free_port()}"
    monkeypatch.setenv("STEDI_SPARK_MASTER", url)
    assert main(["select 1"]) == 1
    assert capsys.readouterr().err == (
        f"error: no Spark Connect server answers at {url} (Connection refused): start one with `make up`,"
        " or unset STEDI_SPARK_MASTER to run a local Spark\n"
    )
