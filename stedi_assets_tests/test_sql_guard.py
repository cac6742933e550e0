"""The read-only guard of `stedi sql`, attacked: every way we found to run a program, call Java, read a file, reach
a catalog table, write or change a setting is refused in one line, with nothing changed and no byte of the target
printed; ordinary queries still run; every example of every allowed built-in function passes the guard. The same
over a real Spark Connect server started as `make up` starts it (as a subprocess: a Connect client would turn this
process's pyspark into Connect mode)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark
import pytest
from pyspark.sql import SparkSession

from stedi_assets import sql_guard
from stedi_assets.cli.sql import main, query
from stedi_assets.lake.store import LakeStore
from stedi_assets.tables import ALL_TABLES
from stedi_assets_tests.lakes import duckdb_source
from stedi_assets_tests.servers import Servers

pytest_plugins = ["stedi_assets_tests.shared_servers"]

REPO = Path(__file__).resolve().parent.parent
TOKEN = f"SECRET{uuid.uuid4().hex}"  # the content of every file an attack tries to read
PROPERTY = "stedi.sql.guard.test"  # a Java system property an attack tries to set
SET_PROPERTY = f"'java.lang.System', 'setProperty', '{PROPERTY}', 'x'"

# Why a query is refused, as the command says it.
PROGRAM = "read-only query refused: TRANSFORM / MAP / REDUCE ... USING runs a program"
JAVA = "read-only query refused: reflect / java_method / try_reflect call Java methods"
NOT_OURS = "read-only query refused: it reads .*which is not a table of the lake"
NOT_ALLOWED = r"read-only query refused: the function \w+ is not an allowed built-in function"
COMPUTED_NAME = r"read-only query refused: IDENTIFIER\(...\) naming a function or column must be a plain string"
NO_SUCH_TABLE = r"\[TABLE_OR_VIEW_NOT_FOUND\]"  # a path: SQL on files is off, so Spark looks for a table
ONLY_QUERIES = "only queries .* are allowed, not"
ONE_QUERY = "one query at a time"
SYNTAX = r"\[PARSE_SYNTAX_ERROR\]"
NOT_CONSTANT = "must evaluate to a constant|NON_FOLDABLE|not a constant"  # Spark's own check, before the guard's
NONDETERMINISTIC = "non[-_]?deterministic|CANNOT_EVALUATE_EXPRESSION"  # Spark's own check, before the guard's


@dataclass(frozen=True)
class Attack:
    sql: str
    refused: str  # a regular expression the one-line error must match


WIDE = ", ".join(f"{i} AS c{i}" for i in range(40))  # more select items than a printed plan shows

ATTACKS: dict[str, Attack] = {
    # Programs: Hive-style script transforms run without Hive in Spark 4.
    "transform": Attack("select transform(1) using 'touch {marker}' as (x) from values (1)", PROGRAM),
    "transform_upper_no_as": Attack("SELECT TRANSFORM(a) USING 'touch {marker}' FROM VALUES (1) t(a)", PROGRAM),
    "transform_mixed_case": Attack("SeLeCt TrAnSfOrM(1) UsInG 'touch {marker}' As (x)", PROGRAM),
    "transform_star_on_a_table": Attack("select transform(*) using 'touch {marker}' from customer_trusted", PROGRAM),
    "transform_row_format": Attack(
        "select transform(a) row format delimited fields terminated by ',' using 'touch {marker}' as (b)"
        " row format delimited from values (1) t(a)",
        PROGRAM,
    ),
    "transform_comments": Attack("select /* a */ transform /* b */ (1) using 'touch {marker}' -- c\n as (x)", PROGRAM),
    "map_using": Attack("MAP a USING 'touch {marker}' AS b FROM VALUES (1) t(a)", f"{PROGRAM}|{ONLY_QUERIES}"),
    "reduce_using": Attack("REDUCE a USING 'touch {marker}' AS b FROM VALUES (1) t(a)", f"{PROGRAM}|{ONLY_QUERIES}"),
    "from_first_transform": Attack("FROM VALUES (1) t(a) SELECT TRANSFORM(a) USING 'touch {marker}'", PROGRAM),
    "from_first_map": Attack("FROM VALUES (1) t(a) MAP a USING 'touch {marker}' AS b", f"{PROGRAM}|{SYNTAX}"),
    "transform_in_cte": Attack(
        "with t as (select transform(1) using 'touch {marker}' as (x)) select * from t", PROGRAM
    ),
    "transform_in_scalar_subquery": Attack("select (select transform(1) using 'touch {marker}' as (x))", PROGRAM),
    "transform_in_exists": Attack(
        "select * from customer_trusted where exists (select transform(1) using 'touch {marker}' as (x))", PROGRAM
    ),
    "transform_in_union": Attack("select '1' union all select transform(1) using 'touch {marker}' as (x)", PROGRAM),
    "transform_in_lateral": Attack(
        "select * from values (1) t(a), lateral (select transform(a) using 'touch {marker}' as (x))", PROGRAM
    ),
    # Java calls: any static method (System.setProperty, Runtime, ...), in every spelling and place.
    "reflect": Attack(f"select reflect({SET_PROPERTY})", JAVA),
    "java_method": Attack(f"select java_method({SET_PROPERTY})", JAVA),
    "try_reflect": Attack(f"select try_reflect({SET_PROPERTY})", JAVA),
    "reflect_upper_backticks": Attack(f"SELECT `REFLECT`({SET_PROPERTY})", JAVA),
    "reflect_qualified": Attack(f"select system.builtin.reflect({SET_PROPERTY})", f"{JAVA}|UNRESOLVED_ROUTINE"),
    "reflect_by_identifier": Attack(f"select identifier('reflect')({SET_PROPERTY})", JAVA),
    "java_method_by_built_identifier": Attack(f"select identifier('java_' || 'method')({SET_PROPERTY})", COMPUTED_NAME),
    "try_reflect_by_identifier": Attack(f"select identifier('TRY_' || 'REFLECT')({SET_PROPERTY})", COMPUTED_NAME),
    "reflect_by_qualified_identifier": Attack(f"select identifier('system.builtin.reflect')({SET_PROPERTY})", JAVA),
    "reflect_naming_a_table": Attack(f"select * from identifier(reflect({SET_PROPERTY}))", JAVA),
    "reflect_runtime": Attack("select java_method('java.lang.Runtime', 'getRuntime')", JAVA),
    "reflect_in_a_lambda": Attack(f"select transform(array(1), x -> reflect({SET_PROPERTY}))", JAVA),
    "reflect_in_a_window": Attack(f"select first_value(reflect({SET_PROPERTY})) over (order by 1)", JAVA),
    "reflect_in_an_aggregate": Attack(
        f"select max(reflect({SET_PROPERTY})) from customer_trusted", f"{JAVA}|{NONDETERMINISTIC}"
    ),
    "reflect_in_group_by": Attack(
        f"select count(*) from customer_trusted group by reflect({SET_PROPERTY})", f"{JAVA}|{NONDETERMINISTIC}"
    ),
    "reflect_in_having": Attack(
        f"select count(*) from customer_trusted having max(length(reflect({SET_PROPERTY}))) > 0",
        f"{JAVA}|{NONDETERMINISTIC}",
    ),
    "reflect_in_order_by": Attack(f"select email from customer_trusted order by reflect({SET_PROPERTY})", JAVA),
    "reflect_in_limit": Attack(f"select 1 limit length(reflect({SET_PROPERTY}))", f"{JAVA}|{NOT_CONSTANT}"),
    "reflect_in_tablesample": Attack(
        f"select * from customer_trusted tablesample (length(reflect({SET_PROPERTY})) rows)",
        f"{JAVA}|{NOT_CONSTANT}|{SYNTAX}",
    ),
    "reflect_in_a_cte": Attack(f"with t as (select reflect({SET_PROPERTY}) as r) select * from t", JAVA),
    "reflect_in_exists": Attack(f"select 1 where exists (select reflect({SET_PROPERTY}))", JAVA),
    "reflect_in_in_subquery": Attack(f"select 1 where 'x' in (select reflect({SET_PROPERTY}))", JAVA),
    "reflect_in_a_join_condition": Attack(
        f"select * from customer_trusted a join customer_curated b on reflect({SET_PROPERTY}) = a.email",
        f"{JAVA}|{NONDETERMINISTIC}",
    ),
    "reflect_folded_into_a_constant": Attack(f"select upper(coalesce(reflect({SET_PROPERTY}), 'x'))", JAVA),
    "reflect_never_evaluated": Attack(f"select if(false, reflect({SET_PROPERTY}), 'x')", JAVA),
    "reflect_after_40_select_items": Attack(f"select {WIDE}, reflect({SET_PROPERTY}) as hidden", JAVA),
    "reflect_in_a_struct": Attack(f"select named_struct('a', reflect({SET_PROPERTY})).a", JAVA),
    "reflect_in_values": Attack(f"select * from values (reflect({SET_PROPERTY})) t(a)", f"{JAVA}|{NONDETERMINISTIC}"),
    "reflect_in_pivot": Attack(
        f"select * from (select email, 1 as n from customer_trusted) pivot (max(reflect({SET_PROPERTY})) for n in (1))",
        f"{JAVA}|{NONDETERMINISTIC}",
    ),
    "reflect_in_a_hint": Attack(
        f"select /*+ REPARTITION(reflect({SET_PROPERTY})) */ * from customer_trusted", f"{JAVA}|Hint parameters"
    ),
    "reflect_in_pipe_syntax": Attack(f"from customer_trusted |> select reflect({SET_PROPERTY})", JAVA),
    # Files named by path, of every format: SQL on files is off, so none is even opened.
    "text_path": Attack("select * from text.`{secret_text}`", NO_SUCH_TABLE),
    "json_path": Attack("select * from json.`{secret_json}`", NO_SUCH_TABLE),
    "json_path_column_suggestion": Attack("select nope from json.`{secret_json}`", NO_SUCH_TABLE),
    "csv_path": Attack("select * from csv.`{secret_csv}`", NO_SUCH_TABLE),
    "parquet_path": Attack("select * from parquet.`{secret_parquet}`", NO_SUCH_TABLE),
    "orc_path": Attack("select * from orc.`{secret_text}`", NO_SUCH_TABLE),
    "binary_file_path": Attack("select * from binaryFile.`{secret_text}`", NO_SUCH_TABLE),
    "upper_case_format": Attack("SELECT * FROM TEXT.`{secret_text}`", NO_SUCH_TABLE),
    "path_by_identifier": Attack("select * from identifier('json.`{secret_json}`')", NO_SUCH_TABLE),
    "path_by_built_identifier": Attack("select * from identifier('text.`' || '{secret_text}' || '`')", NO_SUCH_TABLE),
    "path_in_a_cte": Attack("with x as (select * from text.`{secret_text}`) select * from x", NO_SUCH_TABLE),
    "path_joined_to_a_table": Attack("select * from customer_trusted join text.`{secret_text}` on true", NO_SUCH_TABLE),
    "path_table_form": Attack("TABLE text.`{secret_text}`", NO_SUCH_TABLE),
    "read_files": Attack("select * from read_files('{secret_json}')", NOT_ALLOWED),
    # Functions the analyzer evaluates itself, before the plan check sees them: refused by name when parsed.
    "xml_in_values": Attack(
        "select * from values (xpath_string('<!DOCTYPE a [<!ENTITY e SYSTEM \"file://{secret_text}\">]><a>&e;</a>',"
        " 'a')) t(x)",
        NOT_ALLOWED,
    ),
    "xml_naming_a_table": Attack("select * from identifier(xpath_string('<a>customer_trusted</a>', 'a'))", NOT_ALLOWED),
    "xml_in_limit": Attack("select 1 limit xpath_int('<a>1</a>', 'a')", NOT_ALLOWED),
    "xxe_in_xpath": Attack(
        "select xpath_string('<!DOCTYPE a [<!ENTITY e SYSTEM \"file://{secret_text}\">]><a>&e;</a>', 'a')",
        NOT_ALLOWED,
    ),
    "xxe_in_from_xml": Attack(
        "select from_xml('<!DOCTYPE a [<!ENTITY e SYSTEM \"file://{secret_text}\">]><a><b>&e;</b></a>', 'b string')",
        NOT_ALLOWED,
    ),
    "protobuf_descriptor_file": Attack(
        "select from_protobuf(x'00', 'M', '{secret_text}')", f"{NOT_ALLOWED}|DATATYPE_MISMATCH|PROTOBUF"
    ),
    "python_worker_logs": Attack("select * from python_worker_logs()", NOT_ALLOWED),
    # Other relations: a catalog table, a global temporary view (both made by the test, readable by others).
    "catalog_table": Attack("select * from stedi_guard_secret", NOT_OURS),
    "catalog_table_qualified": Attack("select * from spark_catalog.default.stedi_guard_secret", NOT_OURS),
    "global_temp_view": Attack("select * from global_temp.stedi_guard_secret", NOT_OURS),
    "our_name_in_the_catalog": Attack("select * from spark_catalog.default.customer_trusted", NO_SUCH_TABLE),
    # Statements: a syntax error inside the wrapper, and a command to the guard.
    "insert": Attack("INSERT INTO customer_trusted SELECT * FROM customer_trusted", ONLY_QUERIES),
    "insert_overwrite_directory": Attack(
        "INSERT OVERWRITE DIRECTORY '{out}' USING parquet SELECT * FROM customer_trusted", ONLY_QUERIES
    ),
    "create_table_as": Attack("CREATE TABLE copied USING parquet LOCATION '{out}' AS SELECT 1", ONLY_QUERIES),
    "create_temp_view": Attack("CREATE OR REPLACE TEMP VIEW customer_trusted AS SELECT 1 AS x", ONLY_QUERIES),
    "create_function_using_jar": Attack("CREATE FUNCTION f AS 'x.Y' USING JAR '{out}'", ONLY_QUERIES),
    "create_temporary_function": Attack("CREATE TEMPORARY FUNCTION f AS 'x.Y'", ONLY_QUERIES),
    "add_jar": Attack("ADD JAR '{out}'", ONLY_QUERIES),
    "drop_view": Attack("DROP VIEW customer_trusted", ONLY_QUERIES),
    "truncate": Attack("TRUNCATE TABLE customer_trusted", ONLY_QUERIES),
    "load_data": Attack("LOAD DATA LOCAL INPATH '{secret_text}' INTO TABLE stedi_guard_secret", ONLY_QUERIES),
    "set": Attack("SET spark.sql.shuffle.partitions=7", ONLY_QUERIES),
    "set_the_guard_off": Attack(f"SET {sql_guard.ENABLED}=false", ONLY_QUERIES),
    "reset": Attack("RESET", ONLY_QUERIES),
    "cache_table": Attack("CACHE TABLE customer_trusted", ONLY_QUERIES),
    "cache_lazy_select": Attack("CACHE LAZY TABLE c AS SELECT * FROM customer_trusted", ONLY_QUERIES),
    "clear_cache": Attack("CLEAR CACHE", ONLY_QUERIES),
    "execute_immediate": Attack(f"EXECUTE IMMEDIATE 'SET {sql_guard.ENABLED}=false'", ONLY_QUERIES),
    "declare_variable": Attack("DECLARE VARIABLE v INT DEFAULT 1", ONLY_QUERIES),
    "script": Attack("BEGIN DROP VIEW customer_trusted; END", ONLY_QUERIES),
    "call_procedure": Attack("CALL system.x()", ONLY_QUERIES),
    "explain": Attack("EXPLAIN SELECT 1", ONLY_QUERIES),
    "cte_insert": Attack(
        "WITH t AS (SELECT * FROM customer_trusted) INSERT INTO customer_trusted SELECT * FROM t", SYNTAX
    ),
    "from_insert": Attack("FROM customer_trusted INSERT INTO customer_trusted SELECT *", SYNTAX),
    "multiple_statements": Attack("select 1; set a=b", ONE_QUERY),
    "multiple_statements_comment_between": Attack("select 1; /* x */ drop view customer_trusted", ONE_QUERY),
    "break_out_of_the_wrapper": Attack(
        "select 1) AS r; DROP VIEW customer_trusted; SELECT * FROM (select 1", "nothing was run"
    ),
    "break_out_with_a_comment": Attack("select 1) AS r; SET a=b; --", "nothing was run"),
    "leading_comment_then_set": Attack("/* select */ -- select\n SET a=b", ONLY_QUERIES),
}


@pytest.fixture(scope="module")
def lake(materialized_lake: Path) -> LakeStore:
    return LakeStore(str(materialized_lake))


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> dict[str, str]:
    """Files holding TOKEN in every format, a catalog table and a global temporary view over them, and paths an
    attack would create. Each is readable by the test run's Spark: only the guard stands between it and a query."""
    folder = tmp_path_factory.mktemp("guard-targets")
    (folder / "secret.txt").write_text(f"{TOKEN}\n")
    table = folder / "json-table"
    table.mkdir()
    (table / "secret.json").write_text(json.dumps({f"{TOKEN}_key": f"{TOKEN}_value"}) + "\n")
    (folder / "secret.csv").write_text(f"{TOKEN}_header\n{TOKEN}_value\n")
    pq.write_table(pa.table({f"{TOKEN}_column": [f"{TOKEN}_value"]}), folder / "secret.parquet")
    spark.sql(f"CREATE TABLE stedi_guard_secret USING json LOCATION '{table}'")
    spark.sql(f"SELECT '{TOKEN}' AS s").createOrReplaceGlobalTempView("stedi_guard_secret")
    yield {
        "secret_text": str(folder / "secret.txt"),
        "secret_json": str(table / "secret.json"),
        "secret_csv": str(folder / "secret.csv"),
        "secret_parquet": str(folder / "secret.parquet"),
    }
    spark.sql("DROP TABLE IF EXISTS stedi_guard_secret")
    spark.catalog.dropGlobalTempView("stedi_guard_secret")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under the root, hidden ones included, with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def java_property(spark: SparkSession) -> str:
    """The property attacks try to set, read in the test run's own session (where reflect is allowed)."""
    return spark.sql(f"select reflect('java.lang.System', 'getProperty', '{PROPERTY}')").first()[0]


def state(spark: SparkSession, lake_root: Path) -> dict[str, object]:
    """What an attack could change: the lake's files, the application's jars, functions, catalog, settings."""
    return {
        "lake": snapshot(lake_root),
        "jars": sorted(spark.sparkContext._jsc.sc().listJars().mkString(",").split(",")),
        "tables": sorted((t.database, t.name) for t in spark.catalog.listTables()),
        "functions": spark.sql("show user functions").collect(),
        "partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "cached": spark.catalog.isCached("stedi_guard_secret"),
        "property": java_property(spark),
    }


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, materialized_lake: Path) -> None:
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(materialized_lake))
    for name in ("STEDI_SPARK_MASTER", "STEDI_SPARK_CONF"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_command_refuses_an_attack_in_one_line_and_nothing_changes(
    attack: Attack,
    environment: None,
    targets: dict[str, str],
    spark: SparkSession,
    materialized_lake: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker, out = tmp_path / "marker", tmp_path / "out"
    before = state(spark, materialized_lake)

    assert main([attack.sql.format(marker=marker, out=out, **targets)]) == 1

    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.count("\n") == 1 and printed.err.startswith("error: "), printed.err
    assert re.search(attack.refused, printed.err, re.IGNORECASE), printed.err
    assert TOKEN not in printed.err
    assert not marker.exists() and not out.exists()
    assert state(spark, materialized_lake) == before
    assert before["property"] == "null"


def test_the_guard_refuses_commands_itself(lake: LakeStore, spark: SparkSession, tmp_path: Path) -> None:
    """Defence in depth: statements sent to a read-only session without the wrapper are refused by the guard."""
    session = spark.newSession()
    query(lake, session, "select 1")  # views registered, guard on
    partitions = session.conf.get("spark.sql.shuffle.partitions")
    for statement in (
        "SET spark.sql.shuffle.partitions=7",
        f"SET {sql_guard.ENABLED}=false",
        "CREATE TEMPORARY VIEW v AS SELECT 1",
        f"ADD JAR '{tmp_path / 'x.jar'}'",
        "CACHE TABLE c AS SELECT 1",
        "CREATE TEMPORARY FUNCTION f AS 'x.Y'",
        f"INSERT OVERWRITE DIRECTORY '{tmp_path / 'out'}' USING parquet SELECT 1",
    ):
        with pytest.raises(Exception, match=r"\[STEDI_READ_ONLY \w+\] read-only query refused: "):
            session.sql(statement)
    assert session.conf.get(sql_guard.ENABLED) == "true"
    assert session.conf.get("spark.sql.shuffle.partitions") == partitions
    assert not (tmp_path / "out").exists()
    # The session cannot read anything new either: not even a table of the registry it did not register.
    with pytest.raises(Exception, match="STEDI_READ_ONLY"):
        lake.read(session, ALL_TABLES["customer_trusted"]).createOrReplaceTempView("customer_trusted")


def test_a_read_only_session_needs_sql_on_files_off(
    lake: LakeStore, spark: SparkSession, targets: dict[str, str]
) -> None:
    session = spark.newSession()
    query(lake, session, "select 1")
    session.conf.set("spark.sql.runSQLOnFiles", "true")  # what a client that forgot it would have
    with pytest.raises(Exception, match=re.escape("refused: a read-only session needs spark.sql.runSQLOnFiles")) as e:
        session.sql(f"select * from json.`{targets['secret_json']}`")
    assert TOKEN not in str(e.value)


def test_other_sessions_are_not_guarded(lake: LakeStore, spark: SparkSession) -> None:
    """The guard acts only where the command turned it on: the application's other sessions (Dagster runs) may
    read files and call anything."""
    query(lake, spark.newSession(), "select 1")
    assert spark.conf.get(sql_guard.ENABLED, "false") == "false"
    assert spark.sql("select java_method('java.lang.Math', 'abs', -1)").first()[0] == "1"
    assert lake.read(spark, ALL_TABLES["customer_trusted"]).count() > 0


def test_a_spark_without_the_guard_is_refused(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a Connect server started without the guard looks like to the probe: a session that lets the probe
    query through. And one that runs another version of the guard."""
    with pytest.raises(sql_guard.GuardError, match="does not run the read-only guard"):
        sql_guard.probe(spark.newSession())
    session = spark.newSession()
    session.conf.set(sql_guard.ENABLED, "true")
    sql_guard.probe(session)
    monkeypatch.setattr(sql_guard, "VERSION", "0123456789abcdef")
    with pytest.raises(sql_guard.GuardError, match=r"runs read-only guard \w+, not this project's 0123456789abcdef"):
        sql_guard.probe(session)


def rows(lake: LakeStore, spark: SparkSession, sql: str) -> list[tuple]:
    return [tuple(row) for row in query(lake, spark.newSession(), sql).collect()]


def parquet(root: Path, name: str) -> str:
    """The table's current version for DuckDB: its Delta data files."""
    return duckdb_source(root, ALL_TABLES[name])


def test_ordinary_queries_still_run(lake: LakeStore, spark: SparkSession, materialized_lake: Path) -> None:
    def duck(sql: str, *names: str) -> list[tuple]:
        for name in names:
            sql = re.sub(rf"\b{name}\b", parquet(materialized_lake, name), sql)
        return duckdb.sql(sql).fetchall()

    window = (
        "select subject_key, sensorReadingTime, row_number() over (partition by subject_key order by"
        " sensorReadingTime, x, y, z) as n, sum(distanceFromObject) over (partition by subject_key) as total"
        " from machine_learning_curated order by 1, 2, 3"
    )
    assert rows(lake, spark, window) == duck(window, "machine_learning_curated")
    cte = (
        "with readings as (select user, count(*) as n from accelerometer_trusted group by user)"
        " select c.email, r.n from customer_curated c join readings r on r.user = c.email"
        " where c.email in (select user from accelerometer_trusted) and exists (select 1 from customer_trusted t"
        " where t.email = c.email) order by r.n desc, c.email limit 20"
    )
    assert rows(lake, spark, cte) == duck(cte, "accelerometer_trusted", "customer_curated", "customer_trusted")
    grouped = (
        "select reason, count(*) as n, max(line_number) from accelerometer_landing_quarantine group by reason"
        " having count(*) > 0 order by n desc, reason"
    )
    assert rows(lake, spark, grouped) == duck(grouped, "accelerometer_landing_quarantine")
    assert rows(lake, spark, "values (1, 'a'), (2, 'b')") == [(1, "a"), (2, "b")]
    assert rows(
        lake,
        spark,
        "select transform(array(1, 2), x -> x + 1), filter(array(1, 2, 3), x -> x > 1),"
        " aggregate(array(1, 2, 3), 0, (acc, x) -> acc + x), exists(array(1), x -> x = 1)",
    ) == [([2, 3], [2, 3], 6, True)]
    assert rows(
        lake,
        spark,
        "select upper('ab'), concat_ws('-', 'a', 'b'), substring('abc', 2), regexp_extract('a1', 'a(\\\\d)', 1),"
        " date_add(date'2024-01-31', 1), datediff(date'2024-03-01', date'2024-02-01'),"
        " date_format(timestamp'2024-01-02 03:04:05', 'yyyy-MM-dd HH'), round(2.567, 2), abs(-3), pow(2, 10),"
        " coalesce(null, 'x'), nullif(1, 1), cast('7' as int), try_cast('x' as int), typeof(1)",
    )[0][:4] == ("AB", "a-b", "bc", "1")
    assert rows(lake, spark, "select count(*) from (select explode(sequence(1, 5)))") == [(5,)]
    assert rows(lake, spark, "select count(*) from customer_curated tablesample (2 rows)") == [(2,)]
    assert rows(lake, spark, "from customer_curated |> aggregate count(*) as n") == duck(
        "select count(*) from customer_curated", "customer_curated"
    )
    assert rows(
        lake, spark, "select /*+ BROADCAST(c) */ count(*) from customer_curated c join customer_trusted t using (email)"
    ) == duck("select count(*) from customer_curated", "customer_curated")
    pivot = rows(
        lake,
        spark,
        "select * from (select reason from step_trainer_landing_quarantine)"
        " pivot (count(*) for reason in ('not_json', 'wrong_type'))",
    )
    assert pivot == duck(
        "select count(*) filter (where reason = 'not_json'), count(*) filter (where reason = 'wrong_type')"
        " from step_trainer_landing_quarantine",
        "step_trainer_landing_quarantine",
    )
    assert rows(lake, spark, "select count(*) from customer_landing") == [
        (json.loads((materialized_lake / "_sample_expected.json").read_text())["landing_rows"]["customer_landing"],)
    ]


def examples(spark: SparkSession) -> list[tuple[str, str, str]]:
    """Every example of Spark's built-in function docs: (group, function, query)."""
    registry = spark._jvm.org.apache.spark.sql.catalyst.analysis
    functions = getattr(getattr(registry, "FunctionRegistry$"), "MODULE$").expressions().iterator()
    found = []
    while functions.hasNext():
        entry = functions.next()
        info = entry._2()._1()
        for example in re.findall(r"> (SELECT .*?);\n", info.getExamples() or "", re.DOTALL):
            found.append((info.getGroup(), entry._1(), " ".join(line.strip() for line in example.splitlines())))
    return found


REFUSED_FUNCTIONS = {"reflect", "java_method", "try_reflect"}
REFUSED_GROUPS = {"xml_funcs", "avro_funcs", "protobuf_funcs"}


def test_every_example_of_an_allowed_function_passes_and_of_a_refused_one_does_not(spark: SparkSession) -> None:
    """The allowlists are derived from Spark's registry, plus the classes some functions are built into: run every
    documented example through both checks: the names in the parsed statement, the classes in the analyzed plan."""
    guard = spark._jvm.stedi.sqlguard.ReadOnlyGuard
    plan_problems, name_problem = guard.problems, guard.functionNameProblem  # looked up once, not per call
    parser = spark._jsparkSession.sessionState().sqlParser()
    allowed, refused, analyzed = [], [], 0
    for group, name, example in examples(spark):
        try:
            plan = spark.sql(example)._jdf.queryExecution().analyzed()
        except Exception:  # examples that need tables or settings the test does not have
            continue
        analyzed += 1
        found = plan_problems(plan, "")
        # By index: iterating a Java list through py4j ends on a NoSuchElementException, which pyspark converts at
        # the cost of tens of JVM calls (two thirds of this test's time when it iterated).
        problems = [found.get(i) for i in range(found.size())]
        problems = [*problems, name_problem(parser.parsePlan(example))]
        problems = [problem for problem in problems if problem is not None]
        if name in REFUSED_FUNCTIONS or group in REFUSED_GROUPS:
            refused.append((name, problems))
        elif problems and not example.upper().startswith("SET "):
            allowed.append((name, example, problems))
    assert analyzed > 1000
    assert allowed == []
    assert refused and all(problems for _, problems in refused)


def test_the_jar_is_built_once_per_source(tmp_path: Path) -> None:
    built = sql_guard.jar(tmp_path)
    assert built.name == f"stedi-sql-guard-{sql_guard.VERSION}-spark-{pyspark.__version__}.jar"
    assert sql_guard.jar(tmp_path).stat().st_mtime_ns == built.stat().st_mtime_ns
    conf = sql_guard.with_guard({"spark.jars": "/a.jar", "spark.sql.extensions": "x.Y"}, tmp_path)
    assert conf["spark.jars"] == f"/a.jar,{built}"
    assert conf["spark.sql.extensions"] == f"x.Y,{sql_guard.CLASS}"


CONNECT_ATTACKS = (
    "transform",
    "reflect_by_identifier",
    "reflect_after_40_select_items",
    "json_path_column_suggestion",
    "path_by_identifier",
    "set_the_guard_off",
    "break_out_of_the_wrapper",
)


def command(sql: str, master: str, lake_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STEDI_SPARK_MASTER": master, "STEDI_LAKE_ROOT": str(lake_root)}
    env.pop("STEDI_SPARK_CONF", None)
    return subprocess.run(
        [sys.executable, "-m", "stedi_assets.cli.sql", sql], cwd=REPO, env=env, capture_output=True, text=True
    )


@pytest.mark.services
def test_over_spark_connect(
    materialized_lake: Path, targets: dict[str, str], services_up: Servers, tmp_path: Path
) -> None:
    """The command against a Connect server started as `make up` starts it (the session's: shared_servers): the
    same refusals, and a normal query's result equal to DuckDB's."""
    marker, url = tmp_path / "marker", services_up.connect
    assert url is not None
    counts = "select count(*), count(distinct subject_key) from {}"
    ok = command(counts.format("machine_learning_curated"), url, materialized_lake)
    assert ok.returncode == 0, ok.stderr
    expected = duckdb.sql(counts.format(parquet(materialized_lake, "machine_learning_curated"))).fetchall()[0]
    assert ok.stdout.splitlines()[2].split() == [str(expected[0]), "|", str(expected[1])]
    with ThreadPoolExecutor(4) as pool:  # each command is a process of its own, mostly starting Python
        sent = {
            name: pool.submit(
                command,
                ATTACKS[name].sql.format(marker=marker, out=tmp_path / "out", **targets),
                url,
                materialized_lake,
            )
            for name in CONNECT_ATTACKS
        }
    for name, future in sent.items():
        attack, done = ATTACKS[name], future.result()
        assert done.returncode == 1, (name, done.stdout)
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and re.search(attack.refused, done.stderr, re.I), (name, done.stderr)
        assert TOKEN not in done.stderr
    assert not marker.exists()
