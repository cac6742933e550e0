"""Session fixtures: one SparkSession for the whole test run (start-up costs seconds: never pay it per test),
and one real S3 API server (moto's) on 127.0.0.1 that the session can already read and write through s3a."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from stedi_assets.services import supervisor
from stedi_assets.spark_settings import s3a_config
from stedi_assets.sql_guard import with_guard
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import TEST_KEY, generate_lake, materialize_lake
from stedi_assets_tests.servers import free_port

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

TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # s3a for the test S3 server: its endpoint and region come from the environment set above.
    **s3a_config({}),
}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 (and Glue) API server on 127.0.0.1, in its own process group; yields its endpoint URL.

    Its own process, not a thread of this one: delta-rs holds the GIL during some calls, which would stall a
    server thread in the same interpreter."""
    port = int(S3_ENDPOINT.rsplit(":", 1)[1])
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    server = supervisor.Service("moto", command, {"PATH": os.environ["PATH"]}, ports=(port,))
    state_dir = tmp_path_factory.mktemp("moto")
    supervisor.launch(server, state_dir)
    yield S3_ENDPOINT
    supervisor.down(state_dir)


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
