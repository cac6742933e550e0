"""The landing sensor: files the ledger has not consumed (new, rewritten or deleted) request a run of their
feeds and everything downstream.

It asks each landing table's ledger (committed with the table's current version) rather than remembering
files itself, so its cursor stays a few bytes at any number of files. The batch key names the batch: the
ledger versions it was compared with and the files' fingerprints, so it cannot collide with an earlier
batch's key (every committed batch moves a version). Each run of a batch is tagged with it, and its run key is
the batch key and the attempt number, counted from the batch's runs in the instance.

A batch whose run ended without consuming it (a failure) is retried after growing waits (RETRY_WAITS: 1, 5 and
30 minutes after the first, second and third failure); after the last, it waits for an operator, and the skip
reason says so. The operator fixes the cause and sets the sensor's cursor to `retry` in the UI (or re-executes
the failed run, or runs `stedi run`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.lake.ledger import Delivery, compare, read_ledger
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import CUSTOMER_ERASURE, LANDING_TABLES

MAX_FILES_IN_TAG = 20
BATCH_TAG = "stedi/batch"
# Every run the lake's triggers start carries it (its value: the trigger's name): the production instance limits
# the lake's concurrency by it, never other teams' runs.
TRIGGER_TAG = "stedi/trigger"
# Seconds to wait after the 1st, 2nd, 3rd failed run of a batch; after one more failure, an operator decides.
RETRY_WAITS = (60, 300, 1800)
OPERATOR_RETRY = "retry"  # the cursor an operator sets in the UI to let a batch that stopped retrying run again
UNFINISHED = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)


def pending_deliveries(lake: Lake) -> tuple[dict[str, Delivery], dict[str, int]]:
    """For each feed, what its folder holds that its ledger has not consumed; and each ledger's version.

    Erasure requests have no ledger: a run consumes them into tombstones and deletes them, so any request file
    is pending.
    """
    deliveries, versions = {}, {}
    for table in (CUSTOMER_ERASURE, *LANDING_TABLES):
        delta = lake.store.delta(table)
        snapshot = delta.snapshot()
        versions[table.name] = -1 if snapshot is None else snapshot.version
        ledger = {} if table is CUSTOMER_ERASURE else read_ledger(delta, snapshot)
        delivery = compare(ledger, lake.store.landing_files(table))
        if not delivery.empty:
            deliveries[table.name] = delivery
    return deliveries, versions


def unfinished_lake_run(instance: DagsterInstance) -> DagsterRun | None:
    """An unfinished run that materializes any of the lake's assets, whatever started it (the sensor, the UI,
    `stedi run`); other runs in a shared instance (other teams' jobs) are not the lake's to wait for. A run names
    its assets (`asset_selection`), or, run as a whole job, its steps (the execution plan's step keys: an asset's
    step is its op's name)."""
    own_steps = {assets.op.name for assets in ZONE_ASSETS}
    own_keys = {key for assets in ZONE_ASSETS for key in assets.keys}
    for run in instance.get_runs(RunsFilter(statuses=list(UNFINISHED))):
        if run.asset_selection is not None:
            if run.asset_selection & own_keys:
                return run
            continue
        plan = (
            instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            if run.execution_plan_snapshot_id
            else None
        )
        if plan is None or {step.key for step in plan.steps} & own_steps:
            return run  # a run whose steps cannot be told may be the lake's: wait for it
    return None


def batch_key(deliveries: dict[str, Delivery], versions: dict[str, int]) -> str:
    batch = {
        name: {
            "version": versions[name],
            "new": sorted(f"{f.uri}@{f.fingerprint}" for f in delivery.new),
            "gone": delivery.gone,
        }
        for name, delivery in deliveries.items()
    }
    return hashlib.sha256(json.dumps(batch, sort_keys=True).encode()).hexdigest()[:20]


def failed_runs(instance: DagsterInstance, key: str) -> list[RunRecord]:
    """The finished runs of a batch, newest first: a batch still pending after its run finished was not consumed
    by it (the run failed, or was cancelled)."""
    records = instance.get_run_records(RunsFilter(tags={BATCH_TAG: key}))
    return [record for record in records if record.dagster_run.status not in UNFINISHED]


def ended_at(record: RunRecord) -> float:
    """When a run finished (epoch seconds): its end time, or its record's last update where none was recorded."""
    if record.end_time is not None:
        return record.end_time
    return record.update_timestamp.replace(tzinfo=record.update_timestamp.tzinfo or UTC).timestamp()


def utc(epoch_ms: float) -> str:
    """A time as the skip reasons of the sensor and the schedule spell it."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def retry_wait(failed: list[RunRecord], waits: Sequence[int], operator_retry: bool, now: float) -> str | None:
    """Why the next attempt of a batch must wait (None: it may start now), given its failed runs, newest first."""
    if not failed or operator_retry:
        return None
    last = failed[0]
    if len(failed) > len(waits):
        return (
            f"{len(failed)} runs failed, the last {last.dagster_run.run_id}: waiting for an operator to fix the cause,"
            f" then set this sensor's cursor to `{OPERATOR_RETRY}` (or re-execute that run, or run `stedi run`)"
        )
    due = ended_at(last) + waits[len(failed) - 1]
    if now >= due:
        return None
    at = utc(due * 1000)
    return f"run {last.dagster_run.run_id} failed ({len(failed)} of {len(waits) + 1} attempts): next attempt at {at}"


def landing_sensor(minimum_interval_seconds: int, retry_waits: Sequence[int] = RETRY_WAITS) -> SensorDefinition:
    @sensor(
        name="landing_files",
        description="Landing files the ledger has not consumed (new, rewritten, deleted) rerun their feeds and"
        " everything downstream.",
        target=AssetSelection.assets(CUSTOMER_ERASURE.name, *(t.name for t in LANDING_TABLES))
        .downstream()
        .required_multi_asset_neighbors(),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def landing_files(context: SensorEvaluationContext, lake: Lake) -> SensorResult | SkipReason:
        deliveries, versions = pending_deliveries(lake)
        if not deliveries:
            return SkipReason(f"every landing file under {lake.store.uri} is in its ledger")
        # A run still going commits table by table: a batch taken now would hold files it is consuming, under a
        # new key (the ledger versions move), and a second run of them would be queued behind it.
        unfinished = unfinished_lake_run(context.instance)
        if unfinished is not None:
            return SkipReason(f"run {unfinished.run_id} has not finished: new files wait for its commits")
        key = batch_key(deliveries, versions)
        operator_retry = context.cursor == OPERATOR_RETRY
        cursor = json.loads(context.cursor) if context.cursor and not operator_retry else {}
        attempted = 0  # attempts the cursor knows of: runs of an older release carry no batch tag
        if cursor.get("batch") == key:
            previous = f"{key}-{cursor['attempt']}"
            if not context.instance.get_runs(RunsFilter(tags={"dagster/run_key": previous}), limit=1):
                return SkipReason(f"the run for batch {previous} has not started yet")  # the daemon creates it
            attempted = cursor["attempt"] + 1
        failed = failed_runs(context.instance, key)
        if (wait := retry_wait(failed, retry_waits, operator_retry, time.time())) is not None:
            return SkipReason(f"batch {key}: {wait}")
        attempt = max(len(failed), attempted)  # a run key is never reused: Dagster would drop the request
        names = sorted(f.uri.rsplit("/", 1)[-1] for d in deliveries.values() for f in d.new)
        tags = {
            TRIGGER_TAG: "landing_files",
            BATCH_TAG: key,
            "stedi/landing_feeds": ",".join(sorted(deliveries)),
            "stedi/landing_file_count": str(len(names)),
            "stedi/landing_files_gone": str(sum(len(d.gone) for d in deliveries.values())),
            "stedi/landing_files": ",".join(names[:MAX_FILES_IN_TAG])
            + (",..." if len(names) > MAX_FILES_IN_TAG else ""),
        }
        selection = AssetSelection.assets(*deliveries).downstream().required_multi_asset_neighbors()
        request = RunRequest(
            run_key=f"{key}-{attempt}", asset_selection=sorted(selection.resolve(ZONE_ASSETS)), tags=tags
        )
        return SensorResult(run_requests=[request], cursor=json.dumps({"batch": key, "attempt": attempt}))

    return landing_files
