"""Device and phone readings: identity, ownership at the reading's time, and consent."""

from __future__ import annotations

from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.tables import ACCELEROMETER_TRUSTED, STEP_TRAINER_TRUSTED
from stedi_assets.transforms import classify
from stedi_assets.transforms.customers import RESEARCH_CONSENT, device_claims
from stedi_assets.transforms.identity import ARRIVAL_ORDER, IDENTITY_KEY, identities, identity_key
from stedi_assets.transforms.parsing import RAW

OWNER = "_owner"


class ConsentPolicy(StrEnum):
    """SINCE keeps readings taken at or after research consent; FLAG keeps every reading of a consenting customer."""

    SINCE = "since"
    FLAG = "flag"


def _before_consent(policy: ConsentPolicy, reading_time: str, consent_time: str) -> Column:
    if policy is ConsentPolicy.FLAG:
        return F.lit(False)
    return F.col(reading_time) < F.col(consent_time)


def _raw_line(columns: list[str]) -> Column:
    """The landing line re-serialised: rows rejected after landing carry their parsed record as JSON."""
    return F.to_json(F.struct(*columns))


def with_owner_at_time(readings: DataFrame, time_column: str, claims: DataFrame) -> DataFrame:
    """Adds who held each reading's device at the reading's time, from `customers.device_claims`.

    A claim holds its serial from `claimed_from` until `claimed_until`; the serial's earliest claims also reach
    back to any earlier reading: before anyone claimed it, a device is its first known holder's (two customers
    claiming it first at the same time are both its holders then). A claim that holds for no time (its record
    replaced at the moment it starts) holds nothing and makes nobody a first holder.

    `_claimed`: some record claims the serial (null: none does); `_owners`: how many customers hold it at that
    time; `_owner`: their identity key when exactly one does (null otherwise, so nothing joins to it).
    """
    times = readings.select("serialNumber", F.col(time_column).alias("_t")).distinct()
    holding = claims.where(F.col("claimed_until").isNull() | (F.col("claimed_from") < F.col("claimed_until")))
    first = holding.groupBy("serialNumber").agg(F.min("claimed_from").alias("_first"))
    claim = holding.join(first, "serialNumber").select(
        F.col("serialNumber").alias("_serial"),
        F.col(IDENTITY_KEY).alias("_claimant"),
        # null: from the beginning of the device's readings.
        F.when(F.col("claimed_from") > F.col("_first"), F.col("claimed_from")).alias("_from"),
        "claimed_until",
    )
    covers = (
        (F.col("serialNumber") == F.col("_serial"))
        & (F.col("_from").isNull() | (F.col("_t") >= F.col("_from")))
        & (F.col("claimed_until").isNull() | (F.col("_t") < F.col("claimed_until")))
    )
    at_time = (
        times.join(claim, covers, "left")
        .groupBy("serialNumber", "_t")
        .agg(F.count_distinct("_claimant").alias("_owners"), F.min("_claimant").alias("_any_owner"))
        .select(
            "serialNumber",
            F.col("_t").alias(time_column),
            "_owners",
            F.when(F.col("_owners") == 1, F.col("_any_owner")).alias(OWNER),
        )
    )
    claimed = claims.select("serialNumber").distinct().withColumn("_claimed", F.lit(True))
    return readings.join(at_time, ["serialNumber", time_column], "left").join(claimed, "serialNumber", "left")


def ownership_rules() -> list[tuple[Column, str, Column | str | None]]:
    """unknown_device (no record ever claimed the serial); no_owner_at_time (its holders had let it go by the
    reading's time, and nobody took it); ambiguous_device_owner (quarantine: two or more holders at that time)."""
    return [
        (F.col("_claimed").isNull(), reasons.UNKNOWN_DEVICE, None),
        (F.col("_owners") == 0, reasons.NO_OWNER_AT_TIME, None),
        (F.col("_owners") > 1, reasons.AMBIGUOUS_DEVICE_OWNER, F.concat(F.col("_owners"), F.lit(" owners"))),
    ]


def classify_accelerometer_trusted(
    accelerometer_landing: DataFrame,
    customer_landing: DataFrame,
    customer_trusted: DataFrame,
    policy: ConsentPolicy,
) -> DataFrame:
    """Keeps one copy of each reading of a customer_trusted customer, within the consent policy.

    A reading belongs to the customer whose identity key its `user` has (case and surrounding space do not
    matter); a kept reading shows the customer's e-mail as their current record delivered it, so readings that
    differ only in how `user` is spelled are one reading (`duplicate`). `unknown_user`: no accepted customer
    record has that identity.
    """
    known = identities(customer_landing).select(F.col(IDENTITY_KEY).alias("_id"), F.lit(True).alias("_known"))
    trusted = customer_trusted.select(
        identity_key("email").alias("_id"), F.col("email").alias("_email"), F.col(RESEARCH_CONSENT).alias("_consent")
    )
    readings = accelerometer_landing.withColumn("_id", identity_key("user"))
    joined = (
        readings.withColumn("_copy", classify.duplicate_rank(["_id", "timestamp", "x", "y", "z"], ARRIVAL_ORDER))
        .join(known, "_id", "left")
        .join(trusted, "_id", "left")
    )
    reason, detail = classify.first_reason(
        [
            (F.col("_copy") > 1, reasons.DUPLICATE, None),
            (F.col("_known").isNull(), reasons.UNKNOWN_USER, None),
            (F.col("_consent").isNull(), reasons.NO_CONSENT, None),
            (_before_consent(policy, "timestamp", "_consent"), reasons.BEFORE_CONSENT, None),
        ]
    )
    user = F.coalesce(F.col("_email"), F.col("user")).alias("user")
    return joined.select(
        user, *ACCELEROMETER_TRUSTED.columns[1:], reason.alias(reasons.REASON), detail.alias(reasons.DETAIL)
    )


def classify_step_trainer_trusted(
    step_trainer_landing: DataFrame,
    customer_landing: DataFrame,
    customer_trusted: DataFrame,
    customer_curated: DataFrame,
    policy: ConsentPolicy,
) -> DataFrame:
    """Keeps one copy of each reading whose device was held by exactly one customer at the reading's time, who is
    in customer_curated, within the consent policy.

    Ownership comes from every customer's record history (`customers.device_claims`), consenting or not, so a
    reading goes to the customer who held the device then (before any claim: its first known holder), never to a
    later owner, and a device held by two customers at that time is quarantined (ambiguous_device_owner) rather
    than given to one of them.
    """
    columns = STEP_TRAINER_TRUSTED.columns
    trusted = customer_trusted.select(identity_key("email").alias(OWNER), F.lit(True).alias("_trusted"))
    curated = customer_curated.select(identity_key("email").alias(OWNER), F.col(RESEARCH_CONSENT).alias("_consent"))
    readings = step_trainer_landing.withColumn("_copy", classify.duplicate_rank(columns, ARRIVAL_ORDER))
    joined = (
        with_owner_at_time(readings, "sensorReadingTime", device_claims(customer_landing))
        .join(trusted, OWNER, "left")
        .join(curated, OWNER, "left")
    )
    reason, detail = classify.first_reason(
        [
            (F.col("_copy") > 1, reasons.DUPLICATE, None),
            *ownership_rules(),
            (F.col("_trusted").isNull(), reasons.NO_CONSENT, None),
            (F.col("_consent").isNull(), reasons.OWNER_NOT_CURATED, None),
            (_before_consent(policy, "sensorReadingTime", "_consent"), reasons.BEFORE_CONSENT, None),
        ]
    )
    return joined.select(
        *columns,
        *ARRIVAL_ORDER,
        _raw_line(columns).alias(RAW),
        reason.alias(reasons.REASON),
        detail.alias(reasons.DETAIL),
    )
