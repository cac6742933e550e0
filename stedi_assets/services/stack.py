"""The lake's long-lived services, on the process supervisor (stedi_assets.services.supervisor): a PostgreSQL
server for the Dagster instance (stedi_assets.services.postgres), a Spark Connect server that keeps Spark warm
between runs, the Dagster daemon (sensors, run queue) and the Dagster webserver (UI). `up` starts them
(`stedi up`, `make up`); the supervisor's `down` stops them, PostgreSQL last.

The instance: with PostgreSQL, the daemon's and webserver's DAGSTER_HOME is {state_dir}/dagster_home, whose
dagster.yaml is the project's (dagster.yaml.example) with run, event log and schedule storage on that server
(`postgres_home`); the password reaches them in their environment only. $DAGSTER_HOME (.dagster_home under make) is
left to `make run` and `make test`, on SQLite. Without PostgreSQL (`stedi up --no-postgres`), they use
$DAGSTER_HOME (or .dagster_home), on SQLite, as before.

With the Connect server up, the daemon's and webserver's runs use it (STEDI_SPARK_MASTER=sc://...), so a
sensor-triggered run pays no JVM start-up. The server itself runs Spark on STEDI_SPARK_MASTER (local[*] unless
it names a cluster) with the lake's s3a settings, so an s3:// lake works through it too.

Ports: `up` fails before starting anything if a port it needs is taken (naming the process that holds it).

Environment: each service gets only the variables it needs, from an allowlist. The Connect server gets no
STEDI_* setting (the pseudonym key stays out of it), and AWS_* only for an s3:// lake. Its Spark UI is off unless
STEDI_SPARK_CONF={"spark.ui.enabled": "true"}, and then listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pyspark
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from stedi_assets.lake.storage import is_s3
from stedi_assets.services import postgres, supervisor
from stedi_assets.spark_settings import SparkTarget, application_config, is_connect
from stedi_assets.sql_guard import with_guard

BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).resolve().parent
DEFAULT_DAGSTER_HOME = supervisor.REPO / ".dagster_home"  # as the Makefile sets it
CONNECT_PORT = 15002  # Spark Connect's own default
WEBSERVER_PORT = 3000
SPARK_UI_PORT = 4040  # Spark's own default, when STEDI_SPARK_CONF turns the Connect server's UI on

# What a service may inherit from the environment `stedi up` runs in; everything else is dropped.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "JAVA_HOME")
SPARK_ENV_PREFIXES = ("SPARK_", "PYSPARK_")
HADOOP_ENV = ("HADOOP_CONF_DIR", "YARN_CONF_DIR")  # a Connect server on a YARN master needs them
# The standard variables of the AWS SDKs and CLI (credentials, profile, region, endpoint, container and web
# identity roles), read by s3a's credential chain and by boto3.
AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CREDENTIAL_PROFILES_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)
# The Dagster services run the pipeline's code: its settings (STEDI_*, the pseudonym key included), Dagster's own.
DAGSTER_ENV_PREFIXES = ("STEDI_", "DAGSTER_")


# --- environments ----------------------------------------------------------------------------------------------


def inherited(
    environ: Mapping[str, str], names: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()
) -> dict[str, str]:
    """The variables of `environ` that are named or start with one of the prefixes."""
    return {key: value for key, value in environ.items() if key in names or key.startswith(prefixes)}


def spark_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What a Spark process started from pyspark's scripts needs: the base, Spark's own variables, SPARK_HOME."""
    env = inherited(environ, BASE_ENV + HADOOP_ENV, SPARK_ENV_PREFIXES)
    return env | {"SPARK_HOME": str(SPARK_HOME)}


def dagster_environment(environ: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The daemon's and webserver's environment, which their runs inherit: a run may start its own Spark (no
    Connect server), read an s3:// lake with boto3 or s3a (AWS_*), and computes pseudonyms (STEDI_PSEUDONYM_KEY)."""
    env = inherited(environ, BASE_ENV + HADOOP_ENV + AWS_ENV, SPARK_ENV_PREFIXES + DAGSTER_ENV_PREFIXES)
    return env | dict(extra or {})


# --- the services ----------------------------------------------------------------------------------------------


def spark_connect(target: SparkTarget, port: int, environ: Mapping[str, str] | None = None) -> supervisor.Service:
    """pyspark's own start-connect-server.sh, in the foreground (--wait) so that its group can be stopped."""
    if is_connect(target.master):
        raise supervisor.ServiceError(f"STEDI_SPARK_MASTER={target.master} already names a Connect server")
    ui = target.ui
    conf = {
        **application_config(target.master, target.conf, target.lake_root),
        **target.conf,
        "spark.app.name": "stedi-connect",
        # At INFO, the server logs every plan of every request: thousands of lines per run.
        "spark.log.level": "WARN",
        # Local clients only: Connect has no authentication of its own.
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }
    ui_port = int(conf.get("spark.ui.port", SPARK_UI_PORT))
    conf |= {"spark.ui.port": str(ui_port)} if ui else {}
    conf = with_guard(conf)  # the read-only guard of `stedi sql`: it acts only in sessions that turn it on
    command = [str(SPARK_HOME / "sbin" / "start-connect-server.sh"), "--wait", "--master", target.master]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    env = connect_environment(target, os.environ if environ is None else environ, conf)
    return supervisor.Service("spark-connect", command, env, ports=(port, ui_port) if ui else (port,))


def connect_environment(target: SparkTarget, environ: Mapping[str, str], conf: Mapping[str, str]) -> dict[str, str]:
    """Spark's variables, AWS_* only for an s3:// lake (s3a's credential chain reads them), nothing of STEDI_*.

    Spark binds its UI to SPARK_LOCAL_IP, or to every interface without it; the driver binds there too. A local
    master needs no other address, so it gets 127.0.0.1. A cluster's executors must reach the driver: its UI is
    only allowed when spark.driver.host says where they reach it, SPARK_LOCAL_IP keeping the UI on 127.0.0.1.
    """
    env = spark_environment(environ)
    if is_s3(target.lake_root):
        env |= inherited(environ, AWS_ENV)
    if target.master.startswith("local"):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    elif target.ui:
        if "spark.driver.host" not in conf:
            raise supervisor.ServiceError(
                f"spark.ui.enabled=true with master {target.master}: the UI listens on 127.0.0.1 through"
                " SPARK_LOCAL_IP, which moves the driver there too; set spark.driver.host (STEDI_SPARK_CONF) to the"
                " address the executors reach"
            )
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


def dagster_daemon(env: dict[str, str]) -> supervisor.Service:
    return supervisor.Service("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-m", "stedi_assets"], env)


def dagster_webserver(env: dict[str, str], port: int) -> supervisor.Service:
    command = [str(BIN / "dagster-webserver"), "-m", "stedi_assets", "-h", "127.0.0.1", "-p", str(port)]
    return supervisor.Service(
        "dagster-webserver", command, env, ports=(port,), url=f"http://127.0.0.1:{port}/server_info"
    )


def dagster_home(home: Path) -> dict[str, str]:
    """A DAGSTER_HOME with the project's dagster.yaml (as the Makefile makes it); returns the environment
    that points at it. Code servers put sockets under TMPDIR, so that goes inside it too."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((supervisor.REPO / "dagster.yaml.example").read_text())
    return {"DAGSTER_HOME": str(home), "TMPDIR": str(home / "tmp")}


def postgres_home(server: postgres.Server) -> dict[str, str]:
    """{state_dir}/dagster_home, a DAGSTER_HOME (dagster_home) whose instance keeps runs, event logs and schedule
    and sensor state on `server`; returns the environment that points at it. Its dagster.yaml names the password's
    variable (postgres.PASSWORD_ENV), never the password."""
    home = server.dagster_home
    env = dagster_home(home)
    storage = "\n".join(block_yaml({"storage": server.storage()}))
    with (home / "dagster.yaml").open("a") as out:
        out.write(f"# Runs, event logs and schedule/sensor state in the PostgreSQL server of `stedi up`.\n{storage}\n")
    return env


def block_yaml(mapping: Mapping[str, object], indent: int = 0) -> list[str]:
    """Nested mappings of plain values as block YAML lines (each value as JSON, which YAML reads as it is)."""
    lines = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            lines += [f"{' ' * indent}{key}:", *block_yaml(value, indent + 2)]
        else:
            lines.append(f"{' ' * indent}{key}: {json.dumps(value)}")
    return lines


def open_instance(home: Path, server: postgres.Server | None = None) -> DagsterInstance:
    """The instance of a DAGSTER_HOME, in this process; on `server` (postgres_home) with its password given
    to the storage in memory, this process's environment left as it is."""
    overrides = {"storage": server.storage(server.password())} if server is not None else None
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


# --- starting them ---------------------------------------------------------------------------------------------


def up(
    target: SparkTarget,
    state_dir: Path = supervisor.DEFAULT_STATE_DIR,
    connect_port: int | None = CONNECT_PORT,
    webserver_port: int = WEBSERVER_PORT,
    dagster_env: dict[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    server: postgres.Server | None = None,
) -> dict[str, int]:
    """Starts the services (no Connect server when connect_port is None, no PostgreSQL when `server` is None);
    returns their pids by name.

    `dagster_env` adds to the environment of the daemon and webserver (and so of their runs); `environ` is the
    environment the allowlists pick from (this process's by default). With `server`, its cluster is created if
    it has none yet, it starts first and accepts connections before the instance is created; the daemon and
    webserver get its password (postgres.PASSWORD_ENV) and its instance (postgres_home, whatever dagster_env says).
    Nothing starts unless every port is free; if one service fails to start, the ones already started are
    stopped again.
    """
    environ = os.environ if environ is None else environ
    if supervisor.running(state_dir):
        raise supervisor.ServiceError(f"services are already running ({state_dir}): stop them first (make down)")
    supervisor.remove_stale(state_dir)
    extra = dict(dagster_env or {})
    services = []
    if server is not None:
        server.prepare()  # initdb, the first time: no port, no process left running
        services.append(server.service())
        extra |= postgres_home(server) | {postgres.PASSWORD_ENV: server.password()}
    if connect_port is not None:
        services.append(spark_connect(target, connect_port, environ))
        extra["STEDI_SPARK_MASTER"] = f"sc://127.0.0.1:{connect_port}"
    env = dagster_environment(environ, extra)
    services += [dagster_daemon(env), dagster_webserver(env, webserver_port)]
    supervisor.check_ports_free(services)
    try:
        pids = {}
        for service in services:
            if service.name == "dagster-daemon" and "DAGSTER_HOME" in env:
                # A fresh instance is created here, once, its database accepting connections: the daemon and the
                # webserver creating it at the same time fail ("table alembic_version already exists").
                open_instance(Path(env["DAGSTER_HOME"]), server).dispose()
            pids[service.name] = supervisor.launch(service, state_dir)
            if server is not None and service.name == postgres.NAME:
                server.create_database()
        # Every port is checked again once all have started: a service that lost its port since is a failure.
        for record in supervisor.survey(state_dir).running.values():
            for port in record.ports:
                if not supervisor.owns_port(record, port):
                    raise supervisor.ServiceError(f"{record.name} no longer listens on port {port}")
        return pids
    except BaseException:
        supervisor.down(state_dir)
        raise
