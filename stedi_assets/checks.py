"""Contract checks: each zone table's pandera model, run as a Dagster asset check on every materialization.

pandera.pyspark says which checks fail but not on how many rows; where one fails, the rows are counted
here in one aggregation. A failing check on a trusted or curated table blocks everything downstream.
"""

from dagster import AssetCheckResult, AssetChecksDefinition, AssetCheckSeverity, MetadataValue, asset_check
from pandera.errors import SchemaErrors
from pandera.pyspark import DataFrameModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.contracts import column_rules, unique_columns
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, Zone, ZoneTable

BLOCKING_ZONES = (Zone.TRUSTED, Zone.CURATED)


def contract_errors(model: type[DataFrameModel], frame: DataFrame) -> list[dict[str, str]]:
    """pandera's findings as a flat list of {check, column, error}; empty when the frame conforms."""
    try:
        errors = model.validate(frame).pandera.errors
    except SchemaErrors as exc:  # pandera's Narwhals backend raises instead of annotating the frame
        return [{"check": str(e.check), "column": str(e.column_name), "error": str(e)} for e in exc.schema_errors]
    return [
        {"check": str(e.get("check")), "column": str(e.get("column")), "error": str(e.get("error"))}
        for kinds in errors.values()
        for findings in kinds.values()
        for e in findings
    ]


def failing_rows(model: type[DataFrameModel], frame: DataFrame) -> dict[str, int]:
    """Rows failing each nullability, value and uniqueness rule of the model (one pass, plus one for unique)."""
    schema = model.to_schema()
    counters = {}
    present = set(frame.columns)
    for name, column in schema.columns.items():
        if name not in present:
            continue
        if not column.nullable:
            counters[f"{name}:not_nullable"] = F.col(name).isNull()
        for check, passes in column_rules(model)[name]:
            counters[f"{name}:{check}"] = ~passes
    counts = frame.agg(*(F.sum(F.when(fails, 1).otherwise(0)).alias(key) for key, fails in counters.items()))
    failing = {key: int(value or 0) for key, value in counts.first().asDict().items()} if counters else {}
    unique = [c for c in unique_columns(model) if c in present]
    if unique:
        surplus = frame.groupBy(*unique).count().where(F.col("count") > 1).agg(F.sum(F.col("count") - 1)).first()[0]
        failing[f"unique({', '.join(unique)})"] = int(surplus or 0)
    return {key: n for key, n in failing.items() if n}


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
        errors = contract_errors(table.model, frame)
        counts = failing_rows(table.model, frame) if errors else {}
        return AssetCheckResult(
            passed=not errors,
            severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
            metadata={
                "model": table.model.__name__,
                "failed_checks": len(errors),
                "failing_rows_by_check": MetadataValue.json(counts),
                "errors": MetadataValue.json(errors),
            },
        )

    return _contract


contract_checks = [contract_check(table) for table in ALL_TABLES.values()]
