"""The PostgreSQL server of `stedi up`: where the Dagster instance it writes keeps runs, event logs and schedule and
sensor state (through dagster-postgres), as a shared deployment does (dagster.production.yaml).

The system's own PostgreSQL (`initdb` and `postgres` on PATH, or in /usr/lib/postgresql/*/bin as Debian installs
them; `make setup` installs the package), one cluster per services folder:

    {state_dir}/postgres/data      the cluster (`initdb` once; a later `up` reuses it, with its password)
    {state_dir}/postgres/socket    its unix socket (no other user can reach it)
    {state_dir}/postgres.password  the generated password, 0600, readable by the user of `stedi up` only
    {state_dir}/postgres.log       its log (the supervisor's), {state_dir}/postgres-initdb.log initdb's

It listens on 127.0.0.1 only, and every connection (TCP or socket) needs the password (scram-sha-256). The password
is set through initdb's --pwfile and reaches the daemon and the webserver (and so their runs) only in their
environment (DAGSTER_PG_PASSWORD, as dagster.production.yaml reads it): never on a command line, in a log or in
a file other than its own.

PostgreSQL refuses to run as root: when `stedi up` runs as root, the server runs as the user `postgres` (which the
Debian package creates), and its folder belongs to that user; otherwise as the user of `stedi up`. `down` stops it
with SIGINT to its postmaster (a fast shutdown: clients disconnected, a checkpoint, a clean stop), after the
Dagster services.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from stedi_assets.services import supervisor

NAME = "postgres"  # the service's name, as `stedi status` lists it
DEFAULT_PORT = 15432
HOST = "127.0.0.1"
USERNAME = "stedi"  # the cluster's superuser (initdb --username)
DATABASE = "dagster"
PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
SERVER_USER_WHEN_ROOT = "postgres"
READY_LOG = "database system is ready to accept connections"
INSTALL_HINT = "install PostgreSQL (apt-get install postgresql; make setup does)"


def binaries() -> Path:
    """The folder with initdb and postgres: where `initdb` on PATH really is, else the newest of Debian's."""
    candidates = []
    if (found := shutil.which("initdb")) is not None:
        candidates.append(Path(found).resolve().parent)
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)[::-1]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise supervisor.ServiceError(f"PostgreSQL's initdb and postgres were not found: {INSTALL_HINT}")


def server_user() -> str | None:
    """The user the server runs as: `postgres` when this process is root (PostgreSQL refuses root), else None
    (this process's user)."""
    return SERVER_USER_WHEN_ROOT if os.geteuid() == 0 else None


@dataclass(frozen=True)
class Server:
    """One cluster, in a services folder, served on 127.0.0.1:port."""

    state_dir: Path
    port: int = DEFAULT_PORT

    @property
    def folder(self) -> Path:
        return self.state_dir / NAME

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    @property
    def dagster_home(self) -> Path:
        """The DAGSTER_HOME of the instance on this server (stack.postgres_home writes it)."""
        return self.state_dir / "dagster_home"

    @property
    def password_file(self) -> Path:
        return self.state_dir / f"{NAME}.password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def storage(self, password: str | None = None) -> dict[str, object]:
        """The `storage` section of a Dagster instance on this server: the password from the environment
        (PASSWORD_ENV), or the one given (an instance opened in this process: never written to a file)."""
        db = {
            # psycopg2, which setup.py installs (SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3).
            "scheme": "postgresql+psycopg2",
            "hostname": HOST,
            "port": self.port,
            "db_name": DATABASE,
            "username": USERNAME,
            "password": {"env": PASSWORD_ENV} if password is None else password,
        }
        return {"postgres": {"postgres_db": db}}

    # --- the cluster ---------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The cluster, created once (initdb with a new password); a later call finds it and changes nothing."""
        user = server_user()
        ids = supervisor.user_ids(user)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if ids is not None:
            reachable(self.folder, user or "", ids)
            for path in (self.folder, self.socket_dir):
                os.chown(path, *ids)
        if (self.data / "PG_VERSION").exists():
            if not self.password_file.exists():
                raise supervisor.ServiceError(
                    f"the PostgreSQL cluster {self.data} exists but its password file {self.password_file} is gone:"
                    f" remove {self.folder} to start with an empty one (the run history is lost)"
                )
            return
        if self.data.exists():  # an initdb that did not finish
            shutil.rmtree(self.data)
        if not self.password_file.exists():
            descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
        self._initdb(user, ids)

    def _initdb(self, user: str | None, ids: tuple[int, int] | None) -> None:
        # initdb reads the password from a file the server's user can read: a copy in its own 0700 folder,
        # removed as soon as initdb has read it.
        copy = self.folder / "initdb.pwfile"
        copy.unlink(missing_ok=True)
        descriptor = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            if ids is not None:
                os.fchown(out.fileno(), *ids)
            out.write(self.password() + "\n")
        command = [
            str(binaries() / "initdb"),
            f"--pgdata={self.data}",
            f"--username={USERNAME}",
            f"--pwfile={copy}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        log = self.state_dir / f"{NAME}-initdb.log"
        try:
            with log.open("w") as out:
                done = subprocess.run(
                    command,
                    cwd=self.folder,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    user=ids and ids[0],
                    group=ids and ids[1],
                    extra_groups=ids and [],
                    check=False,
                )
        finally:
            copy.unlink(missing_ok=True)
        if done.returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-10:])
            raise supervisor.ServiceError(f"initdb failed (log: {log}):\n{tail}")

    # --- the service -----------------------------------------------------------------------------------------

    def service(self) -> supervisor.Service:
        """postgres in the foreground, on 127.0.0.1:port and a socket in its folder; ready when it accepts
        connections (its log says so)."""
        command = [
            str(binaries() / "postgres"),
            "-D",
            str(self.data),
            "-h",
            HOST,
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "unix_socket_permissions=0700",
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "TZ": "UTC"}
        return supervisor.Service(
            NAME, command, env, ports=(self.port,), ready_log=READY_LOG, user=server_user(), leader_signal="SIGINT"
        )

    def engine(self, dbname: str = DATABASE) -> sqlalchemy.Engine:
        """Connections over TCP with the password (psycopg2, as dagster-postgres connects); the URL object keeps
        the password out of its text."""
        url = sqlalchemy.URL.create(
            "postgresql+psycopg2", USERNAME, self.password(), HOST, self.port, dbname, {"connect_timeout": "5"}
        )
        return sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)

    def create_database(self, timeout: float = 30.0) -> None:
        """The Dagster database, created on the server's first start; retried while the server is starting."""
        engine = self.engine("postgres")
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    # CREATE DATABASE cannot run in a transaction.
                    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                        query = sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name")
                        if connection.execute(query, {"name": DATABASE}).first() is None:
                            connection.execute(sqlalchemy.text(f"CREATE DATABASE {DATABASE}"))
                    return
                except sqlalchemy.exc.OperationalError as error:
                    if time.monotonic() > deadline:
                        reason = str(error.orig).strip()  # psycopg2's message: no URL, no password
                        raise supervisor.ServiceError(f"PostgreSQL on {HOST}:{self.port}: {reason}") from None
                    time.sleep(0.5)
        finally:
            engine.dispose()


def reachable(folder: Path, user: str, ids: tuple[int, int]) -> None:
    """ServiceError unless the user can reach `folder` (search permission on each folder above it)."""
    uid, gid = ids
    for parent in folder.resolve().parents:
        mode = parent.stat()
        if mode.st_uid == uid:
            allowed = bool(mode.st_mode & stat.S_IXUSR)
        elif mode.st_gid == gid:
            allowed = bool(mode.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(mode.st_mode & stat.S_IXOTH)
        if not allowed:
            raise supervisor.ServiceError(
                f"PostgreSQL runs as {user} (it refuses root), who cannot reach {folder}: {parent} is"
                f" {stat.filemode(mode.st_mode)} {pwd.getpwuid(mode.st_uid).pw_name}; give the services folder"
                " (--state-dir) a place that user can reach"
            )
