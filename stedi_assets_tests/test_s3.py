"""The same graph on S3 (moto's real S3 API server, through Spark's s3a and delta-rs), compared row for row
with a local run."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from stedi_assets.lake.storage import LakeRootError
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, CUSTOMER_ERASURE
from stedi_assets_tests import lakes
from stedi_assets_tests.conftest import S3_SECRET


@pytest.fixture(scope="module")
def runs(spark: SparkSession, s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> lakes.OnS3:
    """The local and S3 runs of one generated lake (shared with test_erasure, which erases on S3 afterwards)."""
    return lakes.on_s3(tmp_path_factory)


def comparable(frame: pd.DataFrame, root: str) -> pd.DataFrame:
    """Quarantine rows name their run, and lineage names the file under its root: keep what both runs share."""
    frame = frame.drop(columns=["run_id"], errors="ignore")
    if "source_file" in frame:
        assert frame["source_file"].str.startswith(f"{root}/").all()
        frame["source_file"] = frame["source_file"].str.removeprefix(f"{root}/")
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.graph
def test_s3_run_matches_the_local_run_row_for_row(runs: lakes.OnS3) -> None:
    assert runs.local_run.success and runs.s3_run.success
    assert runs.root.startswith("s3://")
    for table in ALL_TABLES.values():
        on_s3 = comparable(runs.s3_tables[table.name], runs.root)
        locally = comparable(runs.local_tables[table.name], str(runs.local))
        pd.testing.assert_frame_equal(on_s3, locally, obj=table.name)
        # Not vacuous: every table has rows (the tombstones have none on a lake without erasure requests).
        assert len(locally) > 0 or table is CUSTOMER_ERASURE, table.name
    prefix = f"lake/{ALL_TABLES['machine_learning_curated'].path}/_delta_log/"
    assert boto3.client("s3").list_objects_v2(Bucket=runs.bucket, Prefix=prefix)["KeyCount"] > 0


@pytest.mark.graph
def test_credentials_never_reach_the_event_log_or_run_config(runs: lakes.OnS3) -> None:
    events = "\n".join(str(entry) for entry in runs.instance.all_logs(runs.s3_run.run_id))
    assert "machine_learning_curated" in events
    assert S3_SECRET not in events
    assert S3_SECRET not in str(runs.instance.get_run_by_id(runs.s3_run.run_id).run_config)


def test_a_missing_bucket_fails_with_one_line_naming_the_root(s3_server: str) -> None:
    with pytest.raises(LakeRootError) as error:
        Lake(root="s3://no-such-bucket/lake").store.check_root()
    assert str(error.value) == (
        "STEDI_LAKE_ROOT / lake.root='s3://no-such-bucket/lake' cannot be read (An error occurred (404) when calling"
        " the HeadBucket operation: Not Found): check the bucket and prefix, and the AWS credentials and region"
        " (AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_REGION)"
    )
