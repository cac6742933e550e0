"""Long-lived services on one machine: a Spark Connect server that keeps Spark warm between runs, the Dagster
daemon (sensors, run queue) and the Dagster webserver (UI). `make up` starts them, `make down` stops them.

    stedi up [--no-connect] [--connect-port 15002] [--webserver-port 3000] [--state-dir .services]
    stedi down | status                                                    [--state-dir .services]

With the Connect server up, the daemon's and webserver's runs use it (STEDI_SPARK_MASTER=sc://...), so a
sensor-triggered run pays no JVM start-up. The server itself runs Spark on STEDI_SPARK_MASTER (local[*] unless
it names a cluster) with the lake's s3a settings, so an s3:// lake works through it too.

Ports: `up` fails before starting anything if a port it needs is taken (naming the process that holds it), and
a service counts as started only when every listening socket on its ports belongs to its own process group.

Processes: each service runs in its own process group. {state_dir}/{name}.json records what identifies it (pid,
start time from /proc/<pid>/stat, boot id, command line, and a random id in its environment that its children
inherit); its output goes to {state_dir}/{name}.log. `down` signals only processes that this record proves to be
the service's (SIGTERM, then SIGKILL), through pidfds so that a recycled pid is never hit. A state file that
proves nothing (stale after a reboot, a pid now used by another process, garbage) is reported, removed, and no
signal is sent.

Environment: each service gets only the variables it needs, from an allowlist. The Connect server gets no
STEDI_* setting (the pseudonym key stays out of it), and AWS_* only for an s3:// lake. Its Spark UI is off unless
STEDI_SPARK_CONF={"spark.ui.enabled": "true"}, and then listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from ipaddress import ip_address
from pathlib import Path

import pyspark
from dagster import DagsterInstance

from stedi_assets.cli.sample import SAMPLE_CUSTOMERS, SAMPLE_LAKE, SAMPLE_SEED, generate
from stedi_assets.lake.storage import is_s3
from stedi_assets.spark_settings import SparkTarget, application_config, is_connect
from stedi_assets.sql_guard import with_guard

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).resolve().parent
DEFAULT_STATE_DIR = REPO / ".services"
DEFAULT_DAGSTER_HOME = REPO / ".dagster_home"  # as the Makefile sets it
CONNECT_PORT = 15002  # Spark Connect's own default
WEBSERVER_PORT = 3000
SPARK_UI_PORT = 4040  # Spark's own default, when STEDI_SPARK_CONF turns the Connect server's UI on
START_TIMEOUT_SECONDS = 180.0
# A random value per started service, in its environment: every process it starts inherits it, so a process of
# its group is recognised as the service's even after the group's leader has exited.
SERVICE_ID_ENV = "STEDI_SERVICE_ID"

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


class ServiceError(RuntimeError):
    """A service did not start, or stopped while starting, or could not be stopped."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    # The whole environment of the service: build it with `inherited` from an allowlist, never from os.environ.
    env: dict[str, str]
    # TCP ports it listens on (127.0.0.1): free before it starts, held by its own process group once started.
    ports: tuple[int, ...] = ()
    # Also ready only when this URL returns 200, or this line is in its log.
    url: str | None = None
    ready_log: str | None = None


# --- environments ----------------------------------------------------------------------------------------------


def inherited(environ: Mapping[str, str], names: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()) -> dict:
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


def spark_connect(target: SparkTarget, port: int, environ: Mapping[str, str] | None = None) -> Service:
    """pyspark's own start-connect-server.sh, in the foreground (--wait) so that its group can be stopped."""
    if is_connect(target.master):
        raise ServiceError(f"STEDI_SPARK_MASTER={target.master} already names a Connect server")
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
    return Service("spark-connect", command, env, ports=(port, ui_port) if ui else (port,))


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
            raise ServiceError(
                f"spark.ui.enabled=true with master {target.master}: the UI listens on 127.0.0.1 through"
                " SPARK_LOCAL_IP, which moves the driver there too; set spark.driver.host (STEDI_SPARK_CONF) to the"
                " address the executors reach"
            )
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


def dagster_daemon(env: dict[str, str]) -> Service:
    return Service("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-m", "stedi_assets"], env)


def dagster_webserver(env: dict[str, str], port: int) -> Service:
    command = [str(BIN / "dagster-webserver"), "-m", "stedi_assets", "-h", "127.0.0.1", "-p", str(port)]
    return Service("dagster-webserver", command, env, ports=(port,), url=f"http://127.0.0.1:{port}/server_info")


def dagster_home(home: Path) -> dict[str, str]:
    """A DAGSTER_HOME with the project's dagster.yaml (as the Makefile makes it); returns the environment
    that points at it. Code servers put sockets under TMPDIR, so that goes inside it too."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml.example").read_text())
    return {"DAGSTER_HOME": str(home), "TMPDIR": str(home / "tmp")}


# --- processes, as /proc describes them ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStat:
    pid: int
    state: str
    pgid: int
    start_time: int  # clock ticks after boot: with the boot id, what tells a process from a later one on its pid


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def pid_max() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def process_stat(pid: int) -> ProcessStat | None:
    """None when there is no such process (or it is gone while being read)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (2nd field) is in parentheses and may hold spaces or parentheses itself.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcessStat(pid=pid, state=fields[0], pgid=int(fields[2]), start_time=int(fields[19]))


def command_line(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def describe(pid: int) -> str:
    words = command_line(pid)
    text = " ".join(words) if words else "?"
    return f"pid {pid} ({text[:100]}{'...' if len(text) > 100 else ''})"


def _environ_holds(pid: int, entry: str) -> bool:
    try:
        return entry.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is pgid."""
    found = []
    for pid in _pids():
        stat = process_stat(pid)
        if stat is not None and stat.pgid == pgid and stat.state not in ("Z", "X"):
            found.append(pid)
    return found


# --- listening sockets -----------------------------------------------------------------------------------------

LISTEN = "0A"
# A listener on one of these takes connections to 127.0.0.1.
LOOPBACK_REACHING = {ip_address(a) for a in ("127.0.0.1", "0.0.0.0", "::")}


def _address(hex_address: str) -> object:
    """/proc/net/tcp{,6} addresses: 32-bit words in host (little-endian) order. An IPv4-mapped IPv6 address
    (Java binds ::ffff:127.0.0.1) is given as the IPv4 address it is."""
    raw = bytes.fromhex(hex_address)
    address = ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
    return getattr(address, "ipv4_mapped", None) or address


@dataclass(frozen=True)
class Listener:
    address: object  # an IPv4Address or IPv6Address
    port: int
    inode: int


def listeners() -> list[Listener]:
    """Every listening TCP socket of this network namespace, from /proc/net/tcp and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == LISTEN:
                    address, port = fields[1].rsplit(":", 1)
                    found.append(Listener(_address(address), int(port, 16), int(fields[9])))
    return found


def listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets that listen on `port` where a connection to 127.0.0.1 would reach them."""
    return {s.inode for s in listeners() if s.port == port and s.address in LOOPBACK_REACHING}


def socket_holders(inodes: set[int], pids: list[int] | None = None) -> dict[int, set[int]]:
    """pid -> the inodes among `inodes` it has open, over `pids` (every visible process by default)."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    holders: dict[int, set[int]] = {}
    for pid in _pids() if pids is None else pids:
        try:
            with os.scandir(f"/proc/{pid}/fd") as fds:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        inode = wanted.get(os.readlink(fd.path))
                        if inode is not None:
                            holders.setdefault(pid, set()).add(inode)
        except OSError:
            continue  # gone, or another user's process
    return holders


def port_holder(port: int) -> str | None:
    """Who listens on 127.0.0.1:port ("pid N (command)"), or None when the port is free."""
    inodes = listening_inodes(port)
    if not inodes:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no holder
            try:
                probe.bind(("127.0.0.1", port))
                return None
            except OSError:
                pass
    holders = socket_holders(inodes)
    if not holders:
        return "a process this user cannot see"
    return ", ".join(describe(pid) for pid in sorted(holders))


# --- state files -----------------------------------------------------------------------------------------------


class StaleRecord(ValueError):
    """A state file that proves nothing about a running service."""


@dataclass(frozen=True)
class Record:
    """What identifies a started service: its group leader's pid, start time and command line, the boot, and the
    random id its processes carry in their environment."""

    name: str
    pid: int
    start_time: int
    boot_id: str
    cmdline: list[str]
    service_id: str
    ports: list[int]

    def write(self, state_dir: Path) -> None:
        path = state_dir / f"{self.name}.json"
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(self), indent=1))
        os.replace(partial, path)  # a reader sees the old record or the new one, never half of one

    @classmethod
    def read(cls, path: Path) -> Record:
        """The record of a state file; StaleRecord saying why when the file cannot identify a process."""
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise StaleRecord("not a state file (unreadable or not JSON)") from None
        if not isinstance(data, dict):
            raise StaleRecord("not a state file (not a JSON object)")
        kinds = {"pid": int, "start_time": int, "boot_id": str, "cmdline": list, "service_id": str, "ports": list}
        for key, kind in kinds.items():
            if type(data.get(key)) is not kind:
                raise StaleRecord(f"not a state file ({key} missing or not a {kind.__name__})")
        if not 1 < data["pid"] <= pid_max():
            raise StaleRecord(f"pid {data['pid']} is not a pid a service can have")
        if not all(isinstance(word, str) for word in data["cmdline"]) or not data["cmdline"]:
            raise StaleRecord("not a state file (cmdline)")
        if len(data["service_id"]) < 16 or not all(type(port) is int for port in data["ports"]):
            raise StaleRecord("not a state file (service_id or ports)")
        return cls(name=path.stem, **{key: data[key] for key in kinds})

    def leader_problem(self) -> str | None:
        """None when the recorded process is alive and is the one recorded; otherwise why it is not."""
        if self.boot_id != boot_id():
            return "recorded before the last reboot"
        stat = process_stat(self.pid)
        if stat is None or stat.state in ("Z", "X"):
            return f"process {self.pid} has exited"
        if stat.start_time != self.start_time:
            return f"pid {self.pid} now belongs to another process ({describe(self.pid)}, started at another time)"
        if stat.pgid != self.pid:
            return f"process {self.pid} no longer leads its process group"
        if command_line(self.pid) != self.cmdline:
            return f"pid {self.pid} runs another command now ({describe(self.pid)})"
        return None

    def is_ours(self, pid: int, leader_verified: bool) -> bool:
        """A live process of this service's group: the group is proven ours by its leader, or the process carries
        this service's id (the leader having exited)."""
        stat = process_stat(pid)
        if stat is None or stat.pgid != self.pid or stat.state in ("Z", "X"):
            return False
        return leader_verified or _environ_holds(pid, f"{SERVICE_ID_ENV}={self.service_id}")

    def processes(self) -> list[int]:
        """The service's live processes."""
        verified = self.leader_problem() is None
        return [pid for pid in _group(self.pid) if self.is_ours(pid, verified)]

    def signal(self, sig: int) -> int:
        """Sends `sig` to each of the service's processes; returns how many got it.

        Each process is opened as a pidfd first and checked after: a pidfd keeps naming the process it was opened
        on, so a pid recycled between the check and the signal gets nothing (the signal fails with ESRCH).
        The leader's pidfd, checked once, proves the group ours for as long as the leader is alive.
        """
        leader = _pidfd(self.pid)
        try:
            if leader is not None and self.leader_problem() is not None:
                os.close(leader)
                leader = None
            sent = 0
            for pid in _group(self.pid):
                fd = _pidfd(pid)
                if fd is None:
                    continue
                try:
                    if self.is_ours(pid, leader is not None and _alive(leader)):
                        signal.pidfd_send_signal(fd, sig)
                        sent += 1
                except ProcessLookupError:
                    pass
                finally:
                    os.close(fd)
            return sent
        finally:
            if leader is not None:
                os.close(leader)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _alive(pidfd: int) -> bool:
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    return True


def _record(service: Service, process: subprocess.Popen, service_id: str) -> Record:
    deadline = time.monotonic() + 5
    while True:
        stat, cmdline = process_stat(process.pid), command_line(process.pid)
        if stat is not None and cmdline:  # a process in the middle of its exec shows no command line yet
            break
        if process.poll() is not None or time.monotonic() > deadline:
            raise ServiceError(f"{service.name} exited at once (exit status {process.wait()})")
        time.sleep(0.01)
    return Record(
        name=service.name,
        pid=process.pid,
        start_time=stat.start_time,
        boot_id=boot_id(),
        cmdline=cmdline,
        service_id=service_id,
        ports=list(service.ports),
    )


@dataclass(frozen=True)
class Found:
    """What the state directory says: live services, and state files that prove nothing (with why)."""

    running: dict[str, Record]
    stale: dict[Path, str]


def survey(state_dir: Path) -> Found:
    running, stale = {}, {}
    for path in sorted(state_dir.glob("*.pid")):  # written by earlier versions: a bare number proves nothing
        text = path.read_text(errors="replace").strip()[:40]
        stale[path] = f"a bare pid file ({text!r}) cannot identify a process: nothing was signalled"
    for path in sorted(state_dir.glob("*.json")):
        try:
            record = Record.read(path)
        except StaleRecord as why:
            stale[path] = str(why)
            continue
        if record.processes():
            running[record.name] = record
        else:
            stale[path] = record.leader_problem() or f"process group {record.pid} has no process of the service left"
    return Found(running, stale)


def stale_report(stale: dict[Path, str], removed: bool) -> list[str]:
    action = "removed; nothing signalled" if removed else "left alone"
    return [f"stale state file {path}: {why} ({action})" for path, why in stale.items()]


def remove_stale(state_dir: Path) -> list[str]:
    """Removes the state files that identify no running service; returns one line on each."""
    stale = survey(state_dir).stale
    for path in stale:
        path.unlink(missing_ok=True)
    return stale_report(stale, removed=True)


# --- starting and stopping -------------------------------------------------------------------------------------


def check_ports_free(services: list[Service]) -> None:
    """ServiceError naming the first port that is taken, and what holds it."""
    seen: dict[int, str] = {}
    for service in services:
        for port in service.ports:
            if port in seen:
                raise ServiceError(f"port {port} is asked for by both {seen[port]} and {service.name}")
            seen[port] = service.name
            holder = port_holder(port)
            if holder is not None:
                raise ServiceError(f"port {port} (for {service.name}) is already in use by {holder}")


def launch(service: Service, state_dir: Path) -> int:
    """Starts a service in a process group of its own; returns its pid (= the group id) once it is ready.

    Ready means: every port of the service is listened on by its own group and by nothing else, its URL answers
    200, its log holds the line. A port answered by any other process fails the start at once.
    """
    check_ports_free([service])
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / f"{service.name}.log"
    service_id = secrets.token_hex(16)
    env = {**service.env, "SPARK_LOG_DIR": str(state_dir), "SPARK_PID_DIR": str(state_dir), SERVICE_ID_ENV: service_id}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            service.command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        record = _record(service, process, service_id)
        record.write(state_dir)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _ready(service, record, log_path):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
                raise ServiceError(f"{service.name} did not start (log: {log_path}):\n{tail}")
            time.sleep(0.5)
        # The leader may have exec'd since (start-connect-server.sh execs spark-daemon.sh): record what it runs now.
        record = _record(service, process, service_id)
        record.write(state_dir)
    except BaseException:
        _stop_started(process, state_dir / f"{service.name}.json")
        raise
    return process.pid


def _stop_started(process: subprocess.Popen, path: Path) -> None:
    """Stops a service this process has just started (its Popen proves the group ours)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while _group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    path.unlink(missing_ok=True)


def _ready(service: Service, record: Record, log_path: Path) -> bool:
    for port in service.ports:
        if not owns_port(record, port):
            return False
    if service.ready_log is not None and service.ready_log not in log_path.read_text(errors="replace"):
        return False
    if service.url is not None:
        try:
            with urllib.request.urlopen(service.url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False
    return True


def owns_port(record: Record, port: int) -> bool:
    """True when the service's processes hold every socket listening on 127.0.0.1:port, False while none
    listens; ServiceError when another process holds one (it took the port between the check and the start)."""
    inodes = listening_inodes(port)
    if not inodes:
        return False
    ours = set().union(*socket_holders(inodes, record.processes()).values())
    strangers = inodes - ours
    if strangers:
        holders = socket_holders(strangers)
        holder = ", ".join(describe(pid) for pid in sorted(holders)) or "a process this user cannot see"
        raise ServiceError(f"port {port} is answered by {holder}, not by {record.name} (process group {record.pid})")
    return True


def stop(record: Record, grace_seconds: float = 20.0) -> None:
    """SIGTERM to each of the service's processes, SIGKILL to what is left after the grace period; returns when
    none is left. Processes the record does not prove to be the service's are never signalled."""
    for sig, grace in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        record.signal(sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not record.processes():
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(record.pid, os.WNOHANG)  # a zombie leader, if this process started it
                return
            time.sleep(0.2)
    raise ServiceError(f"{record.name}: processes {record.processes()} of group {record.pid} survived SIGKILL")


def up(
    target: SparkTarget,
    state_dir: Path = DEFAULT_STATE_DIR,
    connect_port: int | None = CONNECT_PORT,
    webserver_port: int = WEBSERVER_PORT,
    dagster_env: dict[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Starts the services (no Connect server when connect_port is None); returns their pids by name.

    `dagster_env` adds to the environment of the daemon and webserver (and so of their runs); `environ` is the
    environment the allowlists pick from (this process's by default). Nothing starts unless every port is free;
    if one service fails to start, the ones already started are stopped again.
    """
    environ = os.environ if environ is None else environ
    if running(state_dir):
        raise ServiceError(f"services are already running ({state_dir}): stop them first (make down)")
    remove_stale(state_dir)
    extra = dict(dagster_env or {})
    services = []
    if connect_port is not None:
        services.append(spark_connect(target, connect_port, environ))
        extra["STEDI_SPARK_MASTER"] = f"sc://127.0.0.1:{connect_port}"
    env = dagster_environment(environ, extra)
    services += [dagster_daemon(env), dagster_webserver(env, webserver_port)]
    check_ports_free(services)
    if "DAGSTER_HOME" in env:
        # A fresh instance is created here, once: the daemon and the webserver creating it at the same time fail
        # ("table alembic_version already exists").
        DagsterInstance.from_config(env["DAGSTER_HOME"]).dispose()
    try:
        pids = {service.name: launch(service, state_dir) for service in services}
        # Every port is checked again once all have started: a service that lost its port since is a failure.
        for record in survey(state_dir).running.values():
            for port in record.ports:
                if not owns_port(record, port):
                    raise ServiceError(f"{record.name} no longer listens on port {port}")
        return pids
    except BaseException:
        down(state_dir)
        raise


def running(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, int]:
    """The services started from state_dir that are still alive, by name (their group ids)."""
    return {name: record.pid for name, record in survey(state_dir).running.items()}


@dataclass(frozen=True)
class Stopped:
    names: list[str]  # the services stopped
    stale: list[str]  # one line per state file that identified no running service (removed, nothing signalled)


def down(state_dir: Path = DEFAULT_STATE_DIR) -> Stopped:
    """Stops every service started from state_dir, dagster first (its runs may use Spark)."""
    found = survey(state_dir)
    for name in sorted(found.running, key=lambda name: name == "spark-connect"):
        stop(found.running[name])
        (state_dir / f"{name}.json").unlink(missing_ok=True)
    for path in found.stale:
        path.unlink(missing_ok=True)
    return Stopped(sorted(found.running), stale_report(found.stale, removed=True))


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
            target = SparkTarget.from_env()
            if not target.lake_root and not SAMPLE_LAKE.exists():
                generate(SAMPLE_LAKE, SAMPLE_CUSTOMERS, SAMPLE_SEED)  # for the sensor to find
            for line in remove_stale(args.state_dir):
                print(line, file=sys.stderr)
            home = {} if "DAGSTER_HOME" in os.environ else _default_dagster_home()
            # An sc:// STEDI_SPARK_MASTER names a Connect server elsewhere: runs use it, none is started here.
            connect = not args.no_connect and not is_connect(target.master)
            pids = up(target, args.state_dir, args.connect_port if connect else None, args.webserver_port, home)
            for name, pid in pids.items():
                print(f"{name:<18} pid {pid}  log {args.state_dir / name}.log")
            if connect:
                print(f"Spark Connect      sc://127.0.0.1:{args.connect_port} (runs started by the daemon use it)")
                if target.ui:
                    ui_port = survey(args.state_dir).running["spark-connect"].ports[1]
                    print(f"Spark UI           http://127.0.0.1:{ui_port} (127.0.0.1 only)")
            print(f"Dagster UI         http://127.0.0.1:{args.webserver_port}")
        elif args.action == "down":
            stopped = down(args.state_dir)
            for line in stopped.stale:
                print(line, file=sys.stderr)
            print(f"stopped: {', '.join(stopped.names)}" if stopped.names else "nothing was running")
        else:
            found = survey(args.state_dir)
            for name, record in found.running.items():
                ports = f"  ports {', '.join(map(str, record.ports))}" if record.ports else ""
                print(f"{name:<18} pid {record.pid}{ports}")
            if not found.running:
                print("nothing is running")
            for line in stale_report(found.stale, removed=False):
                print(line, file=sys.stderr)
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _default_dagster_home() -> dict[str, str]:
    """DAGSTER_HOME unset (`stedi up` outside make): the Makefile's .dagster_home, with dagster.yaml if missing."""
    if not (DEFAULT_DAGSTER_HOME / "dagster.yaml").exists():
        return dagster_home(DEFAULT_DAGSTER_HOME)
    return {"DAGSTER_HOME": str(DEFAULT_DAGSTER_HOME)}


if __name__ == "__main__":
    sys.exit(main())
