"""Curated zone: the customers with data, and the machine-learning training table."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, Output, multi_asset
from pyspark.sql import DataFrame

from stedi_assets.assets.accounting import settle
from stedi_assets.assets.specs import zone_outs
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.tables import CUSTOMER_CURATED, MACHINE_LEARNING_CURATED
from stedi_assets.transforms.customers import classify_customer_curated
from stedi_assets.transforms.identity import IDENTITY_KEY, identities
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.pseudonyms import key_fingerprint, subject_keys, subjects_frame


@multi_asset(outs=zone_outs(CUSTOMER_CURATED))
def customer_curated(
    context: AssetExecutionContext, lake: Lake, customer_trusted: DataFrame, accelerometer_trusted: DataFrame
) -> Iterator[Output]:
    classified = classify_customer_curated(customer_trusted, accelerometer_trusted)
    yield from settle(context, lake, CUSTOMER_CURATED, classified, rows_in=customer_trusted.count())


@multi_asset(outs=zone_outs(MACHINE_LEARNING_CURATED))
def machine_learning_curated(
    context: AssetExecutionContext,
    lake: Lake,
    privacy: Privacy,
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customer_curated: DataFrame,
    customer_landing: DataFrame,
) -> Iterator[Output]:
    if privacy.uses_development_key:
        context.log.warning(
            "STEDI_PSEUDONYM_KEY is unset: subject_key uses the built-in DEVELOPMENT key, which anyone can"
            " reproduce. Set STEDI_PSEUDONYM_KEY to a secret before sharing machine_learning_curated."
        )
    # Minimal wiring (identity branch): pseudonyms computed in the driver for the curated subjects only.
    keys = [row[IDENTITY_KEY] for row in identities(customer_curated).collect()]
    subjects = subjects_frame(lake.session, subject_keys(keys, privacy.key_bytes))
    context.log.info(f"subject_key fingerprint {key_fingerprint(privacy.key_bytes)}")
    classified = classify_machine_learning_curated(
        step_trainer_trusted, accelerometer_trusted, customer_landing, subjects
    )
    yield from settle(
        context, lake, MACHINE_LEARNING_CURATED, classified, rows_in=step_trainer_trusted.count(), pairing=True
    )
