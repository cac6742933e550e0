"""Session fixtures: one SparkSession for the whole test run (start-up costs seconds: never pay it per test),
and one real S3 API server (moto's) on 127.0.0.1 that the session can already read and write through s3a."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from moto.server import ThreadedMotoServer
from pyspark.sql import SparkSession

from stedi_assets.cli.services import free_port
from stedi_assets.resources.spark import s3a_config
from stedi_assets.settings import Settings
from stedi_assets.sql_guard import with_guard
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import TEST_KEY, generate_lake, materialize_lake

S3_ENDPOINT = f"http://127.0.0.1:{free_port()}"
S3_SECRET = "moto-secret-that-must-never-be-logged"
# Set before Spark's JVM starts: it inherits them, and s3a's default credential chain reads them from there.
os.environ.update(
    {
        "SPARK_LOCAL_IP": "127.0.0.1",
        "STEDI_PSEUDONYM_KEY": TEST_KEY,
        "AWS_ENDPOINT_URL": S3_ENDPOINT,
        "AWS_ACCESS_KEY_ID": "moto-access-key",
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)
S3_SETTINGS = Settings(lake_root="s3://stedi-test", aws_endpoint_url=S3_ENDPOINT, aws_region="us-east-1")

TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    **s3a_config(S3_SETTINGS),
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = int(S3_ENDPOINT.rsplit(":", 1)[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield S3_ENDPOINT
    server.stop()


@pytest.fixture(scope="session")
def spark(s3_server: str) -> Iterator[SparkSession]:
    builder = SparkSession.builder.appName("stedi-tests")
    # With the SQL command's read-only guard, as its own sessions and `make up`'s Connect server have it.
    for key, value in with_guard(TEST_SPARK_CONF).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def materialized_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated lake with every asset materialized (since policy), for tests that only read the tables:
    a materialization takes most of a minute, so they share this one."""
    root = tmp_path_factory.mktemp("materialized-lake")
    generate_lake(root)
    with DagsterInstance.ephemeral() as instance:
        assert materialize_lake(root, ConsentPolicy.SINCE, instance).success
    return root
