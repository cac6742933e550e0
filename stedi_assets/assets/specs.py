"""Dagster declarations of zone tables, taken from the registry."""

from __future__ import annotations

from dagster import AssetOut, TableColumn, TableSchema

from stedi_assets.contracts import column_docs
from stedi_assets.tables import QUARANTINE_OF, ZoneTable


def table_schema(table: ZoneTable) -> TableSchema:
    docs = column_docs(table.model)
    return TableSchema(
        columns=[
            TableColumn(f.name, f.dataType.simpleString(), description=docs.get(f.name) or None)
            for f in table.schema.fields
        ]
    )


def zone_outs(table: ZoneTable) -> dict[str, AssetOut]:
    """The asset outputs of a zone table: the table itself and, where it rejects rows, its quarantine."""
    tables = [table] + ([QUARANTINE_OF[table.name]] if table.name in QUARANTINE_OF else [])
    return {
        t.name: AssetOut(
            group_name=t.zone.value,
            description=f"{t.description}\n\nPath: `{{root}}/{t.path}/`",
            metadata={"dagster/column_schema": table_schema(t), "table_path": t.path},
            kinds={"spark", "parquet"} if t.zone.value != "landing" else {"spark", "json"},
        )
        for t in tables
    }
