"""The Spark session, through dagster-pyspark's lazily built resource."""

from __future__ import annotations

from dagster_pyspark import LazyPySparkResource

from stedi_assets.settings import Settings

LOCAL_SHUFFLE_PARTITIONS = 16


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark settings for a run: local, a standalone master (spark://) or Spark Connect (sc://).

    STEDI_SPARK_CONF entries come last, so a user can override any of these.
    """
    master = settings.spark_master
    target = {"spark.remote": master} if master.startswith("sc://") else {"spark.master": master}
    # Spark's default of 200 shuffle partitions is sized for clusters; on one machine the per-task and
    # per-file overhead dominates (the sample's trusted tables came out as ~200 tiny Parquet files each).
    local = {"spark.sql.shuffle.partitions": str(LOCAL_SHUFFLE_PARTITIONS)} if master.startswith("local") else {}
    return {
        **target,
        **local,
        "spark.app.name": "stedi-lakehouse",
        # Epoch-ms columns are plain longs, but keep any timestamp rendering independent of the machine.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        # Classified frames are cached; without this, adaptive execution leaves their partitioning untouched.
        "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
        **settings.spark_conf,
    }


def spark_resource(settings: Settings) -> LazyPySparkResource:
    return LazyPySparkResource(spark_config=spark_config(settings))
