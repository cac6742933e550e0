"""The schedule of what comes due with no new file, evaluated on temporary lakes whose versions are committed by
hand (no run materializes anything); and the two things it relies on: customer_trusted recording its next
consent, and a run of an unchanged table vacuuming what the retention no longer keeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunRequest, SkipReason
from dagster._core.test_utils import create_run_for_test
from pyspark.sql import SparkSession

from stedi_assets.assets.publishing import unchanged
from stedi_assets.assets.trusted import ConsentDates, consent_dates
from stedi_assets.definitions import defs, due_cron
from stedi_assets.lake.delta import Snapshot
from stedi_assets.resources.lake import Lake
from stedi_assets.schedules import due_request, due_schedule
from stedi_assets.tables import CUSTOMER_CURATED, CUSTOMER_TRUSTED
from stedi_assets.transforms.identity import identity_key
from stedi_assets_tests.lake.commits import commit
from stedi_assets_tests.lakes import empty_lake

HOUR_MS = 3_600_000
DOWNSTREAM_OF_CUSTOMER_TRUSTED = {
    "customer_trusted",
    "accelerometer_trusted",
    "customer_curated",
    "step_trainer_trusted",
    "step_trainer_trusted_quarantine",
    "machine_learning_curated",
    "erasure_receipts",
}


def evaluate(root: Path, instance: DagsterInstance, retention_hours: int = 168) -> RunRequest | SkipReason:
    """The schedule's decision on a lake. (Its context needs an instance with a ref; such an instance leaves a
    global of Dagster's pointing at it once gone, which breaks every later Definitions load in the session.)"""
    return due_request(Lake(root=str(root), retention_hours=retention_hours), instance)


def selected(request: RunRequest | SkipReason) -> set[str]:
    assert isinstance(request, RunRequest), request
    assert request.asset_selection is not None
    return {key.to_user_string() for key in request.asset_selection}


def commit_next_consent(root: Path, next_consent: int) -> None:
    delta = Lake(root=str(root)).store.delta(CUSTOMER_TRUSTED)
    commit(delta, [1], base=delta.snapshot(), removed=None, as_of=next_consent - HOUR_MS, next_consent=next_consent)


def replaced_version(root: Path) -> Snapshot:
    """customer_curated with a first version replaced by a second: the first one's file only it needs."""
    delta = Lake(root=str(root)).store.delta(CUSTOMER_CURATED)
    first = commit(delta, [1])
    return commit(delta, [2], base=first, removed=list(first.files))


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as instance:
        yield instance


def test_nothing_due_is_a_skip_saying_when_the_next_consent_matures(tmp_path: Path, instance) -> None:
    empty_lake(tmp_path)
    nothing = "no replaced version is older than 168 h"
    assert evaluate(tmp_path, instance).skip_message == f"nothing is due: no consent is dated in the future; {nothing}"
    commit_next_consent(tmp_path, 4_102_444_800_000)  # 2100-01-01
    later = evaluate(tmp_path, instance).skip_message
    assert later == f"nothing is due: the next consent matures at 2100-01-01 00:00:00 UTC; {nothing}"


def test_a_matured_consent_runs_customer_trusted_and_everything_downstream(tmp_path: Path, instance) -> None:
    empty_lake(tmp_path)
    matured = int(time.time() * 1000) - 1000
    commit_next_consent(tmp_path, matured)
    request = evaluate(tmp_path, instance)
    assert selected(request) == DOWNSTREAM_OF_CUSTOMER_TRUSTED
    assert isinstance(request, RunRequest)
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(matured / 1000))
    assert request.tags == {"stedi/trigger": "due_without_new_files", "stedi/due": f"a consent matured at {at}"}


def test_a_version_past_the_retention_runs_its_table(tmp_path: Path, instance) -> None:
    empty_lake(tmp_path)
    replaced_version(tmp_path)
    assert evaluate(tmp_path, instance).skip_message.startswith("nothing is due")  # within 168 hours
    request = evaluate(tmp_path, instance, retention_hours=0)
    assert selected(request) == {"customer_curated"}
    assert isinstance(request, RunRequest)
    assert request.tags["stedi/due"] == "customer_curated: 1 files past the retention"


def test_what_is_due_waits_for_an_unfinished_run_of_the_lake(tmp_path: Path, instance) -> None:
    empty_lake(tmp_path)
    commit_next_consent(tmp_path, int(time.time() * 1000) - 1000)
    create_run_for_test(instance, "finance", status=DagsterRunStatus.STARTED, asset_selection={AssetKey("gl")})
    assert selected(evaluate(tmp_path, instance)) == DOWNSTREAM_OF_CUSTOMER_TRUSTED  # another team's run
    lake_run = defs().resolve_implicit_global_asset_job_def()
    running = instance.create_run_for_job(lake_run, status=DagsterRunStatus.STARTED).run_id
    expected = f"run {running} has not finished: what is due waits for the next tick"
    assert evaluate(tmp_path, instance).skip_message == expected


def test_a_run_of_an_unchanged_table_vacuums_what_the_retention_no_longer_keeps(tmp_path: Path) -> None:
    empty_lake(tmp_path)
    second = replaced_version(tmp_path)
    lake = Lake(root=str(tmp_path), retention_hours=0)
    files = (tmp_path / "customer/curated").rglob("*.parquet")
    old = [f for f in files if not any(uri.endswith(f"/{f.parent.name}/{f.name}") for uri in second.files)]
    assert len(old) == 1
    results = list(unchanged(lake, CUSTOMER_CURATED, "nothing new"))
    (materialization,) = [r for r in results if hasattr(r, "asset_key") and not hasattr(r, "check_name")]
    assert materialization.metadata["files_vacuumed"] == 1
    assert not old[0].exists()
    assert list(unchanged(lake, CUSTOMER_CURATED, "nothing new"))[-1].metadata["files_vacuumed"] == 0


def test_the_schedule_time_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert due_cron() == "0 4 * * *"
    monkeypatch.setenv("STEDI_DUE_CRON", "30 2 * * 1-5")
    assert due_cron() == "30 2 * * 1-5"
    assert due_schedule(due_cron()).cron_schedule == "30 2 * * 1-5"
    monkeypatch.setenv("STEDI_DUE_CRON", "daily")
    with pytest.raises(ValueError) as error:
        due_cron()
    assert str(error.value) == (
        "STEDI_DUE_CRON='daily' is not a cron schedule: set it to five fields (minute hour day month weekday,"
        " in UTC), e.g. '0 4 * * *', or unset it for that"
    )


def test_customer_trusted_records_its_next_consent_and_what_matured(spark: SparkSession, tmp_path: Path) -> None:
    now = 1_700_000_000_000
    landing = spark.createDataFrame(
        [
            ("old@example.com", now - 10 * HOUR_MS),  # matured before the last computation
            ("due@example.com", now - HOUR_MS),  # matured since
            ("DUE@example.com ", now - HOUR_MS),  # the same customer, another spelling
            ("soon@example.com", now + HOUR_MS),
            ("later@example.com", now + 5 * HOUR_MS),
            ("never@example.com", None),
        ],
        "email string, shareWithResearchAsOfDate long",
    )
    base = Snapshot(version=3, files=[], rows=0, metadata={"stedi.as_of": str(now - 2 * HOUR_MS)})
    due_key = spark.createDataFrame([("due@example.com",)], "email string").select(identity_key("email")).first()[0]
    assert consent_dates(landing, base, now) == ConsentDates(frozenset({due_key}), now + HOUR_MS)
    assert consent_dates(landing, None, now) == ConsentDates(None, now + HOUR_MS)
    assert consent_dates(landing, base, now + 6 * HOUR_MS).next_due is None


def test_the_schedule_is_wired_and_runs_by_default() -> None:
    schedule = defs().resolve_schedule_def("due_without_new_files")
    assert (schedule.default_status.value, schedule.cron_schedule) == ("RUNNING", "0 4 * * *")
    assert schedule.execution_timezone == "UTC" and "lake" in schedule.required_resource_keys
