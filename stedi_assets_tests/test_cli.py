"""`dagster asset materialize -m stedi_assets --select '*'`, run for real as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets_tests import lakes
from stedi_assets_tests.lakes import dagster_materialize, duckdb_source


@pytest.mark.graph
def test_cli_materializes_everything(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The `flag` policy from the environment (the `since` one is the default every other run uses); the same run
    is searched for its pseudonym key by test_secrets."""
    run = lakes.cli_run(tmp_path_factory)
    assert run.done.returncode == 0, run.done.stderr[-3000:].decode(errors="replace")
    tables = json.loads((run.lake / EXPECTED_FILE).read_text())["tables"]
    expected = tables[run.policy.value]["machine_learning_curated"]
    # Not vacuous: the lake pairs readings, and the policies give it different training tables.
    assert 0 < expected != tables["since"]["machine_learning_curated"]
    source = duckdb_source(run.lake, MACHINE_LEARNING_CURATED)
    assert duckdb.sql(f"select count(*) from {source}").fetchall()[0][0] == expected


def test_cli_with_a_missing_lake_root_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-lake"
    done = dagster_materialize(missing, tmp_path / "home")
    assert done.returncode != 0
    assert f"lake root {missing} does not exist" in (done.stdout + done.stderr).decode(errors="replace")
