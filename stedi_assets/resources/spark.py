"""The Spark session, through dagster-pyspark's lazily built resource."""

from __future__ import annotations

from dagster_pyspark import LazyPySparkResource

from stedi_assets.s3a_jars import s3a_jars
from stedi_assets.settings import Settings

LOCAL_SHUFFLE_PARTITIONS = 16
# Tried in order: the AWS_* environment variables, ~/.aws profiles, then the EC2/ECS instance role.
CREDENTIAL_PROVIDERS = (
    "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    "com.amazonaws.auth.profile.ProfileCredentialsProvider",
    "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
)


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark settings for a run: local, a cluster's master (spark://, k8s://, yarn) or Spark Connect (sc://).

    STEDI_SPARK_CONF entries come last, so a user can override any of these.
    """
    master = settings.spark_master
    if is_connect(master):
        # A Connect client only has a session: the server owns the application (jars, memory, s3a, UI), and
        # pyspark warns about every application setting a client sends. Those go to the server's own start.
        session = {key: value for key, value in application_config(settings).items() if key.startswith("spark.sql.")}
        return {"spark.remote": master, **session, **settings.spark_conf}
    return {"spark.master": master, **application_config(settings), **settings.spark_conf}


def application_config(settings: Settings) -> dict[str, str]:
    """What this project sets on a Spark application, whoever starts it: a run (local or spark:// master)
    or, for sc:// runs, the Spark Connect server (`make up`)."""
    # Spark's default of 200 shuffle partitions is sized for clusters; on one machine the per-task and
    # per-file overhead dominates (the sample's trusted tables came out as ~200 tiny Parquet files each).
    master = settings.spark_master
    local = {"spark.sql.shuffle.partitions": str(LOCAL_SHUFFLE_PARTITIONS)} if master.startswith("local") else {}
    return {
        **local,
        "spark.app.name": "stedi-lakehouse",
        # Epoch-ms columns are plain longs, but keep any timestamp rendering independent of the machine.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        # Classified frames are cached; without this, adaptive execution leaves their partitioning untouched.
        "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
        **(s3a_config(settings) if settings.uses_s3 else {}),
    }


def is_connect(master: str) -> bool:
    return master.startswith("sc://")


def s3a_config(settings: Settings) -> dict[str, str]:
    """Hadoop s3a settings for an s3:// lake. Credentials stay out: the default provider chain reads them
    from the environment (or the instance profile), so they never appear in run config, logs or the UI."""
    user_jars = {"spark.jars", "spark.jars.packages"} & settings.spark_conf.keys()
    conf = {} if user_jars else {"spark.jars": ",".join(str(p) for p in s3a_jars())}
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
    if settings.aws_region:
        hadoop["fs.s3a.endpoint.region"] = settings.aws_region
    if settings.aws_endpoint_url:
        # An S3-compatible server (MinIO, moto, LocalStack): path-style URLs, its own scheme, and no ETag-based
        # change detection (such servers' ETags do not always follow S3's rules).
        hadoop |= {
            "fs.s3a.endpoint": settings.aws_endpoint_url,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": str(settings.aws_endpoint_url.startswith("https")).lower(),
            "fs.s3a.change.detection.mode": "none",
        }
    return conf | {f"spark.hadoop.{key}": value for key, value in hadoop.items()}


def spark_resource(settings: Settings) -> LazyPySparkResource:
    return LazyPySparkResource(spark_config=spark_config(settings))
