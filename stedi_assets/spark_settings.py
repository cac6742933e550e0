"""The Spark settings the project uses, whoever builds the session: a run (resources/spark.py), the Connect
server `stedi up` starts, or `stedi sql`. No Dagster here, so the light commands stay light.

Targets: local, a cluster's master (spark://, k8s://, yarn) or a Spark Connect server (sc://). What follows
from the lake (s3a for an s3:// root) is derived from the root actually used.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stedi_assets.lake.storage import is_s3

DEFAULT_MASTER = "local[*]"
PSEUDONYM_KEY_ENV = "STEDI_PSEUDONYM_KEY"
# What a JVM (and the Python workers it starts) must never inherit: Spark has no use for it, and a process
# environment is readable (/proc/<pid>/environ, the executors' environment in Spark's UI, crash dumps).
SECRET_ENV = (PSEUDONYM_KEY_ENV,)
# Where a local run's Spark keeps its disk cache and shuffle files (personal rows): a folder per process.
SCRATCH_ROOT = Path(tempfile.gettempdir()) / "stedi-spark"
LOCAL_SHUFFLE_PARTITIONS = 16
# Tried in order: the AWS_* environment variables, ~/.aws profiles, then the EC2/ECS instance role.
CREDENTIAL_PROVIDERS = (
    "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    "com.amazonaws.auth.profile.ProfileCredentialsProvider",
    "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
)


# What a master may be: local, local[N], local[*], local[N,F] (F: retries of a failed task), local-cluster[...], a
# standalone master (spark://host:port, several for high availability), Kubernetes, YARN, a Connect server.
MASTER_PATTERN = re.compile(
    r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|local-cluster\[\d+,\d+,\d+\]|(spark|k8s|sc)://\S+|yarn"
)
MASTER_FIX = (
    "set it to local[*] (the default), local[N], spark://HOST:7077, k8s://https://HOST:6443, yarn, or sc://HOST:15002"
    " for a Spark Connect server"
)
CONF_FIX = 'set it to a JSON object of Spark settings, e.g. {"spark.driver.memory": "4g"}, or leave it empty'
JSON_KINDS = {list: "a JSON array", str: "a JSON string", int: "a JSON number", float: "a JSON number"}


class SparkSettingError(ValueError):
    """A Spark setting the project cannot use; the message is one line: the setting, what is wrong, the fix."""


def parse_conf(text: str) -> dict[str, str]:
    """STEDI_SPARK_CONF: a JSON object of Spark settings. Its text is never quoted in an error: it may hold
    credentials (spark.hadoop.fs.s3a.secret.key)."""
    if not text.strip():
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        raise SparkSettingError(
            f"STEDI_SPARK_CONF / spark.conf is not JSON ({error.msg.lower()} at character {error.pos}): {CONF_FIX}"
        ) from None
    if not isinstance(conf, dict):
        kind = "JSON null" if conf is None else JSON_KINDS.get(type(conf), "a JSON true or false")
        raise SparkSettingError(f"STEDI_SPARK_CONF / spark.conf is {kind}, not an object: {CONF_FIX}")
    return {str(key): str(value) for key, value in conf.items()}


def check_master(master: str) -> str:
    """STEDI_SPARK_MASTER (or the resource's `spark.master`): a master Spark accepts, else a SparkSettingError.
    A Connect URL's token, if any, is never quoted."""
    if not MASTER_PATTERN.fullmatch(master):
        shown = re.sub(r"(token=)[^;]*", r"\1...", master)
        kind = "is empty" if not master.strip() else "is not a Spark master"
        raise SparkSettingError(f"STEDI_SPARK_MASTER / spark.master={shown!r} {kind}: {MASTER_FIX}")
    return master


def is_connect(master: str) -> bool:
    return master.startswith("sc://")


def session_config(master: str, conf: dict[str, str], lake_root: str) -> dict[str, str]:
    """The settings a run's session is built with. `conf` comes last, so a user can override any of these."""
    if is_connect(master):
        # A Connect client only has a session: the server owns the application (jars, memory, s3a, UI), and
        # pyspark warns about every application setting a client sends. Those go to the server's own start.
        app = application_config(master, conf, lake_root)
        return {"spark.remote": master, **{k: v for k, v in app.items() if k.startswith("spark.sql.")}, **conf}
    return {"spark.master": master, **application_config(master, conf, lake_root), **conf}


def application_config(master: str, conf: dict[str, str], lake_root: str) -> dict[str, str]:
    """What this project sets on a Spark application, whoever starts it: a run (local or a cluster's master)
    or, for sc:// runs, the Spark Connect server (`stedi up`)."""
    local = master.startswith("local")
    ui = conf.get("spark.ui.enabled", "false").lower() == "true"
    return {
        # Spark's default of 200 shuffle partitions is sized for clusters; on one machine the per-task and
        # per-file overhead dominates (the sample's tables came out as ~200 tiny Parquet files each).
        **({"spark.sql.shuffle.partitions": str(LOCAL_SHUFFLE_PARTITIONS)} if local else {}),
        # In local mode the driver is the only executor: an automatic broadcast builds its hash table on the
        # driver's heap, outside Spark's memory accounting, from a size guessed by statistics, which a 1 GB heap
        # cannot afford to get wrong. Joins the code marks with F.broadcast (small key lists) still broadcast;
        # everything else sort-merges and can spill to disk. No cost measured at 1e5 (see README).
        **({"spark.sql.autoBroadcastJoinThreshold": "-1"} if local else {}),
        "spark.app.name": "stedi-lakehouse",
        # Epoch-ms columns are plain longs, but keep any timestamp rendering independent of the machine.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        # The UI shows every plan, literals included, on every interface (Spark binds it to SPARK_LOCAL_IP, or
        # 0.0.0.0): off unless asked for; a local run that asks gets it on 127.0.0.1 (`Spark.session`).
        "spark.ui.enabled": str(ui).lower(),
        "spark.sql.adaptive.enabled": "true",
        # A cached frame is built in column batches on the heap, outside Spark's memory accounting, while the join
        # that feeds it holds its sort memory; at 55 million lines, growing 10,000-row batches (Spark's default)
        # is where step_trainer_trusted ran out of the default 1 GB heap, twice.
        "spark.sql.inMemoryColumnarStorage.batchSize": "2000",
        # Classified frames are cached; without this, adaptive execution leaves their partitioning untouched.
        "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
        # Writers stage files for a Delta commit: no _SUCCESS markers in the table folders.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        **(s3a_config(conf) if is_s3(lake_root) else {}),
    }


def s3a_config(conf: dict[str, str]) -> dict[str, str]:
    """Hadoop s3a settings for an s3:// lake. Credentials stay out: the default provider chain reads them
    from the environment (or the instance profile), so they never appear in run config, logs or the UI."""
    from stedi_assets.s3a_jars import s3a_jars

    user_jars = {"spark.jars", "spark.jars.packages"} & conf.keys()
    jars = {} if user_jars else {"spark.jars": ",".join(str(p) for p in s3a_jars())}
    hadoop = {
        # hadoop-aws 3.3.6 on pyspark's Hadoop 3.5 client: durations must be plain numbers (ms / s).
        "fs.s3a.connection.establish.timeout": "30000",
        "fs.s3a.connection.timeout": "200000",
        "fs.s3a.connection.ttl": "300000",
        "fs.s3a.threads.keepalivetime": "60",
        "fs.s3a.multipart.purge.age": "86400",
        "parquet.hadoop.vectored.io.enabled": "false",
        # pyspark's Hadoop 3.5 defaults name AWS SDK v2 providers; hadoop-aws 3.3.6 speaks SDK v1.
        "fs.s3a.aws.credentials.provider": ",".join(CREDENTIAL_PROVIDERS),
    }
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        hadoop["fs.s3a.endpoint.region"] = region
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint:
        # An S3-compatible server (MinIO, moto, LocalStack): path-style URLs, its own scheme, and no ETag-based
        # change detection (such servers' ETags do not always follow S3's rules).
        hadoop |= {
            "fs.s3a.endpoint": endpoint,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
            "fs.s3a.change.detection.mode": "none",
        }
    return jars | {f"spark.hadoop.{key}": value for key, value in hadoop.items()}


@dataclass(frozen=True)
class SparkTarget:
    """What a Connect server runs: the master (STEDI_SPARK_MASTER), extra settings (STEDI_SPARK_CONF) and the
    lake it serves (STEDI_LAKE_ROOT: s3a settings for an s3:// root)."""

    master: str = DEFAULT_MASTER
    conf: dict[str, str] = field(default_factory=dict)
    lake_root: str = ""

    @classmethod
    def from_env(cls) -> SparkTarget:
        return cls(
            master=check_master(os.environ.get("STEDI_SPARK_MASTER", "").strip() or DEFAULT_MASTER),
            conf=parse_conf(os.environ.get("STEDI_SPARK_CONF", "")),
            lake_root=os.environ.get("STEDI_LAKE_ROOT", "").strip(),
        )

    @property
    def ui(self) -> bool:
        """The Spark UI shows every plan: off unless STEDI_SPARK_CONF turns it on (spark.ui.enabled=true)."""
        return self.conf.get("spark.ui.enabled", "false").lower() == "true"


@contextmanager
def without_secrets() -> Iterator[None]:
    """The process environment without SECRET_ENV while the block runs: start a JVM (a SparkSession) inside it.
    The JVM copies the environment when it starts, so the secrets come back for this process afterwards."""
    saved = {name: os.environ.pop(name) for name in SECRET_ENV if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def scratch_dir() -> Path:
    """A folder of this process's own for Spark's scratch files (`spark.local.dir`: the disk cache and shuffle
    files, which hold rows of personal data while a run works), readable by its user only and removed when the
    process exits. Folders of processes that died without removing theirs (a kill) are removed first."""
    remove_stale_scratch()
    SCRATCH_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=SCRATCH_ROOT))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def remove_stale_scratch() -> list[Path]:
    """Removes the scratch folders whose process is gone; returns them."""
    stale = []
    for folder in sorted(SCRATCH_ROOT.glob("*-*")) if SCRATCH_ROOT.is_dir() else []:
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            stale.append(folder)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
