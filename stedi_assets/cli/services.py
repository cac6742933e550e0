"""Long-lived services on one machine: a PostgreSQL server for the Dagster instance, a Spark Connect server that
keeps Spark warm between runs, the Dagster daemon (sensors, run queue) and the Dagster webserver (UI). `make up`
starts them, `make down` stops them.

    stedi up [--no-connect] [--connect-port 15002] [--webserver-port 3000] [--state-dir .services]
             [--no-postgres] [--postgres-port 15432]
    stedi down | status                                                    [--state-dir .services]

The instance: the daemon and webserver keep runs, event logs and schedule/sensor state in PostgreSQL (through
dagster-postgres), in DAGSTER_HOME={state_dir}/dagster_home; $DAGSTER_HOME (.dagster_home under make) stays the
SQLite instance of `make run` and `make test`. The server is the system's PostgreSQL, on 127.0.0.1 only, its data in
{state_dir}/postgres (created by the first `up`, reused by the next), its generated password in
{state_dir}/postgres.password (0600), given to the daemon and webserver in their environment only. As root, it runs
as the user postgres. --no-postgres: no server, the instance in $DAGSTER_HOME (or .dagster_home) on SQLite.

With the Connect server up, the daemon's and webserver's runs use it (STEDI_SPARK_MASTER=sc://...), so a
sensor-triggered run pays no JVM start-up. The server itself runs Spark on STEDI_SPARK_MASTER (local[*] unless
it names a cluster) with the lake's s3a settings, so an s3:// lake works through it too.

Ports: `up` fails before starting anything if a port it needs is taken (naming the process that holds it), and
a service counts as started only when every listening socket on its ports belongs to its own process group.

Processes: each service runs in its own process group, its output in {state_dir}/{name}.log. `down` signals only
processes that {state_dir}/{name}.json proves to be the service's; a state file that proves nothing is reported
and removed, and no signal is sent (stedi_assets/services/supervisor.py says how).

Environment: each service gets only the variables it needs, from an allowlist. The Connect server gets no
STEDI_* setting (the pseudonym key stays out of it), and AWS_* only for an s3:// lake. Its Spark UI is off unless
STEDI_SPARK_CONF={"spark.ui.enabled": "true"}, and then listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

from stedi_assets.cli import settings
from stedi_assets.lake.store import SAMPLE_LAKE
from stedi_assets.sample import SAMPLE_CUSTOMERS, SAMPLE_SEED, generate
from stedi_assets.services import postgres, stack, supervisor
from stedi_assets.spark_settings import SparkTarget, is_connect, remove_stale_scratch


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=supervisor.DEFAULT_STATE_DIR)
    parser.add_argument("--no-connect", action="store_true", help="runs start their own Spark, as without `up`")
    # Ports are read as text and checked with the other settings: a bad one is one line, as a bad variable is.
    parser.add_argument("--no-postgres", action="store_true", help="the instance on SQLite in $DAGSTER_HOME")
    defaults = {"--connect-port": stack.CONNECT_PORT, "--webserver-port": stack.WEBSERVER_PORT}
    for option, default in (defaults | {"--postgres-port": postgres.DEFAULT_PORT}).items():
        parser.add_argument(option, default=str(default), metavar="PORT", help="default: %(default)s")
    settings.add_debug_option(parser)
    args = parser.parse_args(argv)
    if args.action == "up":
        try:  # every setting checked before anything starts
            target, connect_port, webserver_port, postgres_port = up_settings(args)
        except settings.SETTING_ERRORS as error:
            return settings.report(prog or "stedi up", error, args.debug)
    try:
        if args.action == "up":
            for line in supervisor.remove_stale(args.state_dir):
                print(line, file=sys.stderr)
            server = None if postgres_port is None else postgres.Server(args.state_dir, postgres_port)
            # With PostgreSQL, `stack.up` writes the instance in {state_dir}/dagster_home.
            home = {} if server is not None or "DAGSTER_HOME" in os.environ else _default_dagster_home()
            pids = stack.up(target, args.state_dir, connect_port, webserver_port, home, server=server)
            for name, pid in pids.items():
                print(f"{name:<18} pid {pid}  log {args.state_dir / name}.log")
            if server is not None:
                print(f"PostgreSQL         {postgres.HOST}:{server.port}, data {server.data}")
                print(f"Dagster instance   {server.dagster_home} (runs, events, schedules in PostgreSQL)")
            if connect_port is not None:
                print(f"Spark Connect      sc://127.0.0.1:{connect_port} (runs started by the daemon use it)")
                if target.ui:
                    ui_port = supervisor.survey(args.state_dir).running["spark-connect"].ports[1]
                    print(f"Spark UI           http://127.0.0.1:{ui_port} (127.0.0.1 only)")
            print(f"Dagster UI         http://127.0.0.1:{webserver_port}")
        elif args.action == "down":
            stopped = supervisor.down(args.state_dir)
            for line in stopped.stale:
                print(line, file=sys.stderr)
            print(f"stopped: {', '.join(stopped.names)}" if stopped.names else "nothing was running")
            if scratch := remove_stale_scratch():  # of runs that were killed: they hold rows of personal data
                print(f"removed the Spark scratch folders of {len(scratch)} run(s) that ended without removing them")
        else:
            found = supervisor.survey(args.state_dir)
            for name, record in found.running.items():
                ports = f"  ports {', '.join(map(str, record.ports))}" if record.ports else ""
                print(f"{name:<18} pid {record.pid}{ports}")
            if not found.running:
                print("nothing is running")
            for line in supervisor.stale_report(found.stale, removed=False):
                print(line, file=sys.stderr)
    except supervisor.ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def up_settings(args: argparse.Namespace) -> tuple[SparkTarget, int | None, int, int | None]:
    """What `up` starts with, every setting checked before anything starts: the Spark target, the Connect server's
    port (None: no server to start), the webserver's and PostgreSQL's (None: --no-postgres), and the settings of
    the runs the daemon and webserver will start (checked as `stedi run` checks them). The built-in sample lake is
    generated first when it is the lake and is missing, for the sensor to find."""
    target = SparkTarget.from_env()
    # An sc:// STEDI_SPARK_MASTER names a Connect server elsewhere: runs use it, none is started here.
    connect = not args.no_connect and not is_connect(target.master)
    ports = {"--connect-port": port(args.connect_port, "--connect-port")} if connect else {}
    ports["--webserver-port"] = port(args.webserver_port, "--webserver-port")
    if not args.no_postgres:
        ports["--postgres-port"] = port(args.postgres_port, "--postgres-port")
        try:
            postgres.binaries()
            supervisor.user_ids(postgres.server_user())
        except supervisor.ServiceError as error:
            raise settings.SettingError(f"{error}; or give --no-postgres (the instance on SQLite)") from None
    for first, second in itertools.combinations(ports, 2):
        if ports[first] == ports[second]:
            raise settings.SettingError(f"{first} and {second} are both {ports[first]}: give each a port of its own")
    if connect and target.ui:
        ports["STEDI_SPARK_CONF's spark.ui.port"] = port(
            target.conf.get("spark.ui.port", str(stack.SPARK_UI_PORT)), "STEDI_SPARK_CONF's spark.ui.port"
        )
    if not target.lake_root and not SAMPLE_LAKE.exists():
        generate(SAMPLE_LAKE, SAMPLE_CUSTOMERS, SAMPLE_SEED)
    settings.run_settings()
    if not supervisor.running(args.state_dir):  # else `stack.up` says they run already
        for name, number in ports.items():
            if (holder := supervisor.port_holder(number)) is not None:
                raise settings.SettingError(
                    f"{name}={number} is a port in use, by {holder}: give another free port, or stop that process"
                )
    return target, ports.get("--connect-port"), ports["--webserver-port"], ports.get("--postgres-port")


def port(text: str, name: str) -> int:
    """A TCP port given as text (an option, or a Spark setting), else a SettingError naming it."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise settings.SettingError(f"{name}={text!r} is not a port number: give a whole number from 1 to 65535")
    return int(text)


def _default_dagster_home() -> dict[str, str]:
    """DAGSTER_HOME unset (`stedi up` outside make): the Makefile's .dagster_home, with dagster.yaml if missing."""
    if not (stack.DEFAULT_DAGSTER_HOME / "dagster.yaml").exists():
        return stack.dagster_home(stack.DEFAULT_DAGSTER_HOME)
    return {"DAGSTER_HOME": str(stack.DEFAULT_DAGSTER_HOME)}


if __name__ == "__main__":
    sys.exit(main())
