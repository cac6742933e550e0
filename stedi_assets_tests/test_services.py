"""`stedi up` / `stedi down` for real.

- The sensor's run of a new lake is computed on the warm Connect server that `up` started (the session's `make up`:
  shared_servers), and `down` leaves no process of any service behind (checked when it stops, after the last test
  that uses it).
- Each service's processes hold only the environment it needs: read from /proc/<pid>/environ of every process of
  each group, with the pseudonym key and an unrelated secret in the parent's environment.
- The Connect server's Spark UI is off by default and, when asked for, listens on 127.0.0.1 only.
- `down` never signals a process its state file does not prove to be the service's: real unrelated process
  groups named by stale, forged and corrupt state files survive, and the files are reported and removed.
- `up` fails before starting anything when a port is taken, and a port taken by another process after that check
  fails the start (the stranger keeps running).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
from dagster import DagsterEventType

from stedi_assets.cli import services as cli
from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.services import stack, supervisor
from stedi_assets.spark_settings import SparkTarget
from stedi_assets.tables import ALL_TABLES, Zone
from stedi_assets_tests.conftest import S3_SECRET
from stedi_assets_tests.lakes import TEST_KEY, table_frame
from stedi_assets_tests.servers import TEST_SERVER_SETTINGS, UNRELATED_SECRET, Servers, free_port, spark_connect

pytest_plugins = ["stedi_assets_tests.shared_servers"]

LOOPBACK = ip_address("127.0.0.1")


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.decode(errors="replace").split("=", 1) for entry in raw.split(b"\0") if b"=" in entry)


def processes_of(state_dir: Path) -> dict[str, list[int]]:
    return {name: record.processes() for name, record in supervisor.survey(state_dir).running.items()}


def sockets_of(pids: list[int]) -> list[supervisor.Listener]:
    """The listening sockets these processes hold."""
    held = set().union(*supervisor.socket_holders({s.inode for s in supervisor.listeners()}, pids).values())
    return [s for s in supervisor.listeners() if s.inode in held]


def serves_spark_ui(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs/", timeout=5) as response:
            return response.status == 200 and b"Spark Jobs" in response.read()
    except Exception:  # gRPC and Spark RPC ports do not speak HTTP/1.1: whatever they answer is not the UI
        return False


@pytest.mark.services
@pytest.mark.graph
def test_sensor_runs_use_the_connect_server_that_up_started(services_up: Servers) -> None:
    """On the session's `make up` (shared_servers: started with UNRELATED_SECRET in this process's environment, and
    stopped after its last test by `make down`, which dagster_servers checks to leave no process of any group)."""
    servers, state_dir = services_up, services_up.state_dir
    assert os.environ["STEDI_PSEUDONYM_KEY"] == TEST_KEY and os.environ["AWS_SECRET_ACCESS_KEY"] == S3_SECRET
    assert set(supervisor.running(state_dir)) == {"spark-connect", "dagster-daemon", "dagster-webserver"}
    run = servers.initial_load(300)
    messages = [record.user_message for record in servers.instance.all_logs(run.run_id)]
    assert f"Spark: {servers.connect}" in messages  # sc://127.0.0.1:port

    groups = processes_of(state_dir)
    assert len(groups["spark-connect"]) >= 2  # the script and its JVM, at least
    for name, pids in groups.items():
        for pid in pids:
            env = environ_of(pid)
            values = "\0".join(env.values())
            assert UNRELATED_SECRET[0] not in env and UNRELATED_SECRET[1] not in values, (name, pid)
            if name == "spark-connect":  # no STEDI_* setting, and no AWS credentials for a local lake
                assert not [key for key in env if key.startswith("STEDI_") and key != supervisor.SERVICE_ID_ENV]
                assert TEST_KEY not in values and S3_SECRET not in values, pid
                assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
            else:  # the runs compute pseudonyms with the key
                assert env["STEDI_PSEUDONYM_KEY"] == TEST_KEY, (name, pid)
    # The server's UI is off: everything it listens on is on 127.0.0.1, and none of it is the UI.
    listening = sockets_of(groups["spark-connect"])
    assert listening and {s.address for s in listening} == {LOOPBACK}
    assert not [s.port for s in listening if serves_spark_ui(s.port)]
    # The tables the load committed (later tests of the session may add versions) hold the generator's counts.
    materializations = [
        event.asset_materialization
        for event in servers.instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    ]
    committed = {
        m.asset_key.to_user_string(): m.metadata["table_version"].value
        for m in materializations
        if "table_version" in m.metadata  # every table's (erasure_receipts is files, not a table)
    }
    expected = json.loads((servers.lake / EXPECTED_FILE).read_text())["tables"]["since"]
    for name, table in ALL_TABLES.items():
        if table.zone in (Zone.TRUSTED, Zone.CURATED):
            assert len(table_frame(servers.lake, table, committed[name])) == expected[name], name


@pytest.mark.services
def test_the_spark_ui_when_asked_for_listens_on_127_0_0_1_only(tmp_path: Path) -> None:
    ui_port = free_port()
    state_dir = tmp_path / "services"
    with spark_connect(state_dir, ui_port=ui_port):
        listening = sockets_of(processes_of(state_dir)["spark-connect"])
        assert [s.address for s in listening if s.port == ui_port] == [LOOPBACK]
        assert {s.address for s in listening} == {LOOPBACK}
        assert serves_spark_ui(ui_port)


def test_the_spark_ui_setting() -> None:
    off = stack.spark_connect(TEST_SERVER_SETTINGS, 15002, environ={})
    assert "spark.ui.enabled=false" in off.command
    on = replace(TEST_SERVER_SETTINGS, conf={"spark.ui.enabled": "true"})
    assert "spark.ui.enabled=true" in stack.spark_connect(on, 15002, environ={}).command
    # On a cluster master, SPARK_LOCAL_IP (the UI's address) would move the driver out of the executors' reach.
    cluster = replace(on, master="spark://10.0.0.5:7077")
    with pytest.raises(supervisor.ServiceError, match=r"set spark\.driver\.host"):
        stack.spark_connect(cluster, 15002, environ={})
    assert "SPARK_LOCAL_IP" not in stack.spark_connect(replace(cluster, conf={}), 15002, environ={}).env
    reachable = replace(cluster, conf={"spark.ui.enabled": "true", "spark.driver.host": "10.0.0.9"})
    assert stack.spark_connect(reachable, 15002, environ={}).env["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_the_allowlists_pick_what_each_service_needs() -> None:
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "JAVA_HOME": "/usr/lib/jvm/java-17",
        "SPARK_DAEMON_MEMORY": "1g",
        "STEDI_PSEUDONYM_KEY": TEST_KEY,
        "STEDI_LAKE_ROOT": "s3://lake/prefix",
        "DAGSTER_HOME": "/srv/dagster",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_SECRETS_OF_SOMETHING_ELSE": "not a standard AWS variable",
        UNRELATED_SECRET[0]: UNRELATED_SECRET[1],
    }
    common = {"PATH", "HOME", "JAVA_HOME", "SPARK_DAEMON_MEMORY"}
    local = stack.spark_connect(TEST_SERVER_SETTINGS, 15002, environ=parent).env
    assert local.keys() == common | {"SPARK_HOME", "SPARK_LOCAL_IP"}
    s3 = stack.spark_connect(replace(TEST_SERVER_SETTINGS, lake_root="s3://lake/prefix"), 15002, environ=parent)
    assert s3.env.keys() == common | {"SPARK_HOME", "SPARK_LOCAL_IP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    dagster = stack.dagster_environment(parent, {"STEDI_SPARK_MASTER": "sc://127.0.0.1:15002"})
    assert dagster.keys() == common | {
        "STEDI_PSEUDONYM_KEY",
        "STEDI_LAKE_ROOT",
        "STEDI_SPARK_MASTER",
        "DAGSTER_HOME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }


# --- state files that prove nothing ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stranger() -> Iterator[list[int]]:
    """An unrelated process group (two `sleep`s in a session of their own); yields its pids, leader first."""
    process = subprocess.Popen(["sh", "-c", "sleep 600 & exec sleep 601"], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(members := supervisor._group(process.pid)) < 2 or supervisor.command_line(process.pid)[0] != "sleep":
        assert time.monotonic() < deadline, "the stranger did not start"
        time.sleep(0.05)
    try:
        yield [process.pid, *sorted(set(members) - {process.pid})]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def identities(pids: list[int]) -> list[tuple[int, int, int] | None]:
    """(pid, group, start time) of each process that is alive (not a zombie), None for one that is not."""
    stats = [supervisor.process_stat(pid) for pid in pids]
    return [(s.pid, s.pgid, s.start_time) if s and s.state != "Z" else None for s in stats]


def record_of(pid: int, **changes) -> dict:
    """A state record that describes `pid` exactly (a service id included), then `changes`."""
    stat = supervisor.process_stat(pid)
    return {
        "name": "spark-connect",
        "pid": pid,
        "start_time": stat.start_time,
        "boot_id": supervisor.boot_id(),
        "cmdline": supervisor.command_line(pid),
        "service_id": "0123456789abcdef0123456789abcdef",
        "ports": [],
    } | changes


FORGED = {
    # The pid is the stranger's; some other process started on it before (the usual stale file after pid reuse).
    "other start time": lambda pid: record_of(pid, start_time=supervisor.process_stat(pid).start_time - 1),
    "other command": lambda pid: record_of(pid, cmdline=["/opt/spark/sbin/spark-daemon.sh", "submit"]),
    "before a reboot": lambda pid: record_of(pid, boot_id="00000000-0000-0000-0000-000000000000"),
}


@pytest.mark.parametrize("case", FORGED)
def test_down_leaves_alone_a_process_group_a_state_file_no_longer_describes(
    case: str, stranger: list[int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = identities(stranger)
    path = tmp_path / "spark-connect.json"
    path.write_text(json.dumps(FORGED[case](stranger[0])))

    assert supervisor.running(tmp_path) == {}
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err.startswith(f"stale state file {path}: ")
    assert path.exists()  # status only reports

    stopped = supervisor.down(tmp_path)
    assert stopped.names == [] and len(stopped.stale) == 1 and stopped.stale[0].startswith(f"stale state file {path}")
    assert not path.exists()
    assert identities(stranger) == before  # alive, and the same processes


def test_down_leaves_alone_the_stranger_on_the_pid_of_a_service_that_exited(stranger: list[int], tmp_path: Path):
    """A real record of a real service, whose pid then belongs to another process (as after pid reuse)."""
    before = identities(stranger)
    supervisor.launch(supervisor.Service("toy", ["sleep", "300"], {"PATH": os.environ["PATH"]}), tmp_path)
    record = json.loads((tmp_path / "toy.json").read_text())
    assert supervisor.down(tmp_path).names == ["toy"]
    (tmp_path / "toy.json").write_text(json.dumps(record | {"pid": stranger[0]}))

    stopped = supervisor.down(tmp_path)
    assert stopped.names == [] and "now belongs to another process" in stopped.stale[0]
    assert identities(stranger) == before


def corrupt_files(stranger_pid: int) -> dict[str, bytes]:
    own_group = os.getpgrp()  # this test's own process group: signalling it would stop the test run
    live = record_of(stranger_pid)
    return {
        "empty.pid": b"",
        "garbage.pid": b"not a pid\n",
        "negative.pid": b"-1",
        "negative-group.pid": f"-{own_group}".encode(),
        "zero.pid": b"0",
        "init.pid": b"1",
        "huge.pid": str(2**64).encode(),
        "fraction.pid": b"12.5",
        "binary.pid": b"\xff\xfe\x00\x01",
        "own-group.pid": str(own_group).encode(),  # what the earlier bare pid files allowed to be signalled
        "stranger.pid": str(stranger_pid).encode(),
        "empty.json": b"",
        "truncated.json": json.dumps(live).encode()[:40],
        "list.json": b"[1, 2]",
        "object.json": b"{}",
        "pid-text.json": json.dumps(live | {"pid": str(stranger_pid)}).encode(),
        "pid-bool.json": json.dumps(live | {"pid": True}).encode(),
        "pid-negative.json": json.dumps(live | {"pid": -stranger_pid}).encode(),
        "pid-zero.json": json.dumps(live | {"pid": 0}).encode(),
        "pid-init.json": json.dumps(live | {"pid": 1}).encode(),
        "pid-huge.json": json.dumps(live | {"pid": 2**63}).encode(),
        "pid-above-max.json": json.dumps(live | {"pid": supervisor.pid_max() + 1}).encode(),
        "no-cmdline.json": json.dumps(live | {"cmdline": []}).encode(),
        "no-service-id.json": json.dumps({k: v for k, v in live.items() if k != "service_id"}).encode(),
        "own-group.json": json.dumps(live | {"pid": own_group, "start_time": 0}).encode(),
    }


def test_corrupt_state_files_are_reported_removed_and_signal_nobody(stranger: list[int], tmp_path: Path) -> None:
    before = identities(stranger)
    files = corrupt_files(stranger[0])
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)

    assert supervisor.running(tmp_path) == {}
    stopped = supervisor.down(tmp_path)
    assert stopped.names == []
    assert sorted(line.split(":", 1)[0] for line in stopped.stale) == sorted(
        f"stale state file {tmp_path / name}" for name in files
    )
    assert all(line.endswith("(removed; nothing signalled)") for line in stopped.stale)
    assert list(tmp_path.iterdir()) == []
    assert identities(stranger) == before


# --- services of ours ------------------------------------------------------------------------------------------


def toy(name: str = "toy", command: list[str] | None = None, ports: tuple[int, ...] = ()) -> supervisor.Service:
    return supervisor.Service(name, command or ["sleep", "300"], {"PATH": os.environ["PATH"]}, ports=ports)


def listen_command(port: int) -> list[str]:
    code = (
        "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
        f" s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(600)"
    )
    return [sys.executable, "-c", code]


def start_listener(port: int) -> subprocess.Popen:
    """A process unrelated to any service (own session) listening on 127.0.0.1:port."""
    process = subprocess.Popen(listen_command(port), start_new_session=True)
    deadline = time.monotonic() + 10
    while not supervisor.listening_inodes(port):
        assert time.monotonic() < deadline and process.poll() is None, "the listener did not start"
        time.sleep(0.05)
    return process


def test_up_refuses_to_start_over_running_services(tmp_path: Path) -> None:
    pid = supervisor.launch(toy(), tmp_path)
    with pytest.raises(supervisor.ServiceError, match="already running"):
        stack.up(TEST_SERVER_SETTINGS, tmp_path)
    assert supervisor.running(tmp_path) == {"toy": pid}
    assert supervisor.down(tmp_path).names == ["toy"]
    with pytest.raises(ProcessLookupError):  # no process of the group is left, not even a zombie
        os.killpg(pid, 0)


def test_a_service_whose_leader_exited_is_still_stopped_through_its_service_id(tmp_path: Path) -> None:
    pid = supervisor.launch(toy(command=["sh", "-c", "sleep 300 & sleep 0.5"]), tmp_path)
    deadline = time.monotonic() + 10
    while supervisor.process_stat(pid) is not None and supervisor.process_stat(pid).state != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (orphan,) = supervisor._group(pid)  # the leader has exited; its child is left in the group
    assert supervisor.running(tmp_path) == {"toy": pid}
    assert supervisor.down(tmp_path).names == ["toy"]
    assert supervisor.process_stat(orphan) is None or supervisor.process_stat(orphan).state == "Z"


@pytest.mark.parametrize("taken", ["spark-connect", "dagster-webserver"])
def test_up_starts_nothing_when_a_port_is_taken(taken: str, tmp_path: Path) -> None:
    ports = {"spark-connect": free_port(), "dagster-webserver": free_port()}
    holder = start_listener(ports[taken])
    try:
        with pytest.raises(supervisor.ServiceError) as error:
            stack.up(TEST_SERVER_SETTINGS, tmp_path, ports["spark-connect"], ports["dagster-webserver"])
        message = str(error.value)
        assert message.startswith(f"port {ports[taken]} (for {taken}) is already in use by pid {holder.pid} (")
        assert sys.executable in message and "\n" not in message
        assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
        assert list(tmp_path.glob("*.json")) == [] and holder.poll() is None
    finally:
        holder.kill()
        holder.wait()


def test_a_port_taken_by_another_process_after_the_check_fails_the_start(tmp_path: Path) -> None:
    """The service is slow to listen; a stranger takes its port meanwhile. The start fails naming the stranger,
    the service's group is stopped, the stranger keeps running."""
    port = free_port()
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            supervisor.launch(toy(ports=(port,)), tmp_path)  # `sleep` never listens
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=start)
    thread.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "toy.json").exists():  # written once the service has started
        assert time.monotonic() < deadline
        time.sleep(0.02)
    group = json.loads((tmp_path / "toy.json").read_text())["pid"]
    holder = start_listener(port)
    try:
        thread.join(30)
        assert not thread.is_alive()
        (error,) = outcome
        assert isinstance(error, supervisor.ServiceError)
        assert str(error).startswith(f"port {port} is answered by pid {holder.pid} (")
        assert str(error).endswith(f"not by toy (process group {group})")
        assert supervisor._group(group) == [] and holder.poll() is None
        assert not (tmp_path / "toy.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_service_counts_as_started_once_its_own_group_listens_on_its_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    command = ["sh", "-c", f"sleep 1; exec {shlex.join(listen_command(port))}"]
    started = time.monotonic()
    pid = supervisor.launch(toy(command=command, ports=(port,)), tmp_path)
    try:
        assert time.monotonic() - started >= 1
        (listener,) = [s for s in supervisor.listeners() if s.port == port]
        assert supervisor.socket_holders({listener.inode}) == {pid: {listener.inode}}  # the leader, after its exec
        assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
        assert capsys.readouterr().out == f"{'toy':<18} pid {pid}  ports {port}\n"
    finally:
        supervisor.down(tmp_path)


def test_a_connect_server_is_not_started_for_a_remote_connect_master() -> None:
    with pytest.raises(supervisor.ServiceError, match="already names a Connect server"):
        stack.spark_connect(SparkTarget(master="sc://spark.example:15002"), 15002)
