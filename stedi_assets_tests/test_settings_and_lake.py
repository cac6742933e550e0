"""Configuration from the environment, and a clear error for a lake root that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from stedi_assets.resources.lake import Lake, LakeRootError
from stedi_assets.resources.spark import spark_resource
from stedi_assets.settings import SAMPLE_LAKE, Settings, SettingsError, from_env
from stedi_assets.transforms.readings import ConsentPolicy


def test_defaults_use_the_sample_lake_and_the_since_policy() -> None:
    settings = from_env({})
    assert settings.uses_sample_lake and settings.lake_root_or_sample == str(SAMPLE_LAKE)
    assert settings.consent_policy is ConsentPolicy.SINCE
    assert settings.spark_master == "local[*]"


def test_environment_values_are_read() -> None:
    settings = from_env(
        {
            "STEDI_LAKE_ROOT": "/data/lake/",
            "STEDI_CONSENT_POLICY": "FLAG",
            "STEDI_SPARK_MASTER": "spark://host:7077",
            "STEDI_SPARK_CONF": '{"spark.executor.memory": "2g"}',
        }
    )
    assert settings == Settings(
        lake_root="/data/lake",
        consent_policy=ConsentPolicy.FLAG,
        spark_master="spark://host:7077",
        spark_conf={"spark.executor.memory": "2g"},
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STEDI_CONSENT_POLICY": "always"}, "STEDI_CONSENT_POLICY='always' is not one of: since, flag"),
        ({"STEDI_SPARK_CONF": "spark.x=1"}, "STEDI_SPARK_CONF must be a JSON object"),
    ],
)
def test_bad_settings_fail_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env(env)


def _lake(root: Path) -> Lake:
    return Lake(root=str(root), spark=spark_resource(Settings()))


def test_a_missing_lake_root_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(LakeRootError) as error:
        _lake(missing).check_root()
    assert str(missing) in str(error.value) and "\n" not in str(error.value)


def test_a_lake_without_a_landing_folder_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "customer" / "landing").mkdir(parents=True)
    with pytest.raises(LakeRootError, match=f"{tmp_path}/accelerometer/landing"):
        _lake(tmp_path).check_root()
