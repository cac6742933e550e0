"""The curated tables' freshness: the check on temporary lakes with files delivered by hand at chosen times, the
sensor that runs it when its answer changes, and a real check-only run of the project's Definitions."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, RunRequest, SensorResult, SkipReason, build_sensor_context

from stedi_assets.definitions import defs, freshness_minutes
from stedi_assets.freshness import freshness_checks, freshness_sensor
from stedi_assets.resources.lake import Lake
from stedi_assets_tests.lakes import empty_lake

CHECKS = {
    AssetCheckKey(AssetKey(name), "fresh_after_landing") for name in ("customer_curated", "machine_learning_curated")
}


def deliver(root: Path, relative: str, minutes_ago: float) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    at = time.time() - minutes_ago * 60
    os.utime(path, (at, at))


def check(root: Path, limit: int = 60) -> list:
    return [fresh(lake=Lake(root=str(root))) for fresh in freshness_checks(limit)]


def test_a_file_waiting_longer_than_the_limit_makes_both_curated_tables_stale(tmp_path: Path) -> None:
    empty_lake(tmp_path)
    assert [(r.asset_key.to_user_string(), r.passed) for r in check(tmp_path)] == [
        ("customer_curated", True),
        ("machine_learning_curated", True),
    ]
    deliver(tmp_path, "accelerometer/landing/new.json", minutes_ago=5)
    deliver(tmp_path, "customer/erasure/request.json", minutes_ago=600)  # not landing data: no table waits for it
    assert all(result.passed for result in check(tmp_path))
    deliver(tmp_path, "step_trainer/landing/old.json", minutes_ago=90)
    results = check(tmp_path)
    assert [result.passed for result in results] == [False, False]
    metadata = {key: value.value for key, value in results[0].metadata.items()}
    assert metadata["limit_minutes"] == 60
    assert metadata["oldest_waiting_file"].endswith("step_trainer/landing/old.json")
    assert 89.9 <= metadata["oldest_waited_minutes"] <= 91
    assert results[0].severity.value == "WARN"
    assert all(result.passed for result in check(tmp_path, limit=120))


def test_the_sensor_runs_the_check_only_when_its_answer_changes(tmp_path: Path) -> None:
    empty_lake(tmp_path)
    checks = freshness_checks(60)
    sensor = freshness_sensor(checks, 60, 30)

    def tick(cursor: str | None) -> SensorResult | SkipReason:
        with DagsterInstance.ephemeral() as instance:
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"lake": Lake(root=str(tmp_path))}
            )
            return sensor(context)

    first = tick(None)  # nothing late: no run, only the cursor
    assert isinstance(first, SensorResult) and (first.cursor, first.run_requests) == ("fresh", [])
    assert tick("fresh").skip_message == "the curated tables are still fresh"
    deliver(tmp_path, "customer/landing/late.json", minutes_ago=61)
    stale = tick("fresh")
    assert isinstance(stale, SensorResult) and stale.cursor == "stale"
    (request,) = stale.run_requests
    assert isinstance(request, RunRequest) and set(request.asset_check_keys or []) == CHECKS
    assert request.asset_selection is None  # the check alone: no table is materialized
    assert tick(None).cursor == "stale"  # a first tick with a late file runs the check too
    assert tick("stale").skip_message == "the curated tables are still stale"
    (tmp_path / "customer/landing/late.json").unlink()
    assert tick("stale").cursor == "fresh"


def test_a_check_only_run_records_a_stale_table_in_the_instance(tmp_path: Path) -> None:
    empty_lake(tmp_path)
    deliver(tmp_path, "customer/landing/late.json", minutes_ago=600)
    job = defs().resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(), asset_check_selection=CHECKS)
    with DagsterInstance.ephemeral() as instance:
        run_config = {"resources": {"lake": {"config": {"root": str(tmp_path)}}}}
        result = job.execute_in_process(run_config=run_config, instance=instance)
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert {(e.asset_key.to_user_string(), e.passed) for e in evaluations} == {
            ("customer_curated", False),
            ("machine_learning_curated", False),
        }
        assert result.get_asset_materialization_events() == []


def test_the_freshness_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert freshness_minutes() == 60
    monkeypatch.setenv("STEDI_FRESHNESS_MINUTES", "15")
    assert freshness_minutes() == 15
    monkeypatch.setenv("STEDI_FRESHNESS_MINUTES", "1h")
    with pytest.raises(ValueError) as error:
        freshness_minutes()
    assert str(error.value) == (
        "STEDI_FRESHNESS_MINUTES='1h' is not a whole number of minutes: set it to one, e.g. 60, or unset it for 60"
    )
