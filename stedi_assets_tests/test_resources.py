"""Resources: settings from the environment through EnvVar, overridable per run, each bad value failing the run
at once with one line; the lake root checked before anything is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, EnvVar, asset, build_init_resource_context, materialize

from stedi_assets.definitions import defs
from stedi_assets.lake.storage import LakeRootError, LocalStorage
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.spark_settings import parse_conf, session_config
from stedi_assets.tables import LANDING_TABLES
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.lakes import generate_lake, run_config

REPO = Path(__file__).resolve().parent.parent


def _resource_config(name: str) -> dict:
    """The config a resource gets by default when the code location loads (no run config)."""
    return defs().resources[name].data  # partial resources keep their configured fields here


def test_defaults_come_from_the_environment_as_env_vars_never_as_values(monkeypatch) -> None:
    monkeypatch.setenv("STEDI_LAKE_ROOT", "/data/lake")
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "a-secret")
    monkeypatch.delenv("STEDI_CONSENT_POLICY", raising=False)
    assert _resource_config("lake")["root"] == EnvVar("STEDI_LAKE_ROOT")
    assert _resource_config("privacy")["pseudonym_key"] == EnvVar("STEDI_PSEUDONYM_KEY")
    # Unset variables leave the field's own default: the sample lake, the `since` policy, local Spark.
    assert _resource_config("privacy")["consent_policy"] == "since"
    monkeypatch.delenv("STEDI_LAKE_ROOT")
    assert _resource_config("lake")["root"] == ""


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # The light commands import neither Dagster nor Spark.
        ("stedi_assets, stedi_assets.cli, stedi_assets.sample, stedi_assets.sample.cli", ("dagster", "pyspark")),
        # The Definitions module reads no setting and touches no jar until the code location loads.
        ("stedi_assets.definitions", ("stedi_assets.s3a_jars",)),
    ],
)
def test_importing_reads_no_environment(modules: str, absent: tuple[str, ...], tmp_path: Path) -> None:
    """A fresh interpreter with a poisoned environment: every setting invalid, no S3 credentials."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "STEDI_SPARK_CONF": "not json",
        "STEDI_CONSENT_POLICY": "bogus",
        "STEDI_SENSOR_INTERVAL_SECONDS": "soon",
        "STEDI_LAKE_ROOT": "s3://no-such-bucket/lake",
    }
    code = f"import sys, {modules}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"privacy": {"config": {"consent_policy": "always"}}}, "consent_policy='always' is not one of since, flag: "),
        ({"spark": {"config": {"conf": "spark.x=1"}}}, "spark.conf is not JSON (expecting value at character 0): "),
    ],
)
def test_a_bad_setting_fails_the_run_at_once_in_one_line(override: dict, message: str, tmp_path: Path, spark) -> None:
    generate_lake(tmp_path, customers=5)
    config = run_config(tmp_path)
    for name, value in override.items():
        config["resources"][name]["config"] |= value["config"]
    job = defs().resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    assert not result.success
    errors = [
        e.event_specific_data.error.message for e in result.all_events if getattr(e.event_specific_data, "error", None)
    ]
    assert any(message in error and error.strip().count("\n") == 0 for error in errors), errors
    assert result.get_asset_materialization_events() == []


def test_a_per_run_setting_reaches_the_assets_resources(tmp_path: Path) -> None:
    """The consent policy given as run config (as in the launchpad) is the one an asset's privacy resource has,
    in a real run of the project's resources (no Spark: the asset only reads the setting)."""
    seen: list[ConsentPolicy] = []

    @asset
    def policy_probe(privacy: Privacy) -> None:
        seen.append(privacy.policy)

    generate_lake(tmp_path, customers=1)
    config = run_config(tmp_path, ConsentPolicy.FLAG)
    del config["resources"]["spark"]
    resources = {k: v for k, v in defs().resources.items() if k in ("lake", "privacy")}
    with DagsterInstance.ephemeral() as instance:
        assert materialize([policy_probe], resources=resources, run_config=config, instance=instance).success
    assert seen == [ConsentPolicy.FLAG] != [ConsentPolicy.SINCE]  # not the default


@pytest.mark.graph
def test_a_per_run_setting_reaches_the_run(tmp_path: Path, spark) -> None:
    """The `flag` policy given as run config (as in the launchpad) keeps readings taken before consent. A run of
    accelerometer_trusted and what it reads (the rest of the graph adds nothing here) on a lake of five customers,
    where the policies keep different readings."""
    report = generate_lake(tmp_path, customers=5)["tables"]
    expected = report["flag"]["accelerometer_trusted"]
    assert expected != report["since"]["accelerometer_trusted"]
    graph = defs()
    selection = AssetSelection.assets("accelerometer_trusted").upstream().required_multi_asset_neighbors()
    job = graph.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=selection.resolve(graph.resolve_asset_graph())
    )
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config=run_config(tmp_path, ConsentPolicy.FLAG), instance=instance, raise_on_error=False
        )
    assert result.success
    materializations = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    rows = {  # the zone tables (erasure_receipts writes a file, not a table)
        m.asset_key.to_user_string(): m.metadata["dagster/row_count"].value
        for m in materializations
        if "dagster/row_count" in m.metadata
    }
    assert rows["accelerometer_trusted"] == expected


def test_without_a_key_only_the_sample_lake_runs(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    # Each context closed here (its ephemeral instance disposed), not left to the garbage collector.
    with (
        build_init_resource_context() as context,
        pytest.raises(Exception, match=r"pseudonym_key is empty, and lake .* set STEDI_PSEUDONYM_KEY") as error,
    ):
        Privacy(lake=lake).setup_for_execution(context)
    assert "\n" not in str(error.value)
    with build_init_resource_context() as context:
        Privacy(lake=Lake(root="")).setup_for_execution(context)  # the built-in sample lake


def test_spark_conf_must_be_a_json_object() -> None:
    assert parse_conf('{"spark.executor.memory": "2g"}') == {"spark.executor.memory": "2g"}
    assert parse_conf("") == {}
    for bad in ("[1]", "spark.x=1", '"text"'):
        with pytest.raises(ValueError, match=r"is (not JSON|a JSON .*, not an object)"):
            parse_conf(bad)


def test_s3a_settings_follow_the_root_the_run_uses() -> None:
    local = session_config("local[2]", {}, "/data/lake")
    on_s3 = session_config("local[2]", {}, "s3://bucket/lake")
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in local)
    assert on_s3["spark.hadoop.fs.s3a.path.style.access"] == "true"  # the test session's endpoint is moto's
    connect = session_config("sc://spark.example:15002", {}, "s3://bucket/lake")
    # A Connect client sends session settings only: jars and s3a settings belong to the server's start.
    assert {key for key in connect if not key.startswith("spark.sql.")} == {"spark.remote"}


def test_the_spark_ui_is_off_unless_asked_for() -> None:
    assert session_config("local[2]", {}, "/lake")["spark.ui.enabled"] == "false"
    assert session_config("local[2]", {"spark.ui.enabled": "true"}, "/lake")["spark.ui.enabled"] == "true"


def test_local_runs_broadcast_only_the_joins_the_code_marks() -> None:
    threshold = "spark.sql.autoBroadcastJoinThreshold"
    assert session_config("local[2]", {}, "/lake")[threshold] == "-1"
    assert threshold not in session_config("spark://spark.example:7077", {}, "/lake")  # executors have their own heap
    assert session_config("local[2]", {threshold: "10485760"}, "/lake")[threshold] == "10485760"


def test_a_missing_lake_root_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(LakeRootError) as error:
        Lake(root=str(missing)).store.check_root()
    assert str(missing) in str(error.value) and "\n" not in str(error.value)


def test_a_lake_without_a_landing_folder_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "customer" / "landing").mkdir(parents=True)
    with pytest.raises(LakeRootError) as error:
        Lake(root=str(tmp_path)).store.check_root()
    assert str(error.value) == (
        f"STEDI_LAKE_ROOT / lake.root='{tmp_path}' names a lake without the landing folders accelerometer/landing,"
        " step_trainer/landing: create them, or set it to the folder that holds customer/landing,"
        " accelerometer/landing, step_trainer/landing"
    )
    assert LANDING_TABLES[0].files_path == "customer/landing"


def test_the_local_listing_finds_nested_files_skips_hidden_ones_and_spells_paths_as_pathlib(
    tmp_path: Path, monkeypatch
) -> None:
    landing = tmp_path / "lake" / "customer" / "landing"
    for relative in ["b.json", "a-b/x.json", "a/x.json", "a/deep/y.json", "_staging/s.json", ".upload.json", "a/.z"]:
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        (landing / relative).write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    listed = LocalStorage("./lake").list_files("./lake/customer//landing/")
    # Sorted by URI as S3 lists them; "./" and "//" spelled away, as ledger keys were always spelled.
    assert [f.uri for f in listed] == [
        "lake/customer/landing/a-b/x.json",
        "lake/customer/landing/a/deep/y.json",
        "lake/customer/landing/a/x.json",
        "lake/customer/landing/b.json",
    ]
    assert all(f.size == 3 for f in listed)
    assert LocalStorage("./lake").list_files("./lake/accelerometer/landing") == []
