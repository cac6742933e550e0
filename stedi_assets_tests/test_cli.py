"""`dagster asset materialize -m stedi_assets --select '*'`, run for real as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from stedi_assets.cli import run
from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets_tests import lakes
from stedi_assets_tests.lakes import dagster_materialize, duckdb_source, empty_lake


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
    assert f"STEDI_LAKE_ROOT / lake.root='{missing}' names no folder" in (done.stdout + done.stderr).decode(
        errors="replace"
    )


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "STEDI_CONSENT_POLICY",
            "bogus",
            "STEDI_CONSENT_POLICY / privacy.consent_policy='bogus' is not one of since, flag: set it to since (readings"
            " from research consent on, the default) or flag (every reading of a consenting customer)",
        ),
        (
            "STEDI_SPARK_CONF",
            "spark.driver.memory=8g",
            "STEDI_SPARK_CONF / spark.conf is not JSON (expecting value at character 0): set it to a JSON object of"
            ' Spark settings, e.g. {"spark.driver.memory": "4g"}, or leave it empty',
        ),
        (
            "STEDI_LAKE_ROOT",
            "/nonexistent",
            "STEDI_LAKE_ROOT / lake.root='/nonexistent' names no folder: set it to your lake's folder or"
            " s3://bucket/prefix, or unset it for the built-in sample lake (`stedi sample` generates it)",
        ),
        (
            "STEDI_SENSOR_INTERVAL_SECONDS",
            "soon",
            "STEDI_SENSOR_INTERVAL_SECONDS='soon' is not a whole number of seconds: set it to one, e.g. 30, or unset it"
            " for 30",
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_status_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    value: str,
    message: str,
) -> None:
    empty_lake(tmp_path)
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv(setting, value)
    assert run.main(["--quiet"], prog="stedi run") == 2
    assert capsys.readouterr() == ("", f"stedi run: {message}\n")


def test_a_missing_pseudonym_key_on_a_users_lake_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty_lake(tmp_path)
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(tmp_path))
    monkeypatch.delenv("STEDI_PSEUDONYM_KEY")
    assert run.main(["--quiet"], prog="stedi run") == 2
    expected = (
        f"stedi run: STEDI_PSEUDONYM_KEY / privacy.pseudonym_key is empty, and lake {tmp_path} is not the built-in"
        " sample lake: set STEDI_PSEUDONYM_KEY to a secret of your own (the development key is allowed only on the"
        " sample lake)\n"
    )
    assert capsys.readouterr() == ("", expected)
