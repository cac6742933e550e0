"""The Spark session, through dagster-pyspark's lazily built resource."""

from __future__ import annotations

from dagster_pyspark import LazyPySparkResource

from stedi_assets.settings import Settings

LOCAL_SHUFFLE_PARTITIONS = 16


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark settings for a run: local, a standalone master (spark://) or Spark Connect (sc://).

    STEDI_SPARK_CONF entries come last, so a user can override any of these.
    """
    target = (
        {"spark.remote": settings.spark_master}
        if settings.spark_master.startswith("sc://")
        else {"spark.master": settings.spark_master}
    )
    return {
        **target,
        "spark.app.name": "stedi-lakehouse",
        # Epoch-ms columns are plain longs, but keep any timestamp rendering independent of the machine.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        **settings.spark_conf,
    }


def spark_resource(settings: Settings) -> LazyPySparkResource:
    return LazyPySparkResource(spark_config=spark_config(settings))
