"""Long-lived services on one machine: a Spark Connect server that keeps Spark warm between runs, the Dagster
daemon (sensors, run queue) and the Dagster webserver (UI). `make up` starts them, `make down` stops them.

    python -m stedi_assets.cli.services up [--no-connect] [--connect-port 15002] [--webserver-port 3000]
    python -m stedi_assets.cli.services down | status          [--state-dir .services]

With the Connect server up, the daemon's and webserver's runs use it (STEDI_SPARK_MASTER=sc://...), so a
sensor-triggered run pays no JVM start-up. The server itself runs Spark on STEDI_SPARK_MASTER (local[*] unless
it names a cluster) with the lake's s3a settings, so an s3:// lake works through it too.
Each service runs in its own process group with its pid in {state_dir}/{name}.pid and its output in
{state_dir}/{name}.log; `down` stops each whole group (SIGTERM, then SIGKILL), so nothing started survives.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyspark

from stedi_assets.cli.sample import ensure_sample_lake
from stedi_assets.resources.spark import application_config, is_connect
from stedi_assets.settings import SAMPLE_LAKE, Settings, from_env
from stedi_assets.sql_guard import with_guard

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).resolve().parent
SPARK_CLASS = str(SPARK_HOME / "bin" / "spark-class")
DEFAULT_STATE_DIR = REPO / ".services"
CONNECT_PORT = 15002  # Spark Connect's own default
WEBSERVER_PORT = 3000
START_TIMEOUT_SECONDS = 180.0


class ServiceError(RuntimeError):
    """A service did not start, or stopped while starting."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    # Ready when this answers: a TCP port, an HTTP URL that must return 200, or a line in its log.
    # None of them: ready when started.
    port: int | None = None
    url: str | None = None
    ready_log: str | None = None


def spark_connect(settings: Settings, port: int) -> Service:
    """pyspark's own start-connect-server.sh, in the foreground (--wait) so that its group can be stopped."""
    if is_connect(settings.spark_master):
        raise ServiceError(f"STEDI_SPARK_MASTER={settings.spark_master} already names a Connect server")
    conf = {
        **application_config(settings),
        **settings.spark_conf,
        "spark.app.name": "stedi-connect",
        # At INFO, the server logs every plan of every request: thousands of lines per run.
        "spark.log.level": "WARN",
        # Local clients only: Connect has no authentication of its own.
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }
    conf = with_guard(conf)  # the read-only guard of `stedi sql`: it acts only in sessions that turn it on
    command = [str(SPARK_HOME / "sbin" / "start-connect-server.sh"), "--wait", "--master", settings.spark_master]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return Service("spark-connect", command, {"SPARK_HOME": str(SPARK_HOME)}, port=port)


def standalone_master(port: int) -> Service:
    """A Spark standalone master through pyspark's spark-class (pyspark ships no start-master.sh)."""
    options = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", "0"]
    return Service("spark-master", [SPARK_CLASS, "org.apache.spark.deploy.master.Master", *options], {}, port=port)


def standalone_worker(master_url: str, cores: int, memory: str, work_dir: Path) -> Service:
    options = ["--host", "127.0.0.1", "--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir)]
    command = [SPARK_CLASS, "org.apache.spark.deploy.worker.Worker", master_url, *options, "--webui-port", "0"]
    return Service("spark-worker", command, {}, ready_log="Successfully registered with master")


def dagster_daemon(env: dict[str, str]) -> Service:
    return Service("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-m", "stedi_assets"], env)


def dagster_webserver(env: dict[str, str], port: int) -> Service:
    command = [str(BIN / "dagster-webserver"), "-m", "stedi_assets", "-h", "127.0.0.1", "-p", str(port)]
    return Service("dagster-webserver", command, env, url=f"http://127.0.0.1:{port}/server_info")


def launch(service: Service, state_dir: Path) -> int:
    """Starts a service in a process group of its own; returns its pid (= the group id) once it is ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / f"{service.name}.log"
    env = {**os.environ, "SPARK_LOG_DIR": str(state_dir), "SPARK_PID_DIR": str(state_dir), **service.env}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            service.command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (state_dir / f"{service.name}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _answers(service, log_path):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process.pid)
            tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
            raise ServiceError(f"{service.name} did not start (log: {log_path}):\n{tail}")
        time.sleep(0.5)
    return process.pid


def dagster_home(home: Path) -> dict[str, str]:
    """A DAGSTER_HOME with the project's dagster.yaml (as the Makefile makes it); returns the environment
    that points at it. Code servers put sockets under TMPDIR, so that goes inside it too."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml.example").read_text())
    return {"DAGSTER_HOME": str(home), "TMPDIR": str(home / "tmp")}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(service: Service, log_path: Path) -> bool:
    if service.ready_log is not None and service.ready_log not in log_path.read_text(errors="replace"):
        return False
    try:
        if service.port is not None:
            with socket.create_connection(("127.0.0.1", service.port), timeout=2):
                return True
        if service.url is not None:
            with urllib.request.urlopen(service.url, timeout=2) as response:
                return response.status == 200
    except OSError:
        return False
    return True


def stop(pid: int, grace_seconds: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL to what is left after the grace period; returns when it is gone."""
    for sig, grace in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if not _group_alive(pid):
            break
    else:
        raise ServiceError(f"process group {pid} survived SIGKILL")
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if this process started it


def _group_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # a zombie child of ours would still count as alive
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up(
    settings: Settings,
    state_dir: Path = DEFAULT_STATE_DIR,
    connect_port: int | None = CONNECT_PORT,
    webserver_port: int = WEBSERVER_PORT,
    dagster_env: dict[str, str] | None = None,
) -> dict[str, int]:
    """Starts the services (no Connect server when connect_port is None); returns their pids by name.

    `dagster_env` adds to the environment of the daemon and webserver (and so of their runs).
    If one fails to start, the ones already started are stopped again.
    """
    if running(state_dir):
        raise ServiceError(f"services are already running ({state_dir}): stop them first (make down)")
    dagster_env = dict(dagster_env or {})
    services = []
    if connect_port is not None:
        services.append(spark_connect(settings, connect_port))
        dagster_env["STEDI_SPARK_MASTER"] = f"sc://127.0.0.1:{connect_port}"
    services += [dagster_daemon(dagster_env), dagster_webserver(dagster_env, webserver_port)]
    try:
        return {service.name: launch(service, state_dir) for service in services}
    except BaseException:
        down(state_dir)
        raise


def running(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, int]:
    """The services started from state_dir that are still alive, by name."""
    pids = {path.stem: int(path.read_text()) for path in state_dir.glob("*.pid")}
    return {name: pid for name, pid in pids.items() if _group_alive(pid)}


def down(state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """Stops every service started from state_dir, dagster first (its runs may use Spark); returns their names."""
    alive = running(state_dir)
    for name in sorted(alive, key=lambda name: name == "spark-connect"):
        stop(alive[name])
    for path in state_dir.glob("*.pid"):
        path.unlink()
    return sorted(alive)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--no-connect", action="store_true", help="runs start their own Spark, as without `up`")
    parser.add_argument("--connect-port", type=int, default=CONNECT_PORT)
    parser.add_argument("--webserver-port", type=int, default=WEBSERVER_PORT)
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            settings = from_env()
            if settings.uses_sample_lake:
                ensure_sample_lake(SAMPLE_LAKE)  # for the sensor to find
            # An sc:// STEDI_SPARK_MASTER names a Connect server elsewhere: runs use it, none is started here.
            connect = not args.no_connect and not is_connect(settings.spark_master)
            pids = up(settings, args.state_dir, args.connect_port if connect else None, args.webserver_port)
            for name, pid in pids.items():
                print(f"{name:<18} pid {pid}  log {args.state_dir / name}.log")
            if connect:
                print(f"Spark Connect      sc://127.0.0.1:{args.connect_port} (runs started by the daemon use it)")
            print(f"Dagster UI         http://127.0.0.1:{args.webserver_port}")
        elif args.action == "down":
            stopped = down(args.state_dir)
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        else:
            alive = running(args.state_dir)
            for name, pid in alive.items():
                print(f"{name:<18} pid {pid}")
            if not alive:
                print("nothing is running")
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
