"""A process supervisor for long-lived services on one machine: it starts each service in a process group of its
own, records what identifies it, finds it again and stops it. It imports nothing of the lake, Spark or Dagster:
the services that `stedi up` starts are defined in stedi_assets.services.stack. Three of their names are known here:
`down` stops services named spark-connect and then postgres last (the others' runs use them, and PostgreSQL holds
the Dagster services' records), and `launch` points SPARK_LOG_DIR and SPARK_PID_DIR at the state directory.

Ports: a service counts as started only when every listening socket on its ports belongs to its own process group;
`check_ports_free` names the process that holds a port that is taken.

Processes: each service runs in its own process group. {state_dir}/{name}.json records what identifies it (pid,
start time from /proc/<pid>/stat, boot id, command line, and a random id in its environment that its children
inherit); its output goes to {state_dir}/{name}.log. `down` signals only processes that this record proves to be
the service's (SIGTERM, then SIGKILL), through pidfds so that a recycled pid is never hit. A state file that
proves nothing (stale after a reboot, a pid now used by another process, garbage) is reported, removed, and no
signal is sent. A server that stops its own workers (PostgreSQL) is stopped through its group's leader alone, with
the signal it names (`leader_signal`), the rest of its group getting SIGKILL only if it has not stopped in time.

Users: a service may run as another user than this process (`user`: PostgreSQL refuses to run as root), with that
user's group and no supplementary groups; its record and state files stay this process's.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from ipaddress import ip_address
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO / ".services"
START_TIMEOUT_SECONDS = 180.0
# A random value per started service, in its environment: every process it starts inherits it, so a process of
# its group is recognised as the service's even after the group's leader has exited.
SERVICE_ID_ENV = "STEDI_SERVICE_ID"
# Stopped last by `down`, in this order, after every other service (whose runs use them).
STOPPED_LAST = ("spark-connect", "postgres")


# The signals a service may name as its leader_signal.
STOP_SIGNALS = {name: signal.Signals[name] for name in ("SIGINT", "SIGTERM", "SIGQUIT")}


class ServiceError(RuntimeError):
    """A service did not start, or stopped while starting, or could not be stopped."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    # The whole environment of the service: build it from an allowlist (stack.inherited), never from os.environ.
    env: dict[str, str]
    # TCP ports it listens on (127.0.0.1): free before it starts, held by its own process group once started.
    ports: tuple[int, ...] = ()
    # Also ready only when this URL returns 200, or this line is in its log.
    url: str | None = None
    ready_log: str | None = None
    # The user it runs as (None: this process's user), with that user's group and no supplementary groups.
    user: str | None = None
    # A signal name: `down` sends it to the group's leader alone, which stops its own workers (PostgreSQL's
    # postmaster: SIGINT, a fast shutdown). None: SIGTERM to each of the group's processes.
    leader_signal: str | None = None


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
    leader_signal: str | None = None  # as Service.leader_signal (absent from the files of earlier versions)

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
        leader_signal = data.get("leader_signal")
        if leader_signal is not None and leader_signal not in STOP_SIGNALS:
            raise StaleRecord("not a state file (leader_signal)")
        return cls(name=path.stem, leader_signal=leader_signal, **{key: data[key] for key in kinds})

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

    def signal(self, sig: int, leader_only: bool = False) -> int:
        """Sends `sig` to each of the service's processes (to its group's leader alone if `leader_only`); returns
        how many got it.

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
            for pid in [self.pid] if leader_only else _group(self.pid):
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


def _record(service: Service, process: subprocess.Popen[bytes], service_id: str) -> Record:
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
        leader_signal=service.leader_signal,
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
    ids = user_ids(service.user)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            service.command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=ids and ids[0],
            group=ids and ids[1],
            extra_groups=ids and [],
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


def user_ids(name: str | None) -> tuple[int, int] | None:
    """The user id and group id to run a command as the user `name` (None for this process's own user, or None):
    subprocess's user and group, with no supplementary groups. Only root can start a process as another user."""
    if name is None:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ServiceError(f"there is no user {name!r} to run the service as") from None
    return None if entry.pw_uid == os.geteuid() else (entry.pw_uid, entry.pw_gid)


def _stop_started(process: subprocess.Popen[bytes], path: Path) -> None:
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
                status: int = response.status
                return status == 200
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
    """SIGTERM to each of the service's processes (or its leader_signal to its leader alone), SIGKILL to what is
    left after the grace period; returns when none is left. Processes the record does not prove to be the
    service's are never signalled."""
    first = signal.SIGTERM if record.leader_signal is None else STOP_SIGNALS[record.leader_signal]
    for sig, grace in ((first, grace_seconds), (signal.SIGKILL, 5.0)):
        record.signal(sig, leader_only=sig != signal.SIGKILL and record.leader_signal is not None)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not record.processes():
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(record.pid, os.WNOHANG)  # a zombie leader, if this process started it
                return
            time.sleep(0.2)
    raise ServiceError(f"{record.name}: processes {record.processes()} of group {record.pid} survived SIGKILL")


def running(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, int]:
    """The services started from state_dir that are still alive, by name (their group ids)."""
    return {name: record.pid for name, record in survey(state_dir).running.items()}


@dataclass(frozen=True)
class Stopped:
    names: list[str]  # the services stopped
    stale: list[str]  # one line per state file that identified no running service (removed, nothing signalled)


def down(state_dir: Path = DEFAULT_STATE_DIR) -> Stopped:
    """Stops every service started from state_dir, dagster first (its runs may use Spark and PostgreSQL), then
    the STOPPED_LAST in their order."""
    found = survey(state_dir)
    for name in sorted(found.running, key=lambda name: STOPPED_LAST.index(name) if name in STOPPED_LAST else -1):
        stop(found.running[name])
        (state_dir / f"{name}.json").unlink(missing_ok=True)
    for path in found.stale:
        path.unlink(missing_ok=True)
    return Stopped(sorted(found.running), stale_report(found.stale, removed=True))
