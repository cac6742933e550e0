"""The landing sensor asks the ledger: evaluated with build_sensor_context on a local folder and on moto's S3,
with real runs of the landing assets consuming files in between."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunRequest, SensorResult, SkipReason, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from stedi_assets.definitions import defs, sensor_interval
from stedi_assets.resources.lake import Lake
from stedi_assets.sensors import landing_sensor
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import materialize_lake

STEP_AND_DOWNSTREAM = {
    "step_trainer_landing",
    "step_trainer_landing_quarantine",
    "step_trainer_trusted",
    "step_trainer_trusted_quarantine",
    "machine_learning_curated",
    "erasure_receipts",
}
STEP = (
    '{"sensorReadingTime": 1655564444000, "serialNumber": "11111111-1111-4111-8111-111111111111",'
    ' "distanceFromObject": 1}\n'
)


class Feeds:
    """A lake root the test delivers files into, locally or on S3, with the sensor evaluated against it."""

    def __init__(self, root: str, instance: DagsterInstance) -> None:
        self.root, self.instance = root, instance
        self.sensor = landing_sensor(minimum_interval_seconds=5, retry_waits=(0, 0, 0))
        for feed in ("customer", "accelerometer", "step_trainer"):
            self.write(f"{feed}/landing/_keep", "")  # the folders exist; hidden names are not deliveries

    def write(self, relative: str, text: str) -> None:
        if self.root.startswith("s3://"):
            bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
            boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/{relative}", Body=text.encode())
        else:
            path = Path(self.root, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def delete(self, relative: str) -> None:
        if self.root.startswith("s3://"):
            bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
            boto3.client("s3").delete_object(Bucket=bucket, Key=f"{prefix}/{relative}")
        else:
            Path(self.root, relative).unlink()

    def tick(self, cursor: str | None = None) -> SensorResult | SkipReason:
        context = build_sensor_context(instance=self.instance, cursor=cursor, resources={"lake": Lake(root=self.root)})
        return self.sensor(context)

    def consume(self, *feeds: str) -> None:
        """A real run of the feeds' landing assets (tests calling it are marked graph): their ledgers take up what
        was delivered."""
        names = [f"{feed}_landing" for feed in feeds]
        selection = [*names, *(f"{name}_quarantine" for name in names)]
        assert materialize_lake(self.root, ConsentPolicy.SINCE, self.instance, selection=selection).success


def _request(result: SensorResult | SkipReason) -> RunRequest:
    assert isinstance(result, SensorResult), result
    (request,) = result.run_requests
    return request


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def feeds(request, tmp_path: Path, spark) -> Feeds:
    instance = DagsterInstance.ephemeral()
    if request.param == "local":
        yield Feeds(str(tmp_path), instance)
    else:
        request.getfixturevalue("s3_server")
        bucket = f"sensor-{os.urandom(4).hex()}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield Feeds(f"s3://{bucket}/lake", instance)
    instance.dispose()


def test_nothing_new_is_a_skip(feeds: Feeds) -> None:
    assert isinstance(feeds.tick(), SkipReason)


@pytest.mark.graph
def test_a_new_file_requests_its_feed_and_downstream_until_a_run_consumes_it(feeds: Feeds) -> None:
    feeds.write("step_trainer/landing/batch-1.json", STEP)
    feeds.write("step_trainer/landing/.batch-2.json.uploading", STEP)  # hidden names are not deliveries
    result = feeds.tick()
    request = _request(result)
    assert {key.to_user_string() for key in request.asset_selection} == STEP_AND_DOWNSTREAM
    assert request.tags["stedi/landing_files"] == "batch-1.json"
    assert request.tags["stedi/landing_feeds"] == "step_trainer_landing"
    # Until a run consumes it, the same batch is not requested again while its run has not finished...
    create_run_for_test(feeds.instance, tags={"dagster/run_key": request.run_key}, status=DagsterRunStatus.STARTED)
    assert "has not finished" in feeds.tick(result.cursor).skip_message
    feeds.consume("step_trainer")
    assert isinstance(feeds.tick(result.cursor), SkipReason)  # ... and once consumed, never again


def test_a_failed_runs_files_are_requested_again_under_a_new_key(feeds: Feeds) -> None:
    feeds.write("customer/landing/a.json", "{}\n")
    first = feeds.tick()
    tags = {**_request(first).tags, "dagster/run_key": _request(first).run_key}  # as the daemon records it
    create_run_for_test(feeds.instance, tags=tags, status=DagsterRunStatus.FAILURE)
    again = feeds.tick(first.cursor)
    assert _request(again).run_key != _request(first).run_key
    assert _request(again).tags["stedi/landing_files"] == "a.json"


@pytest.mark.graph
def test_rewritten_and_deleted_files_trigger_and_keys_never_repeat(feeds: Feeds) -> None:
    feeds.write("step_trainer/landing/batch-1.json", STEP)
    first = feeds.tick()
    feeds.consume("step_trainer")
    feeds.write("step_trainer/landing/batch-1.json", STEP + STEP)  # rewritten in place
    rewritten = feeds.tick(first.cursor)
    assert _request(rewritten).tags["stedi/landing_files"] == "batch-1.json"
    feeds.consume("step_trainer")
    feeds.delete("step_trainer/landing/batch-1.json")
    deleted = feeds.tick(rewritten.cursor)
    assert _request(deleted).tags["stedi/landing_files_gone"] == "1"
    feeds.consume("step_trainer")
    # The first content delivered again: the same files as the first batch, but after other versions.
    feeds.write("step_trainer/landing/batch-1.json", STEP)
    again = feeds.tick(deleted.cursor)
    keys = [_request(r).run_key for r in (first, rewritten, deleted, again)]
    assert len(set(keys)) == 4


def test_no_batch_is_requested_while_a_run_is_unfinished(feeds: Feeds) -> None:
    feeds.write("step_trainer/landing/batch-1.json", STEP)
    first = feeds.tick()
    create_run_for_test(
        feeds.instance, tags={"dagster/run_key": _request(first).run_key}, status=DagsterRunStatus.STARTED
    )
    # The running batch is not the pending one any more (files arrive, the run commits a feed): still no request.
    feeds.write("customer/landing/a.json", "{}\n")
    assert "has not finished" in feeds.tick(first.cursor).skip_message


@pytest.mark.graph
def test_a_run_with_nothing_new_reports_the_landing_tables_unchanged(spark, tmp_path: Path) -> None:
    feeds = Feeds(str(tmp_path), DagsterInstance.ephemeral())
    feeds.write("step_trainer/landing/batch-1.json", STEP)
    feeds.consume("step_trainer")
    feeds.consume("step_trainer")  # nothing new: every check of the landing asset still reports


def test_changes_in_several_feeds_make_one_run_over_their_union(feeds: Feeds) -> None:
    feeds.write("customer/landing/a.json", "{}\n")
    feeds.write("accelerometer/landing/b.json", "{}\n")
    request = _request(feeds.tick())
    selected = {key.to_user_string() for key in request.asset_selection}
    assert {"customer_landing", "accelerometer_landing", "machine_learning_curated"} <= selected
    assert "step_trainer_landing" not in selected
    assert request.tags["stedi/landing_file_count"] == "2"


def test_the_cursor_stays_small_at_any_number_of_files(tmp_path: Path) -> None:
    feeds = Feeds(str(tmp_path), DagsterInstance.ephemeral())
    sizes = []
    for count in (1, 300):
        for i in range(count):
            feeds.write(f"accelerometer/landing/part-{count}-{i}.json", "{}\n")
        sizes.append(len(_request_cursor(feeds.tick())))
    assert sizes[0] == sizes[1] < 100
    shutil.rmtree(tmp_path / "accelerometer")


def _request_cursor(result: SensorResult | SkipReason) -> str:
    assert isinstance(result, SensorResult)
    return result.cursor


def test_the_sensor_is_wired_and_runs_by_default() -> None:
    sensor = defs().resolve_sensor_def("landing_files")
    assert sensor.default_status.value == "RUNNING"
    assert sensor.minimum_interval_seconds == sensor_interval()
    assert "lake" in sensor.required_resource_keys
