"""A plain-text table of a run: every asset's rows in / out / filtered / quarantined and its check result."""

from __future__ import annotations

from dagster import ExecuteInProcessResult

from stedi_assets.tables import ALL_TABLES

COLUMNS = ("asset", "rows_in", "rows_out", "filtered", "quarantined", "check")


def summary_rows(result: ExecuteInProcessResult) -> list[tuple[str, ...]]:
    materialized = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        materialized[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    checks = {}
    for evaluation in result.get_asset_check_evaluations():
        checks[evaluation.asset_key.to_user_string()] = "passed" if evaluation.passed else "FAILED"
    rows = []
    for name in ALL_TABLES:
        meta = materialized.get(name)
        if meta is None:
            rows.append((name, "-", "-", "-", "-", checks.get(name, "not run")))
            continue
        values = (meta.get("rows_in"), meta.get("rows_out"), meta.get("rows_filtered"), meta.get("rows_quarantined"))
        rows.append((name, *(f"{v:,}" for v in values), checks.get(name, "not run")))
    return rows


def summarize(result: ExecuteInProcessResult) -> str:
    rows = [COLUMNS, *summary_rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
