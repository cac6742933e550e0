"""The schedule of what comes due with no new file: a consent dated in the future that has matured, and table
versions replaced longer ago than the lake's retention, which must stop being readable.

Once a day (STEDI_DUE_CRON, UTC), it reads only the tables' logs: customer_trusted's commit records its next
consent date (`stedi.next_consent`), and a vacuum's dry run names the files past the retention. When something is
due, it runs the tables concerned (a matured consent: customer_trusted and everything downstream, which take up
only the customers concerned; a retention: the table, whose run vacuums it even when nothing else changed). When
nothing is due, it skips, saying when the next consent matures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.assets.trusted import NEXT_CONSENT
from stedi_assets.lake.delta import METADATA_PREFIX
from stedi_assets.lake.store import LakeStore
from stedi_assets.resources.lake import Lake
from stedi_assets.sensors import TRIGGER_TAG, unfinished_lake_run, utc
from stedi_assets.tables import ALL_TABLES, CUSTOMER_TRUSTED

DUE_CRON = "0 4 * * *"  # 04:00 UTC every day
SCHEDULE_NAME = "due_without_new_files"


@dataclass(frozen=True)
class Due:
    """What has come due in a lake: the matured consent's date (epoch ms; None: none due), the next consent
    still in the future, and per table the files a vacuum at the retention would delete."""

    consent: int | None = None
    next_consent: int | None = None
    retention: dict[str, int] = field(default_factory=dict)

    @property
    def tables(self) -> list[AssetKey]:
        """The zone tables to run: customer_trusted and its downstream for a consent, each table past retention."""
        selection: AssetSelection = AssetSelection.assets(*self.retention)
        if self.consent is not None:
            selection |= AssetSelection.assets(CUSTOMER_TRUSTED.name).downstream()
        return sorted(selection.required_multi_asset_neighbors().resolve(ZONE_ASSETS))


def due_work(store: LakeStore, retention_hours: int, now_ms: int) -> Due:
    """What has come due by `now_ms` (epoch ms) in the lake's tables, from their logs alone."""
    snapshot = store.snapshot(CUSTOMER_TRUSTED)
    recorded = None if snapshot is None else snapshot.metadata.get(f"{METADATA_PREFIX}{NEXT_CONSENT}")
    next_consent = None if recorded is None else int(recorded)
    matured = next_consent is not None and next_consent <= now_ms
    retention = {
        name: files for name, table in ALL_TABLES.items() if (files := store.vacuum_due(table, retention_hours))
    }
    return Due(next_consent if matured else None, None if matured else next_consent, retention)


def due_request(lake: Lake, instance: DagsterInstance) -> RunRequest | SkipReason:
    """The schedule's decision: a run of what has come due, or why there is none."""
    due = due_work(lake.store, lake.retention_hours, int(time.time() * 1000))
    if due.consent is None and not due.retention:
        later = (
            "no consent is dated in the future"
            if due.next_consent is None
            else f"the next consent matures at {utc(due.next_consent)}"
        )
        return SkipReason(f"nothing is due: {later}; no replaced version is older than {lake.retention_hours} h")
    unfinished = unfinished_lake_run(instance)
    if unfinished is not None:
        return SkipReason(f"run {unfinished.run_id} has not finished: what is due waits for the next tick")
    reasons = ([f"a consent matured at {utc(due.consent)}"] if due.consent is not None else []) + [
        f"{name}: {files} files past the retention" for name, files in sorted(due.retention.items())
    ]
    return RunRequest(asset_selection=due.tables, tags={TRIGGER_TAG: SCHEDULE_NAME, "stedi/due": "; ".join(reasons)})


def due_schedule(cron: str = DUE_CRON) -> ScheduleDefinition:
    @schedule(
        name=SCHEDULE_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        description="Consents that matured and table versions past the retention, taken up with no new file.",
        target=AssetSelection.all(),
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def due_without_new_files(context: ScheduleEvaluationContext, lake: Lake) -> RunRequest | SkipReason:
        return due_request(lake, context.instance)

    return due_without_new_files
