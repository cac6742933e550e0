"""Trusted zone: deduplicated records of known, consenting customers."""

import time
from collections.abc import Iterator

from dagster import AssetExecutionContext, Output, multi_asset
from pyspark.sql import DataFrame

from stedi_assets.assets.accounting import settle
from stedi_assets.assets.specs import zone_outs
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.tables import ACCELEROMETER_TRUSTED, CUSTOMER_TRUSTED, STEP_TRAINER_TRUSTED
from stedi_assets.transforms.customers import classify_customer_trusted
from stedi_assets.transforms.readings import classify_accelerometer_trusted, classify_step_trainer_trusted


@multi_asset(outs=zone_outs(CUSTOMER_TRUSTED))
def customer_trusted(
    context: AssetExecutionContext,
    lake: Lake,
    customer_landing: DataFrame,
    customer_landing_quarantine: DataFrame,
) -> Iterator[Output]:
    # Minimal wiring (identity branch): the run's time as as_of; the lead's rewrite takes it from the run.
    as_of = int(time.time() * 1000)
    classified = classify_customer_trusted(customer_landing, customer_landing_quarantine, as_of)
    yield from settle(context, lake, CUSTOMER_TRUSTED, classified, rows_in=customer_landing.count())


@multi_asset(outs=zone_outs(ACCELEROMETER_TRUSTED))
def accelerometer_trusted(
    context: AssetExecutionContext,
    lake: Lake,
    privacy: Privacy,
    accelerometer_landing: DataFrame,
    customer_landing: DataFrame,
    customer_trusted: DataFrame,
) -> Iterator[Output]:
    classified = classify_accelerometer_trusted(
        accelerometer_landing, customer_landing, customer_trusted, privacy.consent_policy
    )
    yield from settle(context, lake, ACCELEROMETER_TRUSTED, classified, rows_in=accelerometer_landing.count())


@multi_asset(outs=zone_outs(STEP_TRAINER_TRUSTED))
def step_trainer_trusted(
    context: AssetExecutionContext,
    lake: Lake,
    privacy: Privacy,
    step_trainer_landing: DataFrame,
    customer_landing: DataFrame,
    customer_trusted: DataFrame,
    customer_curated: DataFrame,
) -> Iterator[Output]:
    classified = classify_step_trainer_trusted(
        step_trainer_landing, customer_landing, customer_trusted, customer_curated, privacy.consent_policy
    )
    yield from settle(context, lake, STEP_TRAINER_TRUSTED, classified, rows_in=step_trainer_landing.count())
