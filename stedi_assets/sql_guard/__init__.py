"""The read-only guard of `stedi sql`: a Spark session extension (ReadOnlyGuard.java beside this file) that checks
the statements and plans of read-only sessions, its jar, and the settings that load and enable it.

    python -m stedi_assets.sql_guard      builds the jar if needed and prints its path (make setup runs it)

Spark loads the guard as a session extension (`spark.sql.extensions`) from a jar in `spark.jars`: the local session
of the SQL command and the Spark Connect server of `make up` are both started with it. It acts only in sessions
that set `spark.stedi.sql.readOnly=true` (see `enable`), so the Dagster runs sharing a Connect server are unaffected.

The jar is compiled here with the machine's `javac` against pyspark's own jars (Maven is unreachable) and cached
outside the clone, under a name holding the source's hash and pyspark's version: a changed source (or Spark) builds a
new jar, and a client can tell whether a server runs the guard it expects (`VERSION`).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().with_name("ReadOnlyGuard.java")
CLASS = "stedi.sqlguard.ReadOnlyGuard"
ENABLED = "spark.stedi.sql.readOnly"
VIEWS = "spark.stedi.sql.readOnly.views"
# A refusal's message starts with "[STEDI_READ_ONLY <version>] read-only query refused: <why>".
REFUSAL = re.compile(r"\[STEDI_READ_ONLY (\w+)\] ")
# The guard's identity: the sha256 of its source, also written into the jar (the guard names it in refusals).
VERSION = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
DEFAULT_CACHE = Path.home() / ".cache" / "stedi" / "sql-guard"
# A query the guard must refuse: sent once per session after enabling it, to prove the guard is there and on.
PROBE = "SELECT reflect('java.lang.String', 'valueOf', 0) AS probe"


class GuardError(RuntimeError):
    """The guard cannot be built, or the Spark a command talks to does not run it."""


def jar(cache: Path = DEFAULT_CACHE) -> Path:
    """The guard's jar, compiled on first use for this version of the source and of pyspark (it uses Spark's
    internal APIs, so a jar built against another Spark may not load)."""
    path = cache / f"stedi-sql-guard-{VERSION}-spark-{importlib.metadata.version('pyspark')}.jar"
    if not path.exists():
        _build(path)
    return path


def _build(path: Path) -> None:
    javac = shutil.which("javac") or (os.environ.get("JAVA_HOME", "") and f"{os.environ['JAVA_HOME']}/bin/javac")
    if not javac or not Path(javac).exists():
        raise GuardError("javac not found: `stedi sql` compiles its read-only guard with a JDK (17 or newer)")
    import pyspark  # only the builder needs pyspark's location

    classpath = str(Path(pyspark.__file__).resolve().parent / "jars" / "*")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        classes = Path(tmp) / "classes"
        result = subprocess.run(
            [javac, "--release", "17", "-nowarn", "-cp", classpath, "-d", str(classes), str(SOURCE)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise GuardError(f"compiling {SOURCE.name} failed:\n{result.stderr}")
        partial = Path(tmp) / path.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(classes.rglob("*.class")):
                archive.write(file, file.relative_to(classes).as_posix())
            archive.writestr(f"{CLASS.rsplit('.', 1)[0].replace('.', '/')}/VERSION", VERSION)
        partial.replace(path)  # atomic: a concurrent build leaves one whole jar


def with_guard(conf: dict[str, str], cache: Path = DEFAULT_CACHE) -> dict[str, str]:
    """Spark application settings plus the guard: its jar added to `spark.jars`, its class to
    `spark.sql.extensions` (both comma-separated lists: what the settings already hold is kept)."""

    def plus(key: str, item: str) -> str:
        items = [part for part in conf.get(key, "").split(",") if part.strip()]
        return ",".join(items if item in items else [*items, item])

    return {
        **conf,
        "spark.jars": plus("spark.jars", str(jar(cache))),
        "spark.sql.extensions": plus("spark.sql.extensions", CLASS),
    }


def enable(session: Any, views: list[str]) -> None:
    """Makes `session` read-only for good: from now on every plan it analyzes may read only `views` (temporary
    views the session registered itself), with allowed functions and operators. Also turns off SQL on files
    (`parquet.`/path``), which Spark would otherwise resolve, reading the file, before any check runs.

    Raises GuardError when the Spark behind the session does not refuse the probe query as the guard would: it was
    started without the guard (a foreign Connect server), or with another version of it.
    """
    session.conf.set("spark.sql.runSQLOnFiles", "false")  # the guard refuses to work without it
    session.conf.set(VIEWS, ",".join(views))
    session.conf.set(ENABLED, "true")
    probe(session)


def probe(session: Any) -> None:
    from pyspark.errors import PySparkException

    try:
        _ = session.sql(PROBE).schema  # analysis only: the guard refuses it before anything of it runs
    except PySparkException as error:
        found = REFUSAL.search(str(error))
        if found is None:
            first = str(error).strip().splitlines()[0]
            raise GuardError(f"the read-only guard could not be checked: {first}") from None
        if found[1] != VERSION:
            raise GuardError(
                f"the Spark this command talks to runs read-only guard {found[1]}, not this project's {VERSION}:"
                " restart it (make down && make up); no query was run"
            ) from None
        return
    raise GuardError(
        f"the Spark this command talks to does not run the read-only guard (spark.sql.extensions={CLASS}), so"
        " queries are not run there: start it with `make up` (or unset STEDI_SPARK_MASTER to use a local Spark)"
    )


def refusal(message: str) -> str | None:
    """The reason of a guard's refusal, from an error message; None for any other error."""
    found = REFUSAL.search(message)
    return message[found.end() :].strip() if found else None


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(jar())


if __name__ == "__main__":
    main()
