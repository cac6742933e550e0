"""Dagster declarations of zone tables, taken from the registry: asset specs and their check specs."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetCheckSpec, AssetSpec, TableColumn, TableColumnLineage, TableSchema

from stedi_assets.checks import contract_spec
from stedi_assets.contracts import column_docs
from stedi_assets.tables import QUARANTINE_OF, ZoneTable

OWNERS = ["team:data-engineering"]


def table_schema(table: ZoneTable) -> TableSchema:
    docs = column_docs(table.model)
    return TableSchema(
        columns=[
            TableColumn(f.name, f.dataType.simpleString(), description=docs.get(f.name) or None)
            for f in table.schema.fields
        ]
    )


def table_spec(
    table: ZoneTable,
    deps: Sequence[ZoneTable] = (),
    lineage: TableColumnLineage | None = None,
    group: str | None = None,
) -> AssetSpec:
    """The asset of a table, in the group of its zone (or `group`)."""
    metadata: dict[str, object] = {
        "dagster/column_schema": table_schema(table),
        "dagster/table_name": table.name,
        "table_path": table.path,
    }
    if lineage is not None:
        metadata["dagster/column_lineage"] = lineage
    tags = {"zone": table.zone.value, "entity": table.entity, **({"pii": ""} if table.pii else {})}
    return AssetSpec(
        table.name,
        deps=[d.name for d in deps],
        description=f"{table.description}\n\nDelta table at `{{root}}/{table.path}/`",
        group_name=group or table.zone.value,
        metadata=metadata,
        kinds={"spark", "delta"},
        owners=OWNERS,
        tags=tags,
    )


def zone_specs(
    table: ZoneTable, deps: Sequence[ZoneTable] = (), lineage: TableColumnLineage | None = None
) -> list[AssetSpec]:
    """The specs of a zone asset: its table and, where it rejects rows, its quarantine (made by the same step). The
    quarantine hangs off its table in the lineage, in its table's group: made alongside it from the same inputs, it
    is drawn beside it rather than with a second edge from every input (its folder is still the quarantine zone)."""
    specs = [table_spec(table, deps, lineage)]
    if table.name in QUARANTINE_OF:
        specs.append(table_spec(QUARANTINE_OF[table.name], [table], group=table.zone.value))
    return specs


def zone_check_specs(table: ZoneTable, extra: Sequence[AssetCheckSpec] = ()) -> list[AssetCheckSpec]:
    tables = [table] + ([QUARANTINE_OF[table.name]] if table.name in QUARANTINE_OF else [])
    return [*extra, *(contract_spec(t) for t in tables)]
