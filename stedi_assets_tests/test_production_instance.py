"""dagster.production.yaml, the instance of a shared deployment: it loads as Dagster loads an instance's settings,
each part is valid for the class that reads it, and its compute logs reach S3 through dagster-aws (on moto)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.compute_log_manager import ComputeIOType, ComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "from-the-secret-store",
    "DAGSTER_COMPUTE_LOG_BUCKET": "stedi-compute-logs",
}


@pytest.fixture
def instance_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The production settings as Dagster loads them from $DAGSTER_HOME/dagster.yaml, with its variables set."""
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    shutil.copy(REPO / "dagster.production.yaml", tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    return dict(config)


def rehydrated(section: dict[str, Any]) -> object:
    """The object a class-based section of the settings makes (its config checked against the class's schema)."""
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"])).rehydrate()


def test_the_storage_is_postgres_from_the_environment(instance_config: dict[str, Any]) -> None:
    postgres = instance_config["storage"]["postgres"]
    resolved = process_config(DagsterPostgresStorage.config_type(), postgres)
    assert resolved.success, resolved.errors
    db = resolved.value["postgres_db"]
    expected = {"hostname": "db.internal", "port": 5432, "db_name": "dagster", "username": "dagster"}
    assert {key: db[key] for key in expected} == expected
    assert db["password"] == "from-the-secret-store"  # from the environment: no secret in the file
    assert "from-the-secret-store" not in (REPO / "dagster.production.yaml").read_text()


def test_the_lake_limits_only_its_own_runs(instance_config: dict[str, Any]) -> None:
    coordinator = instance_config["run_coordinator"]
    assert "max_concurrent_runs" not in coordinator["config"]  # other teams' runs are not limited
    assert coordinator["config"]["tag_concurrency_limits"] == [{"key": "stedi/trigger", "limit": 1}]
    rehydrated(coordinator)


def test_compute_logs_reach_s3_through_dagster_aws(
    instance_config: dict[str, Any], s3_server: str, tmp_path: Path
) -> None:
    boto3.client("s3").create_bucket(Bucket=SETTINGS["DAGSTER_COMPUTE_LOG_BUCKET"])
    section = instance_config["compute_logs"]
    # Its local copies (the system's temporary folder by default) in this test's own folder.
    manager = rehydrated({**section, "config": {**section["config"], "local_dir": str(tmp_path / "logs")}})
    assert isinstance(manager, ComputeLogManager)
    log_key = ["run-1", "compute_logs", "customer_trusted"]
    with manager.open_log_stream(log_key, ComputeIOType.STDOUT) as stream:
        assert stream is not None
        stream.write("customer_trusted: 722 rows\n")
    stored = boto3.client("s3").get_object(
        Bucket=SETTINGS["DAGSTER_COMPUTE_LOG_BUCKET"],
        Key="dagster/compute-logs/storage/run-1/compute_logs/customer_trusted.out",
    )
    assert stored["Body"].read() == b"customer_trusted: 722 rows\n"
    # The local copy is gone once uploaded: what the UI shows comes from S3.
    assert manager.get_log_data(log_key).stdout == b"customer_trusted: 722 rows\n"
