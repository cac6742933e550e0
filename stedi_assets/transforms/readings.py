"""Device and phone readings: identity, ownership and consent."""

from __future__ import annotations

from enum import StrEnum

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.tables import ACCELEROMETER_TRUSTED, STEP_TRAINER_TRUSTED
from stedi_assets.transforms import classify as r
from stedi_assets.transforms.customers import RESEARCH_CONSENT
from stedi_assets.transforms.landing import LINEAGE_COLUMNS, RAW


class ConsentPolicy(StrEnum):
    """SINCE keeps readings taken at or after research consent; FLAG keeps every reading of a consenting customer."""

    SINCE = "since"
    FLAG = "flag"


def _before_consent(policy: ConsentPolicy, reading_time: str, consent_time: str) -> F.Column:
    if policy is ConsentPolicy.FLAG:
        return F.lit(False)
    return F.col(reading_time) < F.col(consent_time)


def _raw_line(columns: list[str]) -> F.Column:
    """The landing line re-serialised: rows rejected after landing carry their parsed record as JSON."""
    return F.to_json(F.struct(*columns))


def classify_accelerometer_trusted(
    accelerometer_landing: DataFrame,
    current_customers: DataFrame,
    customer_trusted: DataFrame,
    policy: ConsentPolicy,
) -> DataFrame:
    """Keeps one copy of each reading of a customer_trusted customer, within the consent policy."""
    columns = ACCELEROMETER_TRUSTED.columns
    known = current_customers.select(F.col("email").alias("user"), F.lit(True).alias("_known"))
    consent = customer_trusted.select(F.col("email").alias("user"), F.col(RESEARCH_CONSENT).alias("_consent"))
    joined = (
        accelerometer_landing.withColumn("_copy", r.duplicate_rank(columns, LINEAGE_COLUMNS))
        .join(known, "user", "left")
        .join(consent, "user", "left")
    )
    reason, detail = r.first_reason(
        [
            (F.col("_copy") > 1, r.DUPLICATE, None),
            (F.col("_known").isNull(), r.UNKNOWN_USER, None),
            (F.col("_consent").isNull(), r.NO_CONSENT, None),
            (_before_consent(policy, "timestamp", "_consent"), r.BEFORE_CONSENT, None),
        ]
    )
    return joined.select(*columns, reason.alias(r.REASON), detail.alias(r.DETAIL))


def device_owners(current_customers: DataFrame) -> DataFrame:
    """serialNumber -> owner email and research consent; `_owners` counts the current customers claiming it."""
    return current_customers.groupBy("serialNumber").agg(
        F.count("*").alias("_owners"),
        F.min("email").alias("_owner"),
        F.min(RESEARCH_CONSENT).alias("_owner_consent"),
    )


def classify_step_trainer_trusted(
    step_trainer_landing: DataFrame,
    current_customers: DataFrame,
    customer_curated: DataFrame,
    policy: ConsentPolicy,
) -> DataFrame:
    """Keeps one copy of each reading of a device owned by exactly one customer, who is in customer_curated.

    Ownership comes from every customer's current record, consenting or not, so that a device claimed by
    two customers is quarantined (ambiguous_device_owner) rather than given to one of them.
    """
    columns = STEP_TRAINER_TRUSTED.columns
    curated = customer_curated.select(F.col("email").alias("_owner"), F.col(RESEARCH_CONSENT).alias("_consent"))
    joined = (
        step_trainer_landing.withColumn("_copy", r.duplicate_rank(columns, LINEAGE_COLUMNS))
        .join(device_owners(current_customers), "serialNumber", "left")
        .join(curated, "_owner", "left")
    )
    reason, detail = r.first_reason(
        [
            (F.col("_copy") > 1, r.DUPLICATE, None),
            (F.col("_owners").isNull(), r.UNKNOWN_DEVICE, None),
            (F.col("_owners") > 1, r.AMBIGUOUS_DEVICE_OWNER, F.concat(F.col("_owners"), F.lit(" owners"))),
            (F.col("_owner_consent").isNull(), r.NO_CONSENT, None),
            (F.col("_consent").isNull(), r.OWNER_NOT_CURATED, None),
            (_before_consent(policy, "sensorReadingTime", "_consent"), r.BEFORE_CONSENT, None),
        ]
    )
    return joined.select(
        *columns, *LINEAGE_COLUMNS, _raw_line(columns).alias(RAW), reason.alias(r.REASON), detail.alias(r.DETAIL)
    )
