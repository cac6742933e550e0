"""Contract checks: each zone table's pandera model, evaluated on the frame an asset is about to commit.

pandera.pyspark validates the schema (columns, types, strictness). Its row checks would cost one Spark job
each and say which checks fail but not on how many rows, so the model's nullability, value checks and
uniqueness are evaluated as row predicates instead, counted in the asset's one aggregation (accounting.py).
A failing check on a trusted or curated table is blocking: the asset commits nothing (readers keep the last
good version) and everything downstream is skipped.

Only REQUIRED columns' rules count there. A DESCRIPTIVE column (a name, a phone number) is carried as delivered
when it fails its rule: `descriptive_failures` counts those rules on a landing parse for the `descriptive`
check, a warning that blocks nothing and names rows by file and line, never by value.
"""

import operator
from functools import reduce
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from pandera.config import ValidationDepth, config_context
from pandera.errors import SchemaErrors
from pandera.pyspark import DataFrameModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.contracts import DESCRIPTIVE, REQUIRED, column_rules, severity, unique_columns
from stedi_assets.reasons import REASON
from stedi_assets.tables import Zone, ZoneTable
from stedi_assets.transforms.parsing import DESCRIPTIVE_FAILURES, descriptive_rules

BLOCKING_ZONES = (Zone.TRUSTED, Zone.CURATED)


def schema_errors(model: type[DataFrameModel], frame: DataFrame) -> list[dict[str, str]]:
    """pandera's findings on the frame's schema (columns, types, strictness) as a list of {check, column, error}.

    Validated on no rows: the schema is a property of the frame, and `failing_rows` checks the rows in one pass
    (nullability included), where pandera runs a Spark job per column (it counts the nulls of every non-nullable
    column, even at its schema-only depth: about 0.7 s a table on the sample, on no rows, finding nothing).
    """
    schema = model.to_schema()
    schema = schema.update_columns({name: {"nullable": True} for name in schema.columns})
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
            # pandera adds its .pandera accessor to a plain pyspark DataFrame at runtime: the stubs do not know it.
            validated: Any = schema.validate(frame.limit(0))
            errors = validated.pandera.errors
    except SchemaErrors as exc:  # pandera's Narwhals backend raises instead of annotating the frame
        return [{"check": str(e.check), "column": str(e.column_name), "error": str(e)} for e in exc.schema_errors]
    return [
        {"check": str(e.get("check")), "column": str(e.get("column")), "error": str(e.get("error"))}
        for kinds in errors.values()
        for findings in kinds.values()
        for e in findings
    ]


def failure_predicates(model: type[DataFrameModel], present: set[str]) -> dict[str, Column]:
    """For each REQUIRED nullability and value rule of the model on a present column: a predicate true where a
    row fails. Descriptive columns are carried as delivered: their rules are `descriptive_failures`' business.

    Columns missing from the frame are left to `schema_errors`.
    """
    rules = column_rules(model, only=REQUIRED)
    failures: dict[str, Column] = {}
    for name, column in model.to_schema().columns.items():
        if name not in present or severity(model, name) == DESCRIPTIVE:
            continue
        if not column.nullable:
            failures[f"{name}:not_nullable"] = F.col(name).isNull()
        for check, passes in rules[name]:
            failures[f"{name}:{check}"] = ~passes
    return failures


def rule_counts(model: type[DataFrameModel], present: set[str], scope: Column | None = None) -> dict[str, Column]:
    """Aggregate expressions counting the rows (within `scope`) that fail each rule of the model, uniqueness
    included, for one `agg` together with whatever else the caller counts."""
    scope = F.lit(True) if scope is None else scope
    counts = {
        name: F.sum(F.when(scope & fails, 1).otherwise(0)) for name, fails in failure_predicates(model, present).items()
    }
    unique = [c for c in unique_columns(model) if c in present]
    if unique:
        # Rows beyond the first of each key (rows with a null key part are the nullability rule's business).
        complete = scope & ~reduce(operator.or_, (F.col(c).isNull() for c in unique))
        distinct = F.count_distinct(F.when(complete, F.struct(*unique)))
        counts[f"unique({', '.join(unique)})"] = F.sum(F.when(complete, 1).otherwise(0)) - distinct
    return counts


def failing_rows(model: type[DataFrameModel], frame: DataFrame) -> dict[str, int]:
    """Rows failing each REQUIRED nullability, value and uniqueness rule of the model, zeros included, in one
    pass."""
    counts = rule_counts(model, set(frame.columns))
    if not counts:
        return {}
    row = frame.agg(*(value.alias(key) for key, value in counts.items())).first()
    assert row is not None, "an aggregate without grouping has one row"
    return {key: int(value or 0) for key, value in row.asDict().items()}


def descriptive_failures(table: ZoneTable, parsed: DataFrame) -> dict[str, dict]:
    """For a landing table's parse (`parse_landing`'s output, with lineage), the kept rows failing each
    descriptive rule, zeros included, with up to three of them as examples, in one aggregation:
    {rule: {"rows": n, "examples": [{"source_file": uri, "line_number": n}, ...]}}.

    Examples are located by file and line only, never by value: check metadata lands in Dagster's event
    log, which no erasure reaches. They are the rule's first and last rows (by file, line) and one picked
    by hash in between, so reruns show the same ones.
    """
    rules = descriptive_rules(table)
    if not rules:
        return {}
    kept = parsed.where(F.col(REASON).isNull())
    where = F.struct(F.col("source_file"), F.col("line_number"))
    spread = F.struct(F.xxhash64("source_file", "line_number").alias("h"), F.col("source_file"), F.col("line_number"))
    columns = []
    for i, rule in enumerate(rules):
        fails = F.array_contains(F.col(DESCRIPTIVE_FAILURES), rule)
        columns += [
            F.sum(F.when(fails, 1).otherwise(0)).alias(f"rows{i}"),
            F.min(F.when(fails, where)).alias(f"first{i}"),
            F.min(F.when(fails, spread)).alias(f"spread{i}"),
            F.max(F.when(fails, where)).alias(f"last{i}"),
        ]
    found = kept.agg(*columns).first()
    assert found is not None, "an aggregate without grouping has one row"
    report = {}
    for i, rule in enumerate(rules):
        places = [found[f"first{i}"], found[f"spread{i}"], found[f"last{i}"]]
        examples = sorted({(p["source_file"], p["line_number"]) for p in places if p is not None})
        report[rule] = {
            "rows": int(found[f"rows{i}"] or 0),
            "examples": [{"source_file": file, "line_number": line} for file, line in examples],
        }
    return report


def descriptive_spec(table: ZoneTable) -> AssetCheckSpec:
    return AssetCheckSpec(
        "descriptive",
        asset=table.name,
        blocking=False,
        description=f"Descriptive fields of {table.name} that fail their rule (kept as delivered): a warning",
    )


def descriptive_result(table: ZoneTable, parsed: DataFrame) -> AssetCheckResult:
    report = descriptive_failures(table, parsed)
    failing = {rule: found["rows"] for rule, found in report.items() if found["rows"]}
    return AssetCheckResult(
        asset_key=table.name,
        check_name="descriptive",
        passed=not failing,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "failing_rows_by_rule": MetadataValue.json({rule: found["rows"] for rule, found in report.items()}),
            "examples": MetadataValue.json({rule: found["examples"] for rule, found in report.items()}),
        },
    )


def descriptive_nothing_new(table: ZoneTable) -> AssetCheckResult:
    """The descriptive check of a run that parsed no new line: no row of the batch fails a rule (the rows
    already in the table were reported by the run that parsed them)."""
    return AssetCheckResult(
        asset_key=table.name,
        check_name="descriptive",
        passed=True,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "failing_rows_by_rule": MetadataValue.json(dict.fromkeys(descriptive_rules(table), 0)),
            "examples": MetadataValue.json({}),
            "unchanged": "no new or rewritten landing file",
        },
    )


def is_blocking(table: ZoneTable) -> bool:
    return table.zone in BLOCKING_ZONES


def contract_spec(table: ZoneTable) -> AssetCheckSpec:
    blocking = is_blocking(table)
    return AssetCheckSpec(
        "contract",
        asset=table.name,
        blocking=blocking,
        description=f"{table.name} conforms to pandera model {table.model.__name__}"
        + (" (on failure nothing is committed and downstream is skipped)" if blocking else ""),
    )


def contract_result(table: ZoneTable, errors: list[dict[str, str]], counts: dict[str, int]) -> AssetCheckResult:
    failed = {check: rows for check, rows in counts.items() if rows}
    return AssetCheckResult(
        asset_key=table.name,
        check_name="contract",
        passed=not errors and not failed,
        severity=AssetCheckSeverity.ERROR if is_blocking(table) else AssetCheckSeverity.WARN,
        metadata={
            "model": table.model.__name__,
            "failed_checks": len(failed) + len(errors),
            "failing_rows_by_check": MetadataValue.json(counts),
            "schema_errors": MetadataValue.json(errors),
        },
    )
