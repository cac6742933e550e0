"""The one Definitions object: assets by zone (with their checks), the curated tables' freshness check, the
landing and freshness sensors, the schedule of what comes due, resources, executor.

Resource config defaults come from the environment through EnvVar, read when the code location loads (not
when the package is imported): the UI and run config show the variable's name, never its value, and every
field can be changed per run in the launchpad or with `dagster asset materialize --config`.
"""

from __future__ import annotations

import os
import warnings

from dagster import BetaWarning, Definitions, EnvVar, definitions, in_process_executor, with_source_code_references
from dagster._utils.schedules import is_valid_cron_string

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.freshness import FRESHNESS_MINUTES, freshness_checks, freshness_sensor
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import Spark
from stedi_assets.schedules import DUE_CRON, due_schedule
from stedi_assets.sensors import RETRY_WAITS, landing_sensor
from stedi_assets.spark_settings import DEFAULT_MASTER, PSEUDONYM_KEY_ENV

SENSOR_INTERVAL_ENV = "STEDI_SENSOR_INTERVAL_SECONDS"
RETRY_WAITS_ENV = "STEDI_RETRY_WAITS_SECONDS"
DUE_CRON_ENV = "STEDI_DUE_CRON"
FRESHNESS_ENV = "STEDI_FRESHNESS_MINUTES"


def from_env(name: str, default: str) -> str:
    """The variable as an EnvVar where it is set (resolved when a run starts), else the field's default."""
    return EnvVar(name) if name in os.environ else default


def whole_number(name: str, default: int, unit: str) -> int:
    text = os.environ.get(name, str(default)).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"{name}={text!r} is not a whole number of {unit}: set it to one, e.g. {default}, or unset it for {default}"
        )
    return int(text)


def sensor_interval() -> int:
    return whole_number(SENSOR_INTERVAL_ENV, 30, "seconds")


def freshness_minutes() -> int:
    return whole_number(FRESHNESS_ENV, FRESHNESS_MINUTES, "minutes")


def retry_waits() -> tuple[int, ...]:
    text = os.environ.get(RETRY_WAITS_ENV, ",".join(map(str, RETRY_WAITS))).strip()
    waits = [part.strip() for part in text.split(",")]
    if not all(wait.isdigit() for wait in waits):
        raise ValueError(
            f"{RETRY_WAITS_ENV}={text!r} is not whole numbers of seconds separated by commas: set it to e.g."
            f" {','.join(map(str, RETRY_WAITS))}, or unset it for that"
        )
    return tuple(int(wait) for wait in waits)


def due_cron() -> str:
    text = os.environ.get(DUE_CRON_ENV, DUE_CRON).strip()
    if not is_valid_cron_string(text):
        raise ValueError(
            f"{DUE_CRON_ENV}={text!r} is not a cron schedule: set it to five fields (minute hour day month weekday,"
            f" in UTC), e.g. '{DUE_CRON}', or unset it for that"
        )
    return text


@definitions
def defs() -> Definitions:
    # Configured at launch: a run's config then overrides field by field, keeping the other defaults, and a
    # per-run lake root reaches the resources that depend on the lake.
    lake = Lake.configure_at_launch(root=from_env("STEDI_LAKE_ROOT", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # code references: the UI's links to the source
        assets = with_source_code_references(ZONE_ASSETS)
    freshness = freshness_checks(freshness_minutes())
    return Definitions(
        assets=assets,
        asset_checks=freshness,
        sensors=[
            landing_sensor(sensor_interval(), retry_waits()),
            freshness_sensor(freshness, freshness_minutes(), sensor_interval()),
        ],
        schedules=[due_schedule(due_cron())],
        resources={
            "lake": lake,
            "spark": Spark.configure_at_launch(
                master=from_env("STEDI_SPARK_MASTER", DEFAULT_MASTER), conf=from_env("STEDI_SPARK_CONF", ""), lake=lake
            ),
            "privacy": Privacy.configure_at_launch(
                consent_policy=from_env("STEDI_CONSENT_POLICY", "since"),
                pseudonym_key=from_env(PSEUDONYM_KEY_ENV, ""),
                lake=lake,
            ),
        },
        # One process and one SparkSession per run: a process per asset would start a JVM per asset.
        executor=in_process_executor,
    )
