"""Trusted zone: deduplicated records of known, consenting customers."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, MaterializeResult, multi_asset
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.accounting import Inputs, rebuild
from stedi_assets.assets.specs import zone_check_specs, zone_specs
from stedi_assets.resources.delta import Snapshot
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import (
    ACCELEROMETER_LANDING,
    ACCELEROMETER_TRUSTED,
    CUSTOMER_CURATED,
    CUSTOMER_LANDING,
    CUSTOMER_TRUSTED,
    QUARANTINE_OF,
    STEP_TRAINER_LANDING,
    STEP_TRAINER_TRUSTED,
)
from stedi_assets.transforms.customers import RESEARCH_CONSENT, classify_customer_trusted
from stedi_assets.transforms.readings import classify_accelerometer_trusted, classify_step_trainer_trusted

Results = Iterator[MaterializeResult | AssetCheckResult]
# Quarantined customer lines take part in customer state: a malformed newer record keeps a customer out.
CUSTOMER_LANDING_QUARANTINE = QUARANTINE_OF[CUSTOMER_LANDING.name]


@multi_asset(
    specs=zone_specs(CUSTOMER_TRUSTED, [CUSTOMER_LANDING, CUSTOMER_LANDING_QUARANTINE]),
    check_specs=zone_check_specs(CUSTOMER_TRUSTED),
)
def customer_trusted(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.exclusive(CUSTOMER_TRUSTED):
        inputs = Inputs(lake, spark.session, CUSTOMER_LANDING, CUSTOMER_LANDING_QUARANTINE, key=privacy.key_bytes)
        landing = inputs.read(CUSTOMER_LANDING)
        classified = classify_customer_trusted(landing, inputs.read(CUSTOMER_LANDING_QUARANTINE), privacy.as_of)
        yield from rebuild(
            context,
            lake,
            CUSTOMER_TRUSTED,
            classified,
            inputs,
            inputs.rows(CUSTOMER_LANDING),
            metadata={"as_of": privacy.as_of},
            changed=consent_matured(landing, lake.snapshot(CUSTOMER_TRUSTED), privacy.as_of),
        )


def consent_matured(customer_landing: DataFrame, base: Snapshot | None, as_of: int) -> bool:
    """Whether a consent dated after the table's last computation is due by now (then it must be recomputed)."""
    if base is None or "stedi.as_of" not in base.metadata:
        return True
    window = F.col(RESEARCH_CONSENT).between(int(base.metadata["stedi.as_of"]) + 1, as_of)
    return customer_landing.where(window).limit(1).count() > 0


@multi_asset(
    specs=zone_specs(ACCELEROMETER_TRUSTED, [ACCELEROMETER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED]),
    check_specs=zone_check_specs(ACCELEROMETER_TRUSTED),
)
def accelerometer_trusted(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.exclusive(ACCELEROMETER_TRUSTED):
        inputs = Inputs(
            lake,
            spark.session,
            ACCELEROMETER_LANDING,
            CUSTOMER_LANDING,
            CUSTOMER_TRUSTED,
            key=privacy.key_bytes,
            settings={"consent_policy": privacy.policy.value},
        )
        classified = classify_accelerometer_trusted(
            inputs.read(ACCELEROMETER_LANDING),
            inputs.read(CUSTOMER_LANDING),
            inputs.read(CUSTOMER_TRUSTED),
            privacy.policy,
        )
        yield from rebuild(context, lake, ACCELEROMETER_TRUSTED, classified, inputs, inputs.rows(ACCELEROMETER_LANDING))


@multi_asset(
    specs=zone_specs(
        STEP_TRAINER_TRUSTED, [STEP_TRAINER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED, CUSTOMER_CURATED]
    ),
    check_specs=zone_check_specs(STEP_TRAINER_TRUSTED),
)
def step_trainer_trusted(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.exclusive(STEP_TRAINER_TRUSTED):
        inputs = Inputs(
            lake,
            spark.session,
            STEP_TRAINER_LANDING,
            CUSTOMER_LANDING,
            CUSTOMER_TRUSTED,
            CUSTOMER_CURATED,
            key=privacy.key_bytes,
            settings={"consent_policy": privacy.policy.value},
        )
        classified = classify_step_trainer_trusted(
            inputs.read(STEP_TRAINER_LANDING),
            inputs.read(CUSTOMER_LANDING),
            inputs.read(CUSTOMER_TRUSTED),
            inputs.read(CUSTOMER_CURATED),
            privacy.policy,
        )
        yield from rebuild(context, lake, STEP_TRAINER_TRUSTED, classified, inputs, inputs.rows(STEP_TRAINER_LANDING))
