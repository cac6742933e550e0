"""The landing sensor's decisions, evaluated with build_sensor_context on a temporary lake: files delivered by
hand, ledgers committed by hand (no run materializes anything), runs recorded as the instance would hold them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorResult,
    SkipReason,
    build_sensor_context,
    job,
    op,
)
from dagster._core.test_utils import create_run_for_test

from stedi_assets.definitions import defs, retry_waits
from stedi_assets.lake.ledger import arrival_times, compare, consumed, write_ledger
from stedi_assets.resources.lake import Lake
from stedi_assets.sensors import BATCH_TAG, OPERATOR_RETRY, landing_sensor
from stedi_assets.tables import STEP_TRAINER_LANDING
from stedi_assets_tests.lake.commits import commit

# The unfinished states a test can record without a job origin (QUEUED needs one).
UNFINISHED_RECORDABLE = (
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)
STARTED = DagsterRunStatus.STARTED
STEP = b'{"sensorReadingTime": 1655564444000, "serialNumber": "11111111-1111-4111-8111-111111111111"}\n'


class Lakeside:
    """A lake root with its landing folders, an instance, and the sensor evaluated against them."""

    def __init__(self, root: Path, instance: DagsterInstance, retry_waits: tuple[int, ...] = (0, 0, 0)) -> None:
        self.root, self.instance = root, instance
        self.sensor = landing_sensor(minimum_interval_seconds=5, retry_waits=retry_waits)
        for feed in ("customer", "accelerometer", "step_trainer"):
            (root / feed / "landing").mkdir(parents=True, exist_ok=True)

    def deliver(self, relative: str, data: bytes = STEP) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def tick(self, cursor: str | None = None) -> SensorResult | SkipReason:
        lake = Lake(root=str(self.root))
        return self.sensor(build_sensor_context(instance=self.instance, cursor=cursor, resources={"lake": lake}))

    def consume_step_trainer(self) -> None:
        """What a run of step_trainer_landing commits, by hand: a version naming a ledger of every file listed."""
        store = Lake(root=str(self.root)).store
        delta = store.delta(STEP_TRAINER_LANDING)
        files = store.landing_files(STEP_TRAINER_LANDING)
        ledger = consumed({}, compare({}, files), arrival_times({}, files), {}, set())
        commit(delta, [1], base=delta.snapshot(), removed=None, ledger=write_ledger(delta, ledger))

    def record_run(self, status: DagsterRunStatus, run_key: str | None = None) -> str:
        """A run as the daemon records it for a request: its run key and, from it, the batch tag."""
        tags = {} if run_key is None else {"dagster/run_key": run_key, BATCH_TAG: run_key.rsplit("-", 1)[0]}
        return create_run_for_test(self.instance, tags=tags, status=status).run_id

    def fail(self, result: SensorResult | SkipReason) -> str:
        """The requested run, recorded as failed; the cursor of the tick that requested it."""
        self.record_run(DagsterRunStatus.FAILURE, request_of(result).run_key)
        assert isinstance(result, SensorResult) and result.cursor is not None
        return result.cursor


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lakeside]:
    with DagsterInstance.ephemeral() as instance:
        yield Lakeside(tmp_path, instance)


def request_of(result: SensorResult | SkipReason) -> RunRequest:
    assert isinstance(result, SensorResult), result
    (request,) = result.run_requests
    return request


def skip_of(result: SensorResult | SkipReason) -> str:
    assert isinstance(result, SkipReason), result
    return result.skip_message


def test_nothing_delivered_is_a_skip_saying_why(lake: Lakeside) -> None:
    lake.deliver("step_trainer/landing/_SUCCESS", b"")
    lake.deliver("step_trainer/landing/.part.json.uploading")  # hidden names are not deliveries
    assert skip_of(lake.tick()) == f"every landing file under {lake.root} is in its ledger"


def test_a_new_file_is_one_request_of_its_feed_and_downstream(lake: Lakeside) -> None:
    lake.deliver("step_trainer/landing/2024/batch-1.json")
    result = lake.tick()
    request = request_of(result)
    key, attempt = request.run_key.rsplit("-", 1)
    assert attempt == "0" and len(key) == 20
    assert json.loads(result.cursor) == {"batch": key, "attempt": 0}
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"step_trainer_landing", "step_trainer_trusted", "machine_learning_curated"} <= selected
    assert not selected & {"customer_landing", "accelerometer_landing", "customer_erasure"}
    assert request.tags["stedi/landing_feeds"] == "step_trainer_landing"
    assert (request.tags["stedi/landing_files"], request.tags["stedi/landing_file_count"]) == ("batch-1.json", "1")
    assert request.tags["stedi/landing_files_gone"] == "0"


def test_the_run_key_is_the_batch(lake: Lakeside) -> None:
    lake.deliver("step_trainer/landing/batch-1.json")
    first = request_of(lake.tick()).run_key
    assert request_of(lake.tick()).run_key == first  # the same files: the same key
    with DagsterInstance.ephemeral() as other:  # whichever instance asks
        assert request_of(Lakeside(lake.root, other).tick()).run_key == first
    path = lake.root / "step_trainer/landing/batch-1.json"
    stat = path.stat()
    lake.deliver("step_trainer/landing/batch-1.json", STEP.replace(b"1655", b"1656"))  # rewritten, same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    rewritten = request_of(lake.tick()).run_key
    assert rewritten != first
    lake.deliver("customer/landing/a.json", b"{}\n")
    assert request_of(lake.tick()).run_key not in (first, rewritten)


def test_a_consumed_file_is_not_new_and_a_deleted_one_is(lake: Lakeside) -> None:
    lake.deliver("step_trainer/landing/batch-1.json")
    delivered = (lake.root / "step_trainer/landing/batch-1.json").stat().st_mtime_ns
    before = request_of(lake.tick()).run_key
    lake.consume_step_trainer()
    assert "is in its ledger" in skip_of(lake.tick())
    (lake.root / "step_trainer/landing/batch-1.json").unlink()
    gone = request_of(lake.tick())
    assert (gone.tags["stedi/landing_files_gone"], gone.tags["stedi/landing_file_count"]) == ("1", "0")
    assert gone.tags["stedi/landing_feeds"] == "step_trainer_landing"
    lake.consume_step_trainer()
    lake.deliver("step_trainer/landing/batch-1.json")  # the first batch's file again, after two versions:
    os.utime(lake.root / "step_trainer/landing/batch-1.json", ns=(delivered, delivered))  # the same fingerprint
    again = lake.tick()
    assert request_of(again).run_key not in (before, gone.run_key)


def test_a_failed_or_finished_run_of_the_batch_makes_it_requested_again_under_a_new_attempt(lake: Lakeside) -> None:
    lake.deliver("customer/landing/a.json", b"{}\n")
    first = lake.tick()
    key = json.loads(first.cursor)["batch"]
    lake.record_run(DagsterRunStatus.FAILURE, request_of(first).run_key)
    second = lake.tick(first.cursor)
    assert request_of(second).run_key == f"{key}-1" and json.loads(second.cursor) == {"batch": key, "attempt": 1}
    lake.record_run(DagsterRunStatus.SUCCESS, f"{key}-1")  # finished, yet the files are still pending
    third = lake.tick(second.cursor)
    assert request_of(third).run_key == f"{key}-2"
    assert request_of(third).tags["stedi/landing_files"] == "a.json"


@pytest.mark.parametrize("status", list(UNFINISHED_RECORDABLE))
def test_no_request_while_a_run_is_unfinished(lake: Lakeside, status: DagsterRunStatus) -> None:
    lake.deliver("accelerometer/landing/a.json", b"{}\n")
    run_id = lake.record_run(status)
    assert skip_of(lake.tick()) == f"run {run_id} has not finished: new files wait for its commits"


@op
def another_teams_op() -> None:
    """A step of another team's job, in the same instance."""


@job
def another_teams_job() -> None:
    another_teams_op()


def test_another_teams_unfinished_runs_do_not_hold_the_lake_back(lake: Lakeside) -> None:
    lake.deliver("accelerometer/landing/a.json", b"{}\n")
    create_run_for_test(lake.instance, "finance_assets", status=STARTED, asset_selection={AssetKey(["finance", "gl"])})
    lake.instance.create_run_for_job(another_teams_job, status=STARTED)  # a whole job, told by its steps
    assert request_of(lake.tick()).tags["stedi/landing_feeds"] == "accelerometer_landing"


@pytest.mark.parametrize("asset", ["customer_erasure", "customer_trusted", "machine_learning_curated"])
def test_a_run_of_any_lake_asset_is_waited_for(lake: Lakeside, asset: str) -> None:
    lake.deliver("accelerometer/landing/a.json", b"{}\n")
    run_id = create_run_for_test(lake.instance, "__ASSET_JOB", status=STARTED, asset_selection={AssetKey(asset)}).run_id
    assert skip_of(lake.tick()) == f"run {run_id} has not finished: new files wait for its commits"


def test_a_whole_job_run_of_the_lake_is_waited_for(lake: Lakeside) -> None:
    lake.deliver("accelerometer/landing/a.json", b"{}\n")
    run_id = lake.instance.create_run_for_job(defs().resolve_implicit_global_asset_job_def(), status=STARTED).run_id
    assert skip_of(lake.tick()) == f"run {run_id} has not finished: new files wait for its commits"


def test_finished_runs_do_not_hold_a_batch_back(lake: Lakeside) -> None:
    for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        lake.record_run(status)
    lake.deliver("accelerometer/landing/a.json", b"{}\n")
    assert request_of(lake.tick()).tags["stedi/landing_feeds"] == "accelerometer_landing"


def test_the_batch_of_the_cursor_waits_for_its_run(lake: Lakeside) -> None:
    lake.deliver("accelerometer/landing/a.json", b"{}\n")
    first = lake.tick()
    key = request_of(first).run_key
    # Its run not recorded yet (the daemon creates it after the tick): the same batch is not requested twice.
    assert skip_of(lake.tick(first.cursor)) == f"the run for batch {key} has not started yet"
    # A cursor of another batch: this one is requested.
    assert request_of(lake.tick(json.dumps({"batch": "0" * 20, "attempt": 4}))).run_key == key


def test_erasure_requests_are_always_pending_and_many_files_are_counted(lake: Lakeside) -> None:
    lake.deliver("customer/erasure/request-1.json", b'{"email": "ann@example.com"}\n')
    for number in range(25):
        lake.deliver(f"customer/landing/part-{number:02d}.json", b"{}\n")
    request = request_of(lake.tick())
    assert request.tags["stedi/landing_feeds"] == "customer_erasure,customer_landing"
    assert request.tags["stedi/landing_file_count"] == "26"
    names = request.tags["stedi/landing_files"].split(",")
    assert len(names) == 21 and names[-1] == "..." and names[0] == "part-00.json"
    assert "ann@example.com" not in json.dumps(request.tags)
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"customer_erasure", "customer_landing", "customer_trusted", "erasure_receipts"} <= selected


def test_a_failing_batch_waits_longer_after_each_failure(lake: Lakeside) -> None:
    waiting = Lakeside(lake.root, lake.instance, retry_waits=(3600, 3600, 3600))
    waiting.deliver("customer/landing/a.json", b"{}\n")
    first = waiting.tick()
    key = json.loads(first.cursor)["batch"]
    run_id = waiting.record_run(DagsterRunStatus.FAILURE, request_of(first).run_key)
    ended = lake.instance.get_run_record_by_id(run_id)
    assert ended is not None
    due = (ended.update_timestamp + timedelta(seconds=3600)).strftime("%Y-%m-%d %H:%M:%S UTC")
    waits = f"batch {key}: run {run_id} failed (1 of 4 attempts): next attempt at {due}"
    assert skip_of(waiting.tick(first.cursor)) == waits
    assert request_of(lake.tick(first.cursor)).run_key == f"{key}-1"  # with no wait, the next attempt starts


def test_after_the_last_retry_a_batch_waits_for_an_operator(lake: Lakeside) -> None:
    lake.deliver("customer/landing/a.json", b"{}\n")
    cursor = lake.fail(lake.tick())
    for attempt in (1, 2, 3):
        result = lake.tick(cursor)
        assert request_of(result).run_key.endswith(f"-{attempt}")
        cursor = lake.fail(result)
    key = json.loads(cursor)["batch"]
    last = lake.instance.get_runs(RunsFilter(tags={"dagster/run_key": f"{key}-3"}))[0].run_id
    waiting = (
        f"batch {key}: 4 runs failed, the last {last}: waiting for an operator to fix the cause, then set this"
        " sensor's cursor to `retry` (or re-execute that run, or run `stedi run`)"
    )
    assert skip_of(lake.tick(cursor)) == waiting
    assert skip_of(lake.tick(cursor)) == waiting  # every tick, until an operator acts: no new run
    retried = lake.tick(OPERATOR_RETRY)
    assert request_of(retried).run_key == f"{key}-4"  # a run key never used before
    assert json.loads(retried.cursor) == {"batch": key, "attempt": 4}
    lake.fail(retried)
    assert skip_of(lake.tick(retried.cursor)).startswith(f"batch {key}: 5 runs failed")


def test_a_new_batch_starts_with_no_failures(lake: Lakeside) -> None:
    lake.deliver("customer/landing/a.json", b"{}\n")
    cursor = lake.fail(lake.tick())
    for _ in range(3):
        cursor = lake.fail(lake.tick(cursor))
    assert "waiting for an operator" in skip_of(lake.tick(cursor))
    lake.deliver("customer/landing/b.json", b"{}\n")  # the operator's fix: another delivery makes another batch
    assert request_of(lake.tick(cursor)).run_key.endswith("-0")


def test_a_run_of_an_older_release_without_the_batch_tag_is_not_repeated(lake: Lakeside) -> None:
    lake.deliver("customer/landing/a.json", b"{}\n")
    first = lake.tick()
    run_key = request_of(first).run_key
    create_run_for_test(lake.instance, tags={"dagster/run_key": run_key}, status=DagsterRunStatus.FAILURE)
    assert request_of(lake.tick(first.cursor)).run_key == run_key.replace("-0", "-1")


def test_the_retry_waits_are_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert retry_waits() == (60, 300, 1800)
    monkeypatch.setenv("STEDI_RETRY_WAITS_SECONDS", " 5, 10 ")
    assert retry_waits() == (5, 10)
    monkeypatch.setenv("STEDI_RETRY_WAITS_SECONDS", "1m,5m")
    with pytest.raises(ValueError) as error:
        retry_waits()
    assert str(error.value) == (
        "STEDI_RETRY_WAITS_SECONDS='1m,5m' is not whole numbers of seconds separated by commas: set it to e.g."
        " 60,300,1800, or unset it for that"
    )
