"""The Spark session of a run, as a Dagster resource: master and extra settings are config (defaults from
STEDI_SPARK_MASTER and STEDI_SPARK_CONF, editable per run in the launchpad); the session is built on first use,
from the root the run actually uses (spark_settings.py), so a run that needs no Spark starts none.
"""

import os
from typing import Any

from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from dagster_pyspark.resources import spark_session_from_config
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from stedi_assets.resources.lake import Lake
from stedi_assets.spark_settings import (
    DEFAULT_MASTER,
    check_master,
    parse_conf,
    scratch_dir,
    session_config,
    without_secrets,
)


class Spark(ConfigurableResource):
    """Spark for a run, built on first use (and reused if the process already has a session)."""

    master: str = Field(
        default=DEFAULT_MASTER,
        description="local[*], local[N], spark://host:7077, k8s://https://host:6443, yarn, or sc://host:15002",
    )
    conf: str = Field(default="", description="Extra Spark settings as a JSON object; they override the project's")
    lake: ResourceDependency[Lake]
    _session: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        check_master(self.master)  # a bad setting fails the run at once, in one line
        parse_conf(self.conf)
        if context.log is not None:  # optional: an InitResourceContext made without a log manager has none
            context.log.info(f"Spark: {self.master}")

    @property
    def settings(self) -> dict[str, str]:
        return session_config(self.master, parse_conf(self.conf), self.lake.store.uri)

    @property
    def session(self) -> SparkSession:
        if self._session is None:
            settings = self.settings
            if self.master.startswith("local") and "spark.local.dir" not in settings:
                settings["spark.local.dir"] = str(scratch_dir())  # this run's own, removed when it ends
            if settings.get("spark.ui.enabled") == "true" and self.master.startswith("local"):
                # Read by the JVM when it starts: the UI (and the driver) listen on loopback only.
                os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
            with without_secrets():  # the JVM and its Python workers never see the pseudonym key
                self._session = spark_session_from_config(settings)
        return self._session
