"""Table versions are atomic: a run killed while it writes, two runs at once, and the S3 server going away
mid-run each leave every table at a complete version, and the next run gives the right tables."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from dagster import AssetSelection, DagsterInstance
from deltalake import DeltaTable

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.lake.storage import storage_for
from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.services import stack
from stedi_assets.tables import ALL_TABLES, CUSTOMER_ERASURE, ZoneTable
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import tiers
from stedi_assets_tests.lakes import (
    SUBPROCESS_SPARK,
    generate_lake,
    generated_lake_on_s3,
    materialize_lake,
    table_location,
)
from stedi_assets_tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent
STEDI = str(Path(sys.executable).parent / "stedi")
pytestmark = pytest.mark.graph
# The smallest generated lake with rows in every table (step_trainer_trusted's quarantine too): what a run
# writes, its kill and its next run must then account for, table by table.
CUSTOMERS, SEED = 6, 5


def start_run(lake: Path | str, home: Path, **env: str) -> subprocess.Popen:
    """`stedi run` in a process group of its own (so that it can be killed whole, JVM included)."""
    tiers.require("graph")
    environment = {**os.environ, **stack.dagster_home(home), **SUBPROCESS_SPARK, "STEDI_LAKE_ROOT": str(lake), **env}
    return subprocess.Popen(
        [STEDI, "run", "--quiet"],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def versions(root: Path | str) -> dict[str, int | None]:
    """Each table's current version (None: never committed)."""
    found = {}
    for name, table in ALL_TABLES.items():
        location = table_location(root, table)
        options = storage_for(location).delta_options()
        found[name] = DeltaTable(location, storage_options=options).version() if _is_table(location) else None
    return found


def _is_table(location: str) -> bool:
    return DeltaTable.is_deltatable(location, storage_options=storage_for(location).delta_options())


def assert_complete(root: Path | str) -> dict[str, int]:
    """Every committed table reads whole at its current version: as many rows as its commits say it holds."""
    rows = {}
    for name, table in ALL_TABLES.items():
        location = table_location(root, table)
        if not _is_table(location):
            continue
        delta = DeltaTable(location, storage_options=storage_for(location).delta_options())
        frame = delta.to_pandas()
        declared = pa.table(delta.get_add_actions(flatten=True))["num_records"].to_pylist()
        assert len(frame) == sum(declared), name
        assert list(frame.columns) == table.columns, name
        rows[name] = len(frame)
    return rows


def expected_counts(lake: Path) -> dict[str, int]:
    report = json.loads((lake / EXPECTED_FILE).read_text())
    # A generated lake has no erasure requests: the tombstone table is committed empty.
    erasure = {CUSTOMER_ERASURE.name: 0}
    return {**erasure, **report["landing_rows"], **report["quarantined_rows"], **report["tables"]["since"]}


def feed_and_downstream(feed: ZoneTable) -> list[str]:
    """What the sensor runs for new files of one feed."""
    selection = AssetSelection.assets(feed.name).downstream().required_multi_asset_neighbors()
    return [key.to_user_string() for key in selection.resolve(ZONE_ASSETS)]


def test_a_run_killed_while_it_writes_leaves_complete_versions(spark, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    generate_lake(lake, customers=CUSTOMERS, seed=SEED)
    staging = lake / ALL_TABLES["step_trainer_trusted"].path / "data"
    run = start_run(lake, tmp_path / "home")
    try:
        # Spark is writing step_trainer_trusted's files (its job's _temporary folder exists): not committed yet.
        wait_until(lambda: any(staging.glob("*/_temporary")), 600, "step_trainer_trusted's write", run)
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        run.wait(timeout=60)
    committed = versions(lake)
    assert committed["step_trainer_trusted"] is None and committed["machine_learning_curated"] is None
    assert committed["customer_curated"] == 0 and committed["step_trainer_trusted_quarantine"] == 0
    assert any(staging.glob("*/_temporary")), "the kill left the write Spark had started"
    before = assert_complete(lake)
    expected = expected_counts(lake)
    assert before == {name: expected[name] for name in before}

    # What the sensor does next: one feed and its downstream.
    with DagsterInstance.ephemeral() as instance:
        selection = feed_and_downstream(ALL_TABLES["step_trainer_landing"])
        assert materialize_lake(lake, ConsentPolicy.SINCE, instance, selection=selection).success
    assert assert_complete(lake) == expected
    assert versions(lake)["step_trainer_landing"] == 0  # nothing new: no new landing version


def test_two_runs_at_once_never_double_a_table(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    generate_lake(lake, customers=CUSTOMERS, seed=SEED)
    runs = [start_run(lake, tmp_path / f"home-{i}", STEDI_SPARK_MASTER="local[1]") for i in range(2)]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes, outputs
    for code, output in zip(codes, outputs, strict=True):
        if code:
            assert "another run committed version" in output and "nothing was committed" in output, output[-3000:]
    assert assert_complete(lake) == expected_counts(lake)


class Outage:
    """A TCP relay between the lake's clients and moto's S3 server: stopping it is the S3 endpoint going away
    (connections refused) while the server keeps its data, as a real outage does."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.open: set[socket.socket] = set()

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        assert self.listener is not None
        self.listener.close()
        for sock in list(self.open):
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def relay(s3_server: str) -> Iterator[Outage]:
    outage = Outage(int(s3_server.rsplit(":", 1)[1]))
    outage.start()
    try:
        yield outage
    finally:
        outage.stop()


def test_the_s3_server_going_away_mid_run_fails_clearly_and_the_next_run_is_right(
    spark, s3_server: str, tmp_path: Path
) -> None:
    local = tmp_path / "landing"
    # Not the smallest lake: S3 lists arrivals in whole seconds, so files uploaded within one second tie, and
    # exact ties between records are decided by arrival. This lake's tables still come out as the generator
    # counts them; those of 6 customers of seed 5 do not.
    root = generated_lake_on_s3(local, "outage", customers=20, seed=11)
    bucket = root.split("/")[2]
    client = boto3.client("s3")
    first_trusted = f"lake/{ALL_TABLES['customer_trusted'].path}/_delta_log/"
    with relay(s3_server) as outage:
        run = start_run(root, tmp_path / "home", AWS_ENDPOINT_URL=f"http://127.0.0.1:{outage.port}")
        try:
            wait_until(
                lambda: client.list_objects_v2(Bucket=bucket, Prefix=first_trusted).get("KeyCount", 0) > 0,
                600,
                "customer_trusted's first commit",
                run,
            )
            outage.stop()
            output, _ = run.communicate(timeout=900)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0
    assert "FAILED" in output and "error:" in output, output[-3000:]
    committed = versions(root)
    assert committed["customer_trusted"] == 0 and committed["machine_learning_curated"] is None
    before = assert_complete(root)
    expected = expected_counts(local)
    assert before == {name: expected[name] for name in before}
    with DagsterInstance.ephemeral() as instance:
        assert materialize_lake(root, ConsentPolicy.SINCE, instance).success
    assert assert_complete(root) == expected
