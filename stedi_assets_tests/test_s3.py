"""The same graph on S3 (moto's real S3 API server, through Spark's s3a), compared row for row with a local run."""

from __future__ import annotations

import boto3
import pytest
from dagster import DagsterInstance
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from stedi_assets.resources.lake import Lake, LakeRootError
from stedi_assets.resources.spark import spark_resource
from stedi_assets.resources.storage import list_files
from stedi_assets.tables import ALL_TABLES, Zone
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.conftest import S3_SECRET, S3_SETTINGS
from stedi_assets_tests.lakes import generate_lake, materialize_lake, upload

BUCKET = "stedi-test"


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory):
    local = tmp_path_factory.mktemp("lake")
    generate_lake(local, customers=30)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    upload(local, BUCKET, "lake")
    with DagsterInstance.ephemeral() as instance:
        local_run = materialize_lake(local, ConsentPolicy.SINCE, instance)
        s3_run = materialize_lake(f"s3://{BUCKET}/lake", ConsentPolicy.SINCE, instance, S3_SETTINGS)
        yield local, local_run, s3_run, instance


def _comparable(frame: DataFrame, root: str) -> DataFrame:
    """Quarantine rows name their file and run: keep the file relative to the lake root, drop the run."""
    if "source_file" in frame.columns:
        frame = frame.withColumn("source_file", F.regexp_replace("source_file", f"^{root}/", ""))
    return frame.drop("run_id")


def test_s3_run_matches_the_local_run_row_for_row(runs, spark: SparkSession) -> None:
    local, local_run, s3_run, _ = runs
    assert local_run.success and s3_run.success
    for table in ALL_TABLES.values():
        if table.zone is Zone.LANDING:
            continue
        on_s3 = spark.read.parquet(f"s3a://{BUCKET}/lake/{table.path}")
        locally = spark.read.parquet(f"{local}/{table.path}")
        assertDataFrameEqual(
            _comparable(on_s3, f"s3a://{BUCKET}/lake"), _comparable(locally, f"file:{local}"), checkRowOrder=False
        )
    s3_outputs = list_files(f"s3://{BUCKET}/lake/machine_learning/curated")
    assert s3_outputs and all(path.endswith(".parquet") for path in s3_outputs)


def test_credentials_never_reach_the_event_log_or_run_config(runs) -> None:
    _, _, s3_run, instance = runs
    events = "\n".join(str(entry) for entry in instance.all_logs(s3_run.run_id))
    assert "machine_learning_curated" in events
    assert S3_SECRET not in events
    assert S3_SECRET not in str(instance.get_run_by_id(s3_run.run_id).run_config)


def test_a_missing_bucket_fails_with_one_line_naming_the_root(s3_server: str) -> None:
    with pytest.raises(LakeRootError, match="lake root s3://no-such-bucket/lake is not readable") as error:
        Lake(root="s3://no-such-bucket/lake", spark=spark_resource(S3_SETTINGS)).check_root()
    assert "\n" not in str(error.value)
