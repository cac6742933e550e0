"""The landing sensor, evaluated with build_sensor_context on a local folder and on moto's S3 server."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from dagster import RunRequest, SensorResult, SkipReason, build_sensor_context

from stedi_assets.definitions import defs
from stedi_assets.sensors import landing_sensor
from stedi_assets.settings import from_env

STEP_AND_DOWNSTREAM = {
    "step_trainer_landing",
    "step_trainer_landing_quarantine",
    "step_trainer_trusted",
    "step_trainer_trusted_quarantine",
    "machine_learning_curated",
}


class Lake:
    """A lake root the test writes files into, locally or on S3."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.sensor = landing_sensor(root, minimum_interval_seconds=5)

    def write(self, relative: str, text: str) -> None:
        if self.root.startswith("s3://"):
            bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
            boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/{relative}", Body=text.encode())
        else:
            path = Path(self.root, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def tick(self, cursor: str | None) -> SensorResult | SkipReason:
        return self.sensor(build_sensor_context(cursor=cursor))


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path: Path) -> Lake:
    if request.param == "local":
        return Lake(str(tmp_path))
    request.getfixturevalue("s3_server")
    bucket = f"sensor-{os.urandom(4).hex()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return Lake(f"s3://{bucket}/lake")


def _request(result: SensorResult | SkipReason) -> RunRequest:
    assert isinstance(result, SensorResult), result
    (request,) = result.run_requests
    return request


def test_nothing_new_is_a_skip(lake: Lake) -> None:
    assert isinstance(lake.tick(None), SkipReason)


def test_a_new_file_requests_one_run_of_its_feed_and_downstream(lake: Lake) -> None:
    lake.write("step_trainer/landing/batch-1.json", '{"sensorReadingTime": 1}\n')
    lake.write("step_trainer/landing/_SUCCESS", "")  # hidden files are not landing data
    result = lake.tick(None)
    request = _request(result)
    assert {key.to_user_string() for key in request.asset_selection} == STEP_AND_DOWNSTREAM
    assert request.tags["stedi/landing_files"] == "batch-1.json"
    assert request.tags["stedi/landing_feeds"] == "step_trainer_landing"
    assert isinstance(lake.tick(result.cursor), SkipReason)  # the same files never trigger again


def test_a_file_rewritten_in_place_triggers_again(lake: Lake) -> None:
    lake.write("step_trainer/landing/batch-1.json", '{"sensorReadingTime": 1}\n')
    first = lake.tick(None)
    lake.write("step_trainer/landing/batch-1.json", '{"sensorReadingTime": 1}\n{"sensorReadingTime": 2}\n')
    second = lake.tick(first.cursor)
    assert _request(second).run_key != _request(first).run_key
    assert isinstance(lake.tick(second.cursor), SkipReason)


def test_changes_in_several_feeds_make_one_run_over_their_union(lake: Lake) -> None:
    lake.write("customer/landing/a.json", "{}\n")
    lake.write("accelerometer/landing/b.json", "{}\n")
    request = _request(lake.tick(None))
    selected = {key.to_user_string() for key in request.asset_selection}
    assert {"customer_landing", "accelerometer_landing", "machine_learning_curated"} <= selected
    assert "step_trainer_landing" not in selected
    assert request.tags["stedi/landing_file_count"] == "2"


def test_the_sensor_is_wired_and_runs_by_default() -> None:
    sensor = defs.resolve_sensor_def("landing_files")
    assert sensor.default_status.value == "RUNNING"
    assert sensor.minimum_interval_seconds == from_env().sensor_interval_seconds
