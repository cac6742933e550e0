"""The same graph on S3 (moto's real S3 API server, through Spark's s3a and delta-rs), compared row for row
with a local run."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from stedi_assets.lake.storage import LakeRootError
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.conftest import S3_SECRET
from stedi_assets_tests.lakes import generate_lake, materialize_lake, table_frame, upload

BUCKET = "stedi-test"


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory):
    local = tmp_path_factory.mktemp("lake")
    generate_lake(local, customers=30)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    upload(local, BUCKET, "lake")
    with DagsterInstance.ephemeral() as instance:
        local_run = materialize_lake(local, ConsentPolicy.SINCE, instance)
        s3_run = materialize_lake(f"s3://{BUCKET}/lake", ConsentPolicy.SINCE, instance)
        yield local, local_run, s3_run, instance


def comparable(frame: pd.DataFrame, root: str) -> pd.DataFrame:
    """Quarantine rows name their run, and lineage names the file under its root: keep what both runs share."""
    frame = frame.drop(columns=["run_id"], errors="ignore")
    if "source_file" in frame:
        assert frame["source_file"].str.startswith(f"{root}/").all()
        frame["source_file"] = frame["source_file"].str.removeprefix(f"{root}/")
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_s3_run_matches_the_local_run_row_for_row(runs) -> None:
    local, local_run, s3_run, _ = runs
    assert local_run.success and s3_run.success
    for table in ALL_TABLES.values():
        on_s3 = comparable(table_frame(f"s3://{BUCKET}/lake", table), f"s3://{BUCKET}/lake")
        locally = comparable(table_frame(local, table), str(local))
        pd.testing.assert_frame_equal(on_s3, locally, obj=table.name)
    objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="lake/machine_learning/curated/_delta_log/")
    assert objects["KeyCount"] > 0


def test_credentials_never_reach_the_event_log_or_run_config(runs) -> None:
    _, _, s3_run, instance = runs
    events = "\n".join(str(entry) for entry in instance.all_logs(s3_run.run_id))
    assert "machine_learning_curated" in events
    assert S3_SECRET not in events
    assert S3_SECRET not in str(instance.get_run_by_id(s3_run.run_id).run_config)


def test_a_missing_bucket_fails_with_one_line_naming_the_root(s3_server: str) -> None:
    with pytest.raises(LakeRootError, match="lake root s3://no-such-bucket/lake is not readable") as error:
        Lake(root="s3://no-such-bucket/lake").store.check_root()
    assert "\n" not in str(error.value)
