"""`dagster asset materialize -m stedi_assets --select '*'`, run for real as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets_tests.lakes import duckdb_source, generate_lake

REPO = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).parent / "dagster"


def _materialize(lake_root: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {**os.environ, "STEDI_LAKE_ROOT": str(lake_root), "DAGSTER_HOME": str(home), **env}
    command = [str(DAGSTER), "asset", "materialize", "-m", "stedi_assets", "--select", "*"]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("policy", ["flag"])
def test_cli_materializes_everything(tmp_path: Path, policy: str) -> None:
    lake = tmp_path / "lake"
    generate_lake(lake, customers=20)
    done = _materialize(lake, tmp_path / "home", STEDI_CONSENT_POLICY=policy)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = json.loads((lake / EXPECTED_FILE).read_text())["tables"][policy]
    source = duckdb_source(lake, MACHINE_LEARNING_CURATED)
    assert duckdb.sql(f"select count(*) from {source}").fetchall()[0][0] == expected["machine_learning_curated"]


def test_cli_with_a_missing_lake_root_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-lake"
    done = _materialize(missing, tmp_path / "home")
    assert done.returncode != 0
    assert f"lake root {missing} does not exist" in done.stdout + done.stderr
