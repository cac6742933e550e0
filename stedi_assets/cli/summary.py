"""A plain-text table of a run: every asset's rows in / out / filtered / quarantined and its check result."""

from __future__ import annotations

from dagster import ExecuteInProcessResult

from stedi_assets.tables import ALL_TABLES

COLUMNS = ("asset", "rows_in", "rows_out", "filtered", "quarantined", "table rows", "version", "checks")


def summary_rows(result: ExecuteInProcessResult) -> list[tuple[str, ...]]:
    materialized = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        materialized[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    checks: dict[str, list[str]] = {}
    for evaluation in result.get_asset_check_evaluations():
        outcome = "passed" if evaluation.passed else f"{evaluation.severity.value.lower()}: {evaluation.check_name}"
        checks.setdefault(evaluation.asset_key.to_user_string(), []).append(outcome)
    rows: list[tuple[str, ...]] = []
    for name in ALL_TABLES:
        meta = materialized.get(name)
        outcomes = sorted(
            set(checks.get(name, ["not run"])) - ({"passed"} if len(set(checks.get(name, []))) > 1 else set())
        )
        if meta is None:
            rows.append((name, "-", "-", "-", "-", "-", "-", ", ".join(outcomes)))
            continue
        keys = ("rows_in", "rows_out", "rows_filtered", "rows_quarantined", "dagster/row_count")
        values = tuple(f"{meta.get(key, 0):,}" for key in keys)
        rows.append((name, *values, str(meta.get("table_version", "-")), ", ".join(outcomes)))
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
