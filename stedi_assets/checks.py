"""Contract checks: each zone table's pandera model, run as a Dagster asset check on every materialization.

pandera.pyspark validates the schema (columns, types, strictness). Its row checks would cost one Spark job
each and say which checks fail but not on how many rows, so the model's nullability, value checks and
uniqueness are evaluated here instead, all in one aggregation, with a count of failing rows per rule.
`failing_rows` evaluates the REQUIRED rules (it backs the blocking check: a failing check on a trusted or
curated table blocks everything downstream); `descriptive_failures` counts the DESCRIPTIVE rules a landing
parse found, for a warning that blocks nothing.
"""

import operator
from functools import reduce

from dagster import AssetCheckResult, AssetChecksDefinition, AssetCheckSeverity, MetadataValue, asset_check
from pandera.config import ValidationDepth, config_context
from pandera.errors import SchemaErrors
from pandera.pyspark import DataFrameModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.contracts import DESCRIPTIVE, REQUIRED, column_rules, severity, unique_columns
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, Zone, ZoneTable
from stedi_assets.transforms.classify import REASON
from stedi_assets.transforms.landing import DESCRIPTIVE_FAILURES, descriptive_rules

BLOCKING_ZONES = (Zone.TRUSTED, Zone.CURATED)


def schema_errors(model: type[DataFrameModel], frame: DataFrame) -> list[dict[str, str]]:
    """pandera's findings on the frame's schema (columns, types, strictness) as a list of {check, column, error}.

    Validated on no rows: the schema is a property of the frame, and `failing_rows` checks the rows in one
    pass, where pandera would run a Spark job per column.
    """
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
            errors = model.validate(frame.limit(0)).pandera.errors
    except SchemaErrors as exc:  # pandera's Narwhals backend raises instead of annotating the frame
        return [{"check": str(e.check), "column": str(e.column_name), "error": str(e)} for e in exc.schema_errors]
    return [
        {"check": str(e.get("check")), "column": str(e.get("column")), "error": str(e.get("error"))}
        for kinds in errors.values()
        for findings in kinds.values()
        for e in findings
    ]


def failing_rows(model: type[DataFrameModel], frame: DataFrame) -> dict[str, int]:
    """Rows failing each REQUIRED nullability, value and uniqueness rule of the model, zeros included, in one
    pass. Descriptive columns are carried as delivered: their rules are `descriptive_failures`' business.

    Columns missing from the frame are left to `schema_errors`.
    """
    present = set(frame.columns)
    rules = column_rules(model, only=REQUIRED)
    failures: dict[str, F.Column] = {}
    for name, column in model.to_schema().columns.items():
        if name not in present or severity(model, name) == DESCRIPTIVE:
            continue
        if not column.nullable:
            failures[f"{name}:not_nullable"] = F.sum(F.when(F.col(name).isNull(), 1).otherwise(0))
        for check, passes in rules[name]:
            failures[f"{name}:{check}"] = F.sum(F.when(~passes, 1).otherwise(0))
    unique = [c for c in unique_columns(model) if c in present]
    if unique:
        # Rows beyond the first of each key (rows with a null key part are the nullability rule's business).
        has_null = reduce(operator.or_, (F.col(c).isNull() for c in unique))
        complete = F.sum(F.when(has_null, 0).otherwise(1))
        failures[f"unique({', '.join(unique)})"] = complete - F.count_distinct(*unique)
    if not failures:
        return {}
    counts = frame.agg(*(value.alias(key) for key, value in failures.items())).first().asDict()
    return {key: int(value or 0) for key, value in counts.items()}


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
    report = {}
    for i, rule in enumerate(rules):
        places = [found[f"first{i}"], found[f"spread{i}"], found[f"last{i}"]]
        examples = sorted({(p["source_file"], p["line_number"]) for p in places if p is not None})
        report[rule] = {
            "rows": int(found[f"rows{i}"] or 0),
            "examples": [{"source_file": file, "line_number": line} for file, line in examples],
        }
    return report


def contract_check(table: ZoneTable) -> AssetChecksDefinition:
    blocking = table.zone in BLOCKING_ZONES

    @asset_check(
        asset=table.name,
        name="contract",
        blocking=blocking,
        description=f"{table.name} conforms to pandera model {table.model.__name__}"
        + (" (blocks downstream on failure)" if blocking else ""),
    )
    def _contract(lake: Lake) -> AssetCheckResult:
        frame = lake.cache(lake.read(table))
        errors = schema_errors(table.model, frame)
        counts = failing_rows(table.model, frame)
        failed = {check: rows for check, rows in counts.items() if rows}
        return AssetCheckResult(
            passed=not errors and not failed,
            severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
            metadata={
                "model": table.model.__name__,
                "failed_checks": len(failed) + len(errors),
                "failing_rows_by_check": MetadataValue.json(counts),
                "schema_errors": MetadataValue.json(errors),
            },
        )

    return _contract


contract_checks = [contract_check(table) for table in ALL_TABLES.values()]
