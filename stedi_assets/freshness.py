"""Freshness of the curated tables: how long new landing data may wait before they show it.

A curated table is stale when a landing file has waited longer than STEDI_FRESHNESS_MINUTES (60 by default)
without its feed's ledger consuming it: the tables downstream of it do not hold its rows yet. The check
`fresh_after_landing` on each curated table says so (severity WARN: the table is right, only late), with the
oldest waiting file and its age. It runs after each materialization of the tables, and the `curated_freshness`
sensor runs it alone whenever the answer changes (a file waits too long; the wait ends), so that the UI shows a
table going stale while no run happens.
"""

from __future__ import annotations

import time

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_check,
    sensor,
)

from stedi_assets.lake.storage import FileInfo
from stedi_assets.resources.lake import Lake
from stedi_assets.sensors import pending_deliveries
from stedi_assets.tables import CUSTOMER_CURATED, CUSTOMER_ERASURE, MACHINE_LEARNING_CURATED, ZoneTable

FRESHNESS_MINUTES = 60
CHECK_NAME = "fresh_after_landing"
CURATED = (CUSTOMER_CURATED, MACHINE_LEARNING_CURATED)
CHECK_KEYS = [AssetCheckKey(asset_key=AssetKey(table.name), name=CHECK_NAME) for table in CURATED]


def oldest_waiting(lake: Lake) -> FileInfo | None:
    """The landing file that has waited longest for its feed's ledger to consume it (None: none waits). Erasure
    requests are not landing data: they stay until every table has erased them (the receipts say when)."""
    deliveries, _ = pending_deliveries(lake)
    waiting = [file for name, delivery in deliveries.items() if name != CUSTOMER_ERASURE.name for file in delivery.new]
    return min(waiting, key=lambda file: file.modified_ms, default=None)


def waited_minutes(file: FileInfo, now_ms: int) -> float:
    return max(0, now_ms - file.modified_ms) / 60_000


def freshness_result(lake: Lake, table: ZoneTable, limit_minutes: int) -> AssetCheckResult:
    oldest = oldest_waiting(lake)
    waited = 0.0 if oldest is None else waited_minutes(oldest, int(time.time() * 1000))
    return AssetCheckResult(
        asset_key=table.name,
        check_name=CHECK_NAME,
        passed=waited <= limit_minutes,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "limit_minutes": limit_minutes,
            "oldest_waiting_file": "" if oldest is None else oldest.uri,
            "oldest_waited_minutes": round(waited, 1),
        },
    )


def freshness_checks(limit_minutes: int = FRESHNESS_MINUTES) -> list[AssetChecksDefinition]:
    """One check per curated table (a run of either table alone runs its own)."""

    def check_of(table: ZoneTable) -> AssetChecksDefinition:
        @asset_check(
            asset=table.name,
            name=CHECK_NAME,
            description=f"No landing file has waited more than {limit_minutes} minutes for this table",
        )
        def fresh_after_landing(lake: Lake) -> AssetCheckResult:
            return freshness_result(lake, table, limit_minutes)

        return fresh_after_landing

    return [check_of(table) for table in CURATED]


def freshness_sensor(
    checks: list[AssetChecksDefinition], limit_minutes: int, minimum_interval_seconds: int
) -> SensorDefinition:
    @sensor(
        name="curated_freshness",
        description="Runs the curated tables' freshness check when it would change its answer.",
        asset_selection=AssetSelection.checks(*checks),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def curated_freshness(context: SensorEvaluationContext, lake: Lake) -> SensorResult | SkipReason:
        oldest = oldest_waiting(lake)
        stale = oldest is not None and waited_minutes(oldest, int(time.time() * 1000)) > limit_minutes
        state = "stale" if stale else "fresh"
        if context.cursor == state:
            return SkipReason(f"the curated tables are still {state}")
        if context.cursor is None and not stale:  # a first tick with nothing late: no run to say so
            return SensorResult(skip_reason=SkipReason("the curated tables are fresh"), cursor=state)
        request = RunRequest(asset_check_keys=CHECK_KEYS, tags={"stedi/check": CHECK_NAME})
        return SensorResult(run_requests=[request], cursor=state)

    return curated_freshness
