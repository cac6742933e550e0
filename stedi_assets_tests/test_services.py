"""`make up` / `make down` for real: a Spark Connect server, the daemon and the webserver; the sensor's run of a
new lake is computed on the warm Connect server, and `down` leaves no process of any of them behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterRunStatus

from stedi_assets.cli import services
from stedi_assets.cli.sample import EXPECTED_FILE
from stedi_assets.settings import Settings
from stedi_assets.tables import ALL_TABLES, Zone
from stedi_assets_tests.lakes import generate_lake
from stedi_assets_tests.servers import dagster_servers


def test_sensor_runs_use_the_connect_server_that_up_started(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    generate_lake(lake, customers=20)
    state_dir = tmp_path / "services"
    with dagster_servers(tmp_path / "home", lake, state_dir, connect=True) as servers:
        assert set(services.running(state_dir)) == {"spark-connect", "dagster-daemon", "dagster-webserver"}
        run = servers.wait_for(lambda: next(iter(servers.runs(DagsterRunStatus.SUCCESS)), None), 300, "the load")
        messages = [record.user_message for record in servers.instance.all_logs(run.run_id)]
        assert any("Spark: sc://127.0.0.1:" in message for message in messages)
        pids = services.running(state_dir)
    # dagster_servers ran `down` and checked that state_dir has nothing running; the groups are gone too.
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    expected = json.loads((lake / EXPECTED_FILE).read_text())["tables"]["since"]
    for name, table in ALL_TABLES.items():
        if table.zone in (Zone.TRUSTED, Zone.CURATED):
            assert len(pd.read_parquet(lake / table.path)) == expected[name], name


def test_up_refuses_to_start_over_running_services(tmp_path: Path) -> None:
    state_dir = tmp_path / "services"
    state_dir.mkdir()
    (state_dir / "dagster-daemon.pid").write_text(str(os.getpgrp()))  # a live group: this test's own
    with pytest.raises(services.ServiceError, match="already running"):
        services.up(Settings(), state_dir)
    (state_dir / "dagster-daemon.pid").unlink()
    assert services.down(state_dir) == []


def test_a_connect_server_is_not_started_for_a_remote_connect_master() -> None:
    with pytest.raises(services.ServiceError, match="already names a Connect server"):
        services.spark_connect(Settings(spark_master="sc://spark.example:15002"), 15002)
