"""Session fixtures and the test tiers.

- The test environment (pseudonym key, SPARK_LOCAL_IP, AWS_* for the test S3 server) is set by a session
  fixture for the run and undone at its end; importing this module changes nothing.
- One SparkSession for the whole run (start-up costs seconds: never pay it per test), started when a test
  first asks for `spark`, with the read-only guard of `stedi sql` loaded (it costs no measurable start-up time).
- One real S3 API server (moto's) on 127.0.0.1, started when a test first asks for `s3_server`. Its port is
  chosen here, so the endpoint is in the environment before Spark starts: s3a reads it when a path is first
  opened, so the session works with the server whenever it starts, and without it when no test needs it.
- Tiers (pyproject.toml's markers): a test is marked by the fixtures it uses (`spark`, `s3_server` -> s3,
  `materialized_lake` -> graph); `graph`, `services` and `browser` are also marked in the test files. The running
  test's markers are recorded in `tiers`, whose `require` the helpers that run the graph or start servers call,
  and a test that uses a fixture or starts Spark without its marker fails: `make check`'s selection cannot lie.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from stedi_assets.services import supervisor
from stedi_assets.spark_settings import s3a_config, without_secrets
from stedi_assets.sql_guard import with_guard
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import lakes, tiers
from stedi_assets_tests.lakes import TEST_KEY
from stedi_assets_tests.servers import QUICK_JVM, free_port

S3_PORT = free_port()
S3_ENDPOINT = f"http://127.0.0.1:{S3_PORT}"
S3_SECRET = "moto-secret-that-must-never-be-logged"
# Set before Spark's JVM starts: it inherits them, and s3a's default credential chain reads them from there.
TEST_ENVIRONMENT = {
    "SPARK_LOCAL_IP": "127.0.0.1",
    "STEDI_PSEUDONYM_KEY": TEST_KEY,
    "AWS_ENDPOINT_URL": S3_ENDPOINT,
    "AWS_ACCESS_KEY_ID": "moto-access-key",
    "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    "AWS_REGION": "us-east-1",
}
UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE")  # the developer's own AWS session must not reach the test server

TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # Only the JVM's quick compiler (C1): the tests run many small, different plans, whose C2 compilations cost
    # more than they save (the transform tests took about half the CPU time with C1 only); results are the same.
    "spark.driver.extraJavaOptions": QUICK_JVM,
    # The tests build the same plan shapes again and again on other literal rows: generated classes named without
    # their stage's id, and a cache that holds them all (Spark keeps 100), are compiled once, not per query (the
    # transform tests compiled 1,533 classes, 385 so; about 7% of their JVM CPU time). Plans and results are the same.
    "spark.sql.codegen.useIdInClassName": "false",
    "spark.sql.codegen.cache.maxEntries": "4000",
}
# The marker a test gets from each fixture it uses, directly or through other fixtures.
FIXTURE_MARKERS = {"spark": "spark", "s3_server": "s3", "materialized_lake": "graph"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Records the test in `tiers` before any of its fixtures is set up (session and module fixtures are set
    up before function fixtures, so a fixture could not), until its last teardown is done."""
    tiers.current = tiers.Running(item.nodeid, frozenset(marker.name for marker in item.iter_markers()))
    try:
        return (yield)
    finally:
        tiers.current = None


_spark_started_here = False


@pytest.fixture(autouse=True)
def _tiers_hold(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: the fixtures it used (requested by name at run time too) and a Spark it started
    without the `spark` fixture are held to its markers."""
    yield
    running = tiers.current
    markers = running.markers if running is not None else frozenset()
    for fixture in sorted(set(request.fixturenames) & FIXTURE_MARKERS.keys()):
        if FIXTURE_MARKERS[fixture] not in markers:
            pytest.fail(
                f"{request.node.nodeid} uses the {fixture} fixture: mark it {FIXTURE_MARKERS[fixture]}",
                pytrace=False,
            )
    if SparkContext._active_spark_context is not None and not _spark_started_here:
        pytest.fail(f"{request.node.nodeid} started Spark without the spark fixture: ask for it", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def test_environment() -> Iterator[dict[str, str]]:
    """The run's environment (see TEST_ENVIRONMENT), restored when the run ends."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_ENVIRONMENT.items():
            patch.setenv(name, value)
        for name in UNSET:
            patch.delenv(name, raising=False)
        yield TEST_ENVIRONMENT


@pytest.fixture(scope="session")
def s3_server(test_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 (and Glue) API server on 127.0.0.1, in its own process group; yields its endpoint URL.

    Its own process, not a thread of this one: delta-rs holds the GIL during some calls, which would stall a
    server thread in the same interpreter."""
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(S3_PORT)]
    server = supervisor.Service("moto", command, {"PATH": os.environ["PATH"]}, ports=(S3_PORT,))
    state_dir = tmp_path_factory.mktemp("moto")
    supervisor.launch(server, state_dir)
    yield S3_ENDPOINT
    supervisor.down(state_dir)


@pytest.fixture(scope="session")
def spark(test_environment: dict[str, str]) -> Iterator[SparkSession]:
    """The run's one SparkSession: local[2], two shuffle partitions, UI off, s3a for the test S3 server, and the
    read-only guard of `stedi sql`, as its own sessions and `make up`'s Connect server have it (loading it costs
    no measurable start-up time: about 16 s of JVM CPU time to start and run a first job, with or without it)."""
    global _spark_started_here
    if SparkContext._active_spark_context is not None:
        raise RuntimeError("Spark was started before the spark fixture (by a test without it): one session per run")
    builder = SparkSession.builder.appName("stedi-tests")
    # s3a's settings read the endpoint and region from the environment set above.
    for key, value in with_guard({**TEST_SPARK_CONF, **s3a_config({})}).items():
        builder = builder.config(key, value)
    with without_secrets():  # as a run's session starts: the pseudonym key stays out of the JVM's environment
        session = builder.getOrCreate()
    _spark_started_here = True
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def materialized_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated lake with every asset materialized (since policy), for tests that only read the tables:
    a materialization takes most of a minute, so they share this one (test_graph's `since` run too)."""
    tiers.require("graph")
    return lakes.materialized(ConsentPolicy.SINCE, tmp_path_factory).root
