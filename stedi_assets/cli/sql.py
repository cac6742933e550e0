"""Read-only SQL over the zone tables by name, on the lake given by the environment.

python -m stedi_assets.cli.sql "select count(*) from customer_trusted"
python -m stedi_assets.cli.sql --format csv "select * from machine_learning_curated" > ml.csv
stedi sql --tables

Every table of the registry is a view under its own name, read at its current Delta version with its declared
schema (landing tables hold the rows the pipeline accepted from the raw lines; their quarantines hold the rest).

Only reads run, checked twice:
- the text is wrapped as a subquery before Spark sees it, so any statement (INSERT, CREATE, DROP, SET, ...) is a
  parse error, explained in one line;
- the query runs in a session of its own that the read-only guard (stedi_assets/sql_guard) watches: Spark's
  analyzer hands it every plan before anything runs, and it refuses any plan that reads something other than
  the views registered here, or that uses an operator or function not on its allowlist (script transforms,
  reflect, commands, UDFs, files named by path, catalog tables, ...).
Only DataFrame and SQL APIs are used, so the same code runs on a local session, a standalone cluster or Spark
Connect (STEDI_SPARK_MASTER); a Connect server must run the guard (`make up` starts it so), or nothing runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import socket
import sys
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, TextIO

from pyspark.errors import ParseException, PySparkException
from pyspark.logger import PySparkLogger
from pyspark.sql import DataFrame, Row, SparkSession

from stedi_assets import sql_guard
from stedi_assets.cli import settings
from stedi_assets.lake.store import LakeStore
from stedi_assets.spark_settings import SparkSettingError, SparkTarget, is_connect, session_config, without_secrets
from stedi_assets.tables import ALL_TABLES

DEFAULT_MAX_ROWS = 100
# Unicode categories never printed as they are: controls, format characters, line and paragraph separators.
UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}
QUERY_WORDS = ("SELECT", "WITH", "VALUES", "TABLE", "FROM")
ONLY_QUERIES = "only queries (SELECT / WITH / VALUES / TABLE) are allowed"
# The user's text starts on the wrapper's second line, so Spark's line numbers are one too high.
WRAPPER = "SELECT * FROM (\n{statement}\n) AS result"
LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/|\()*", re.DOTALL)
SPARK_POSITION = re.compile(r"(\bline |\(line )(\d+)")


class QueryError(ValueError):
    """A query that cannot run (or a lake it cannot run on), explained in one line."""


def single_statement(sql: str) -> str:
    """The query text without surrounding blanks and one trailing semicolon."""
    statement = sql.strip().removesuffix(";").strip()
    if not statement:
        raise QueryError("empty query")
    return statement


def named_tables(statement: str) -> set[str]:
    """Registry tables whose name occurs in the text (as a word; SQL names are case-insensitive)."""
    return {word.lower() for word in re.findall(r"\w+", statement)} & ALL_TABLES.keys()


def register_views(lake: LakeStore, session: SparkSession, names: Iterable[str]) -> list[str]:
    """A temp view per named table that exists; returns their names. A missing table gets no view, so that Spark
    reports it as not found (said as "not materialized yet")."""
    present = sorted(name for name in names if lake.exists(ALL_TABLES[name]))
    for name in present:
        # The current version, with the schema its log records; nothing cached (a Connect server would keep it).
        lake.read(session, ALL_TABLES[name], as_stored=True).createOrReplaceTempView(name)
    return present


def query(lake: LakeStore, session: SparkSession, sql: str) -> DataFrame:
    """The result of one read-only query over the lake's tables (lazy: rows are computed when fetched).

    `session` must be the query's own: it registers the views, then the guard makes it read-only for good.
    """
    statement = single_statement(sql)
    views = register_views(lake, session, named_tables(statement))
    sql_guard.enable(session, views)
    try:
        frame = session.sql(WRAPPER.format(statement=statement))
        _ = frame.schema  # analysis, where the guard checks the plan (Spark Connect analyzes lazily)
    except PySparkException as error:
        raise QueryError(describe(error, lake, statement)) from None
    return frame


def describe(error: PySparkException, lake: LakeStore, statement: str) -> str:
    """One line for an error Spark raised while planning or running a query."""
    refused = sql_guard.refusal(str(error))
    if refused is not None:
        return f"{refused.splitlines()[0].rstrip(';. ')}; nothing was run"
    noise = LEADING_NOISE.match(statement)
    assert noise is not None, "the pattern matches the empty string: it always matches"
    word = re.match(r"\w*", statement[noise.end() :])
    assert word is not None, "the pattern matches the empty string: it always matches"
    first_word = word.group().upper()
    if first_word not in QUERY_WORDS:  # a statement: a syntax error in the wrapper, or read as a table (RESET)
        return f"{ONLY_QUERIES}, not {first_word or statement[:20]!r}; nothing was run"
    if isinstance(error, ParseException):
        if (error.getMessageParameters() or {}).get("error") == "';'":
            return f"one query at a time: {ONLY_QUERIES}, without ';' between statements; nothing was run"
        return f"{first_line(error)}; nothing was run"
    if error.getCondition() == "TABLE_OR_VIEW_NOT_FOUND":
        name = (error.getMessageParameters() or {}).get("relationName", "").strip("`").lower()
        if name in ALL_TABLES:
            folder = lake.location(ALL_TABLES[name])
            return f"table {name} has not been materialized yet (no {folder}): run `make run` first"
        return f"{first_line(error)} Known tables: stedi sql --tables"
    return first_line(error)


def first_line(error: PySparkException) -> str:
    line = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return SPARK_POSITION.sub(lambda m: f"{m[1]}{int(m[2]) - 1}", line)


def plain(value: Any) -> Any:
    """A value as plain JSON-able Python: nested rows become objects."""
    if isinstance(value, Row):
        return {key: plain(item) for key, item in value.asDict().items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def cell(value: Any) -> str:
    """A non-null value as text: numbers and strings as they are, booleans and nested values as JSON."""
    if isinstance(value, bool | Row | list | tuple | dict):
        return json.dumps(plain(value), default=str)
    return str(value)


def printable(text: str) -> str:
    """Text safe to print on a terminal: control and format characters (ESC, CR, OSC and bidi controls, zero-width
    characters, line separators) spelled as escapes, so a hostile feed cannot move the cursor, retitle the window,
    hide text or rewrite what the operator sees. csv and json output stay exact."""
    return "".join(
        ESCAPES.get(c) or (f"\\u{ord(c):04x}" if unicodedata.category(c) in UNPRINTABLE else c) for c in text
    )


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def render_text(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int) -> str:
    """An aligned text table of the first `max_rows` rows, numbers right-aligned, with a row-count footer.

    `rows` may hold one more row than is shown: that is how a truncated result is recognised.
    """
    shown = rows[:max_rows]
    cells = [["NULL" if v is None else printable(cell(v)) for v in row] for row in shown]
    columns = [printable(name) for name in columns]
    widths = [max(len(text) for text in [name, *(row[i] for row in cells)]) for i, name in enumerate(columns)]
    numeric = [all(is_number(row[i]) for row in shown if row[i] is not None) for i in range(len(columns))]

    def line(texts: Sequence[str]) -> str:
        return " | ".join(
            t.rjust(w) if right else t.ljust(w) for t, w, right in zip(texts, widths, numeric, strict=True)
        ).rstrip()

    lines = [line(columns), "-+-".join("-" * w for w in widths), *(line(row) for row in cells)]
    if len(rows) > max_rows:
        lines.append(f"(first {max_rows} rows shown; there are more: use --max-rows N, or --format csv for all)")
    else:
        lines.append(f"({len(shown)} {'row' if len(shown) == 1 else 'rows'})")
    return "\n".join(lines)


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """RFC 4180 fields, rows ended by LF. The csv module quotes a field holding LF but not one holding a lone CR,
    which CSV readers take for a row's end: a row with a CR anywhere is written with every field quoted."""
    writer = csv.writer(out, lineterminator="\n")
    quoting = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        cells = ["" if v is None else cell(v) for v in row]
        (quoting if any("\r" in c for c in cells) else writer).writerow(cells)


def write_json_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    if len(set(columns)) < len(columns):
        raise QueryError(f"--format json needs distinct column names, got {', '.join(columns)}: alias them")
    for row in rows:
        out.write(json.dumps(dict(zip(columns, plain(list(row)), strict=True)), default=str) + "\n")


def table_listing(lake: LakeStore) -> tuple[list[str], list[tuple[str, ...]]]:
    """Every registry table with its zone, location and whether it has been materialized."""
    rows: list[tuple[str, ...]] = []
    for name, table in ALL_TABLES.items():
        rows.append((name, table.zone.value, lake.location(table), "yes" if lake.exists(table) else "no"))
    return ["table", "zone", "location", "exists"], rows


def quiet(session: SparkSession) -> None:
    """Errors reach the user as one line each: keep Spark's own logs (and their stack traces) off the console."""
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    if not is_remote(session):  # a Connect server keeps its logs to itself
        session.sparkContext.setLogLevel("OFF")


def run(args: argparse.Namespace, lake: LakeStore, session: SparkSession, out: TextIO) -> None:
    quiet(session)
    statement = args.sql if args.sql != "-" else sys.stdin.read()
    frame = query(lake, session, statement)
    max_rows = args.max_rows
    if max_rows is None and args.format == "text":
        max_rows = DEFAULT_MAX_ROWS
    try:
        columns = frame.columns
        write = write_csv if args.format == "csv" else write_json_lines
        if max_rows is None:  # csv or json without --max-rows (text always has a limit): every row, streamed
            write(columns, frame.toLocalIterator(), out)
            return
        # One row more than asked for tells whether there are more.
        rows = frame.limit(max_rows + 1).collect()
        if args.format == "text":
            out.write(render_text(columns, rows, max_rows) + "\n")
            return
        write(columns, rows[:max_rows], out)
        if len(rows) > max_rows:
            print(f"note: only the first {max_rows} rows were written (--max-rows)", file=sys.stderr)
    except PySparkException as error:  # raised while computing rows (e.g. a failing cast)
        raise QueryError(describe(error, lake, statement)) from None


def open_session(target: SparkTarget, lake: LakeStore) -> SparkSession:
    """A new session for one query: on the Spark Connect server of STEDI_SPARK_MASTER (which must run the guard), or
    in a local Spark application started with the guard (the running one, if any: tests). A local application's
    first session is left as it is, its settings too."""
    conf = session_config(target.master, target.conf, lake.uri)
    # The ignores below: pyspark annotates Builder.config's `map` as a dict of primitives, and a dict is invariant
    # (a dict[str, str] is one all the same).
    if is_connect(target.master):
        reachable(target.master)
        return SparkSession.builder.remote(conf.pop("spark.remote")).config(map=conf).create()  # type: ignore[arg-type]
    running = SparkSession.getActiveSession()
    if running is None:
        with without_secrets():  # the JVM never sees the pseudonym key (a query has no use for it)
            running = SparkSession.builder.config(map=sql_guard.with_guard(conf)).getOrCreate()  # type: ignore[arg-type]
    return running.newSession()


def reachable(url: str, timeout: float = 3.0) -> None:
    """Fails at once when nothing listens at a Connect URL (the client would retry for minutes)."""
    address = urllib.parse.urlparse(url.replace("sc://", "http://", 1))
    try:
        socket.create_connection((address.hostname or "localhost", address.port or 15002), timeout=timeout).close()
    except OSError as error:
        raise QueryError(
            f"no Spark Connect server answers at {url} ({error.strerror or error}): start one with `make up`,"
            " or unset STEDI_SPARK_MASTER to run a local Spark"
        ) from None


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a read-only SQL query over the zone tables, by name, on the lake of STEDI_LAKE_ROOT.",
    )
    parser.add_argument("sql", nargs="?", help="one query (SELECT / WITH / VALUES / TABLE); '-' reads it from stdin")
    parser.add_argument("--tables", action="store_true", help="list the tables, their location and whether they exist")
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text", help="json: one object a line")
    parser.add_argument(
        "--max-rows", type=int, help=f"rows to print (text: {DEFAULT_MAX_ROWS} by default; csv/json: all)"
    )
    settings.add_debug_option(parser)
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    arguments = parser(prog)
    args = arguments.parse_args(argv)
    if not args.tables and not args.sql:
        arguments.error("give a query, or --tables")
    if args.max_rows is not None and args.max_rows < 1:
        arguments.error("--max-rows must be at least 1")
    try:  # every setting checked before Spark starts: a wrong one fails at once, in one line
        target = SparkTarget.from_env()
        lake = LakeStore(target.lake_root)
        lake.check_root()
    except settings.SETTING_ERRORS as error:
        return settings.report(prog or "stedi sql", error, args.debug)
    session = None
    try:
        if args.tables:
            print(render_text(*table_listing(lake), max_rows=len(ALL_TABLES)))
        else:
            session = open_session(target, lake)
            run(args, lake, session, sys.stdout)
    except (QueryError, SparkSettingError, sql_guard.GuardError) as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)  # errors quote values of the data too
        return 1
    except PySparkException as error:  # Spark itself failed (a lost Connect server, ...): one line too
        print(f"error: {printable(first_line(error))}", file=sys.stderr)
        return 1
    finally:
        if session is not None and is_remote(session):
            session.stop()  # releases the session (and its views) on the Connect server
    return 0


def is_remote(session: SparkSession) -> bool:
    """A Spark Connect session (it has no SparkContext: stopping it stops only the session)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


if __name__ == "__main__":
    sys.exit(main())
