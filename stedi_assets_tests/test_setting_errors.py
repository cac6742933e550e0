"""A bad setting is one line, `stedi <command>: <setting>=<value or its kind> <what is wrong>: <how to fix>`, on
stderr, and exit status 2, with no stack trace unless --debug or STEDI_DEBUG=1; nothing starts (no run, no Spark,
no service). A launchpad run with a bad field fails when its resources are set up, in the same one line.

Each test asserts the whole output. The commands run in this process (`main(argv, prog=...)`), except the two that
show what a user's terminal gets (the trace, or not).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import DagsterInvalidConfigError, DagsterResourceFunctionError, build_resources, validate_run_config
from dagster._core.log_manager import DagsterLogManager

from stedi_assets.cli import catalog, run, services, settings, sql
from stedi_assets.definitions import defs
from stedi_assets.resources.privacy import PrivacySettingError
from stedi_assets.services import stack, supervisor
from stedi_assets.spark_settings import SparkSettingError
from stedi_assets_tests.lakes import empty_lake

STEDI = Path(sys.executable).parent / "stedi"
# The fixes, as each line ends.
LAKE_FIX = (
    "set it to your lake's folder or s3://bucket/prefix, or unset it for the built-in sample lake (`stedi sample`"
    " generates it)"
)
CONF_FIX = 'set it to a JSON object of Spark settings, e.g. {"spark.driver.memory": "4g"}, or leave it empty'
MASTER_FIX = (
    "set it to local[*] (the default), local[N], spark://HOST:7077, k8s://https://HOST:6443, yarn, or sc://HOST:15002"
    " for a Spark Connect server"
)
POLICY_LINE = (
    "STEDI_CONSENT_POLICY / privacy.consent_policy='bogus' is not one of since, flag: set it to since (readings from"
    " research consent on, the default) or flag (every reading of a consenting customer)"
)
REGION_FIX = "set it to the region of your Glue Data Catalog, e.g. us-east-1"
ENDPOINT_FIX = "set it to the address of a Glue-compatible server, e.g. http://127.0.0.1:5000, or unset it to use AWS"
PORT_FIX = "give a whole number from 1 to 65535"
# Every setting a command reads; each test sets the one it is about.
SETTINGS = (
    "STEDI_SPARK_MASTER",
    "STEDI_SPARK_CONF",
    "STEDI_CONSENT_POLICY",
    "STEDI_SENSOR_INTERVAL_SECONDS",
    "STEDI_DEBUG",
    "DAGSTER_HOME",
    "AWS_ENDPOINT_URL_GLUE",
)


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A usable lake (its landing folders, nothing delivered) as STEDI_LAKE_ROOT, every other setting unset, and a
    `stedi up` that fails the test if it gets as far as starting anything."""
    root = tmp_path / "lake"
    empty_lake(root)
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(root))
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)

    def must_not_start(*args: object, **kwargs: object) -> dict[str, int]:
        raise AssertionError("stedi up started services despite a bad setting")

    monkeypatch.setattr(stack, "up", must_not_start)
    return root


def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "services"


# Each command as a user runs it, with the prog the dispatcher gives it.
COMMANDS: dict[str, Callable[[Path], int]] = {
    "run": lambda tmp_path: run.main(["--quiet"], prog="stedi run"),
    "sql": lambda tmp_path: sql.main(["select 1"], prog="stedi sql"),
    "up": lambda tmp_path: services.main(["up", "--state-dir", str(state_dir(tmp_path))], prog="stedi up"),
    "catalog": lambda tmp_path: catalog.main([], prog="stedi catalog"),
}


def refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], main: Callable[[Path], int] | None = None
) -> tuple[int, str, str]:
    """Runs the command; returns its exit status, stdout and stderr. For `up`, also that nothing started."""
    status = (main or COMMANDS[command])(tmp_path)
    out, err = capsys.readouterr()
    if command == "up":
        assert not list(state_dir(tmp_path).glob("*.json")), "a service record: something started"
    return status, out, err


# --- the lake root: every command reads it ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "sql", "up", "catalog"])
def test_a_lake_root_that_names_no_folder(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-lake"
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(missing))
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_LAKE_ROOT / lake.root='{missing}' names no folder: {LAKE_FIX}\n",
    )


@pytest.mark.parametrize("command", ["run", "sql", "up", "catalog"])
def test_a_lake_root_that_names_a_file(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "lake.txt"
    file.write_text("not a lake\n")
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(file))
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_LAKE_ROOT / lake.root='{file}' names a file, not a folder: {LAKE_FIX}\n",
    )


@pytest.mark.parametrize("command", ["run", "sql", "up", "catalog"])
def test_a_lake_root_that_is_not_a_lake(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(tmp_path))
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_LAKE_ROOT / lake.root='{tmp_path}' names a folder that is not a lake (it has none"
        " of the landing folders customer/landing, accelerometer/landing, step_trainer/landing): set it to the"
        " folder that holds them, or unset it for the built-in sample lake\n",
    )


@pytest.mark.parametrize("command", ["run", "sql", "up", "catalog"])
def test_a_lake_without_a_landing_folder(
    command: str, lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (lake / "step_trainer" / "landing").rmdir()
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_LAKE_ROOT / lake.root='{lake}' names a lake without the landing folder"
        " step_trainer/landing: create it, or set it to the folder that holds customer/landing,"
        " accelerometer/landing, step_trainer/landing\n",
    )


@pytest.mark.parametrize("command", ["run", "sql", "catalog"])  # `up` generates the sample lake: see below
def test_an_unset_lake_root_without_the_sample_lake(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / "sample_lake"
    monkeypatch.setattr("stedi_assets.lake.store.SAMPLE_LAKE", sample)
    monkeypatch.delenv("STEDI_LAKE_ROOT")
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_LAKE_ROOT / lake.root is unset, so the lake is the built-in sample lake {sample},"
        " which is not generated yet: run `stedi sample`, or set STEDI_LAKE_ROOT to your lake's folder or"
        " s3://bucket/prefix\n",
    )


@pytest.mark.parametrize("command", ["run", "sql", "up"])  # `catalog` prints an s3:// lake's DDL without reading it
def test_an_s3_lake_root_that_cannot_be_read(
    command: str,
    lake: Path,
    s3_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEDI_LAKE_ROOT", "s3://no-such-bucket/lake")
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_LAKE_ROOT / lake.root='s3://no-such-bucket/lake' cannot be read (An error occurred"
        " (404) when calling the HeadBucket operation: Not Found): check the bucket and prefix, and the AWS"
        " credentials and region (AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_REGION)\n",
    )


# --- Spark: run, sql and up read both settings -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "sql", "up"])
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("spark.driver.memory=8g", "is not JSON (expecting value at character 0)"),
        (
            "{'spark.driver.memory': '8g'}",
            "is not JSON (expecting property name enclosed in double quotes at character 1)",
        ),
        ('["spark.driver.memory", "8g"]', "is a JSON array, not an object"),
        ('"spark.driver.memory=8g"', "is a JSON string, not an object"),
    ],
    ids=["text", "single_quotes", "array", "string"],
)
def test_spark_conf_that_is_not_a_json_object(
    command: str,
    value: str,
    kind: str,
    lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEDI_SPARK_CONF", value)
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_SPARK_CONF / spark.conf {kind}: {CONF_FIX}\n",
    )


def test_spark_conf_is_never_quoted_it_may_hold_a_secret(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_SPARK_CONF", '{"spark.hadoop.fs.s3a.secret.key": "s3cr3t-value"')
    assert refused("sql", tmp_path, capsys) == (
        2,
        "",
        f"stedi sql: STEDI_SPARK_CONF / spark.conf is not JSON (expecting ',' delimiter at character 49): {CONF_FIX}\n",
    )


@pytest.mark.parametrize("command", ["run", "sql", "up"])
@pytest.mark.parametrize(
    ("value", "shown", "kind"),
    [
        ("localhost", "'localhost'", "is not a Spark master"),
        ("local[0]", "'local[0]'", "is not a Spark master"),
        ("sc:/spark.example/;token=s3cr3t", "'sc:/spark.example/;token=...'", "is not a Spark master"),
    ],
    ids=["host", "no_threads", "token_hidden"],
)
def test_a_spark_master_spark_does_not_accept(
    command: str,
    value: str,
    shown: str,
    kind: str,
    lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEDI_SPARK_MASTER", value)
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_SPARK_MASTER / spark.master={shown} {kind}: {MASTER_FIX}\n",
    )


# --- what runs read: `stedi run`, and `stedi up` for the runs its daemon starts -----------------------------------


@pytest.mark.parametrize("command", ["run", "up"])
def test_a_consent_policy_that_is_not_one_of_the_policies(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_CONSENT_POLICY", "bogus")
    assert refused(command, tmp_path, capsys) == (2, "", f"stedi {command}: {POLICY_LINE}\n")


def test_sql_does_not_read_the_consent_policy(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_CONSENT_POLICY", "bogus")
    assert sql.main(["--tables"], prog="stedi sql") == 0  # lists the tables: no Spark
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["run", "up"])
def test_a_missing_pseudonym_key_on_a_users_lake(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "")
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_PSEUDONYM_KEY / privacy.pseudonym_key is empty, and lake {lake} is not the built-in"
        " sample lake: set STEDI_PSEUDONYM_KEY to a secret of your own (the development key is allowed only on the"
        " sample lake)\n",
    )


@pytest.mark.parametrize("command", ["run", "up"])
def test_a_sensor_interval_that_is_not_a_number_of_seconds(
    command: str, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_SENSOR_INTERVAL_SECONDS", "soon")
    assert refused(command, tmp_path, capsys) == (
        2,
        "",
        f"stedi {command}: STEDI_SENSOR_INTERVAL_SECONDS='soon' is not a whole number of seconds: set it to one,"
        " e.g. 30, or unset it for 30\n",
    )


# --- `stedi up`: its ports -------------------------------------------------------------------------------------


def up(tmp_path: Path, *options: str) -> Callable[[Path], int]:
    return lambda _: services.main(["up", "--state-dir", str(state_dir(tmp_path)), *options], prog="stedi up")


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (("--connect-port", "70000"), f"--connect-port='70000' is not a port number: {PORT_FIX}"),
        (("--webserver-port", "web"), f"--webserver-port='web' is not a port number: {PORT_FIX}"),
        (("--webserver-port", "0"), f"--webserver-port='0' is not a port number: {PORT_FIX}"),
        (
            ("--connect-port", "3000", "--webserver-port", "3000"),
            "--connect-port and --webserver-port are both 3000: give each a port of its own",
        ),
    ],
    ids=["out_of_range", "not_a_number", "zero", "twice"],
)
def test_up_with_a_bad_port(
    options: tuple[str, ...], line: str, lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused("up", tmp_path, capsys, up(tmp_path, *options)) == (2, "", f"stedi up: {line}\n")


def test_up_with_a_port_in_use(lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        holder = supervisor.describe(os.getpid())
        assert refused("up", tmp_path, capsys, up(tmp_path, "--no-connect", "--webserver-port", str(port))) == (
            2,
            "",
            f"stedi up: --webserver-port={port} is a port in use, by {holder}: give another free port, or stop that"
            " process\n",
        )


def test_up_with_a_spark_ui_port_that_is_not_a_port(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_SPARK_CONF", '{"spark.ui.enabled": "true", "spark.ui.port": "ui"}')
    assert refused("up", tmp_path, capsys) == (
        2,
        "",
        f"stedi up: STEDI_SPARK_CONF's spark.ui.port='ui' is not a port number: {PORT_FIX}\n",
    )


# --- `stedi catalog --register`: the lake on S3, the region, the endpoint --------------------------------------


def register(tmp_path: Path) -> int:
    return catalog.main(["--register"], prog="stedi catalog")


@pytest.fixture
def aws(lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An s3:// lake, a region, no endpoint, and no AWS profile to find another region in."""
    monkeypatch.setenv("STEDI_LAKE_ROOT", "s3://stedi-lake/lake")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("root", "shown"),
    [("local", "='{lake}'"), ("unset", " is unset (the built-in sample lake) and")],
)
def test_register_needs_an_s3_lake(
    root: str,
    shown: str,
    aws: None,
    lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if root == "local":
        monkeypatch.setenv("STEDI_LAKE_ROOT", str(lake))
    else:
        monkeypatch.delenv("STEDI_LAKE_ROOT")
    assert refused("catalog", tmp_path, capsys, register) == (
        2,
        "",
        f"stedi catalog: STEDI_LAKE_ROOT{shown.format(lake=lake)} is not on S3, which --register needs (Athena reads"
        " only S3): set it to the lake's s3://bucket/prefix\n",
    )


@pytest.mark.parametrize(
    ("environment", "line"),
    [
        (
            {"AWS_REGION": ""},
            "AWS_REGION is unset, and so are AWS_DEFAULT_REGION and the AWS profile's region: set AWS_REGION to the"
            " region of your Glue Data Catalog, e.g. us-east-1",
        ),
        ({"AWS_REGION": "us_east_1"}, f"AWS_REGION='us_east_1' is not a region name: {REGION_FIX}"),
        (
            {"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-1 "},
            f"AWS_DEFAULT_REGION='us-east-1 ' is not a region name: {REGION_FIX}",
        ),
        (
            {"AWS_ENDPOINT_URL": "127.0.0.1:5000"},
            f"AWS_ENDPOINT_URL='127.0.0.1:5000' is not an http(s) URL: {ENDPOINT_FIX}",
        ),
        (  # a password in the URL is not quoted
            {"AWS_ENDPOINT_URL_GLUE": "htp://user:s3cr3t@glue.example"},
            f"AWS_ENDPOINT_URL_GLUE='htp://...@glue.example' is not an http(s) URL: {ENDPOINT_FIX}",
        ),
    ],
    ids=["no_region", "bad_region", "bad_default_region", "endpoint_without_scheme", "endpoint_with_password"],
)
def test_register_with_a_bad_aws_setting(
    environment: dict[str, str],
    line: str,
    aws: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert refused("catalog", tmp_path, capsys, register) == (2, "", f"stedi catalog: {line}\n")


# --- --debug and STEDI_DEBUG=1: the trace instead ----------------------------------------------------------------


def test_debug_raises_the_bad_setting_with_its_trace(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STEDI_CONSENT_POLICY", "bogus")
    with pytest.raises(settings.SettingError, match=r"^STEDI_CONSENT_POLICY / ") as error:
        run.main(["--quiet", "--debug"], prog="stedi run")
    assert str(error.value) == POLICY_LINE
    assert isinstance(error.value.__cause__, PrivacySettingError)  # the resource's own, with its frames
    monkeypatch.setenv("STEDI_DEBUG", "1")
    monkeypatch.setenv("STEDI_SPARK_CONF", "[]")
    with pytest.raises(SparkSettingError):
        sql.main(["select 1"], prog="stedi sql")
    with pytest.raises(SparkSettingError):
        services.main(["up", "--state-dir", str(state_dir(tmp_path))], prog="stedi up")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("debug", "status"),
    [({}, 2), ({"STEDI_DEBUG": "1"}, 1)],
    ids=["one_line", "trace"],
)
def test_the_terminal_gets_one_line_or_with_stedi_debug_the_trace(
    debug: dict[str, str], status: int, lake: Path
) -> None:
    """As a user's terminal: the `stedi` entry point in a process of its own."""
    environment = {**os.environ, "STEDI_SPARK_CONF": "notjson", **debug}
    done = subprocess.run([STEDI, "sql", "select 1"], env=environment, capture_output=True, text=True, timeout=120)
    line = f"STEDI_SPARK_CONF / spark.conf is not JSON (expecting value at character 0): {CONF_FIX}"
    assert (done.returncode, done.stdout) == (status, "")
    if not debug:
        assert done.stderr == f"stedi sql: {line}\n"
    else:
        assert done.stderr.startswith("Traceback (most recent call last):\n")
        assert done.stderr.endswith(f"\nstedi_assets.spark_settings.SparkSettingError: {line}\n")
        assert "in parse_conf\n" in done.stderr  # the frame that judged it


# --- a launchpad run: the run config's fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "line"),
    [
        ({"privacy": {"config": {"consent_policy": "bogus"}}}, POLICY_LINE),
        (
            {"spark": {"config": {"conf": "spark.driver.memory=8g"}}},
            f"STEDI_SPARK_CONF / spark.conf is not JSON (expecting value at character 0): {CONF_FIX}",
        ),
        (
            {"spark": {"config": {"master": "localhost"}}},
            f"STEDI_SPARK_MASTER / spark.master='localhost' is not a Spark master: {MASTER_FIX}",
        ),
        (
            {"lake": {"config": {"root": "/no/such/lake"}}},
            f"STEDI_LAKE_ROOT / lake.root='/no/such/lake' names no folder: {LAKE_FIX}",
        ),
    ],
    ids=["consent_policy", "spark_conf", "spark_master", "lake_root"],
)
def test_a_launchpad_field_only_the_resource_can_judge_fails_the_run_at_setup_in_one_line(
    resources: dict, line: str, lake: Path
) -> None:
    """Dagster's config accepts the value (a string: an enum field would lose its EnvVar, see resources/privacy.py),
    so the run is launched, and fails when its resources are set up, before any step, with this one line."""
    validate_run_config(defs().resolve_implicit_global_asset_job_def(), {"resources": resources})
    with (
        pytest.raises(DagsterResourceFunctionError) as error,
        build_resources(defs().resources, resource_config=resources, log_manager=DagsterLogManager.create([])),
    ):
        pass
    assert str(error.value.__cause__) == line


def test_a_launchpad_field_of_the_wrong_type_is_refused_before_launch(lake: Path) -> None:
    """Dagster's own check, in the launchpad before anything runs (and in `dagster asset materialize --config`)."""
    job = defs().resolve_implicit_global_asset_job_def()
    with pytest.raises(DagsterInvalidConfigError) as error:
        validate_run_config(job, {"resources": {"lake": {"config": {"retention_hours": "a week"}}}})
    assert str(error.value) == (
        "Error in config for job __ASSET_JOB\n    Error 1: Invalid scalar at path root:resources:lake:config:"
        'retention_hours. Value "a week" of type "<class \'str\'>" is not valid for expected type "Int".'
    )
