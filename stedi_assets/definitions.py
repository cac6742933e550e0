"""The one Definitions object: assets by zone, contract checks, the landing sensor, resources, executor."""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar, in_process_executor

from stedi_assets import settings as settings_module
from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.checks import contract_checks
from stedi_assets.resources.io_manager import LakeIOManager
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import spark_resource
from stedi_assets.sensors import landing_sensor


def build_resources(settings: settings_module.Settings) -> dict[str, object]:
    spark = spark_resource(settings)
    lake = Lake(root=settings.lake_root_or_sample, spark=spark, sample=settings.uses_sample_lake)
    key = EnvVar(settings_module.PSEUDONYM_KEY_ENV) if os.environ.get(settings_module.PSEUDONYM_KEY_ENV) else ""
    return {
        "spark": spark,
        "lake": lake,
        "io_manager": LakeIOManager(lake=lake),
        "privacy": Privacy(consent_policy=settings.consent_policy, pseudonym_key=key),
    }


def build_definitions(settings: settings_module.Settings) -> Definitions:
    # One process and one SparkSession per run: a process per asset would start a JVM per asset.
    return Definitions(
        assets=ZONE_ASSETS,
        asset_checks=contract_checks,
        sensors=[landing_sensor(settings.lake_root_or_sample, settings.sensor_interval_seconds)],
        resources=build_resources(settings),
        executor=in_process_executor,
    )


defs = build_definitions(settings_module.from_env())
