"""The training table: step-trainer readings paired with their owner's accelerometer readings."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets.transforms import classify as r
from stedi_assets.transforms.pseudonyms import hmac_sha256_hex


def classify_machine_learning_curated(
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customer_curated: DataFrame,
    pseudonym_key: bytes,
) -> DataFrame:
    """Pairs each step reading with the accelerometer reading(s) of the SAME customer at the SAME millisecond.

    The join goes through the owner (serialNumber -> customer email -> accelerometer user) and equal
    times; time alone would pair readings of different customers. A step reading with k matches gives k
    rows; one with none is filtered as no_accelerometer_match. Identifiers end at the join: only the
    keyed pseudonym of the email leaves.
    """
    owners = customer_curated.select("serialNumber", F.col("email").alias("_email"))
    phone = accelerometer_trusted.select(
        F.col("user").alias("_email"),
        F.col("timestamp").alias("sensorReadingTime"),
        "x",
        "y",
        "z",
        F.lit(True).alias("_matched"),
    )
    joined = step_trainer_trusted.join(owners, "serialNumber", "left").join(
        phone, ["_email", "sensorReadingTime"], "left"
    )
    reason, detail = r.first_reason([(F.col("_matched").isNull(), r.NO_ACCELEROMETER_MATCH, None)])
    subject_key = hmac_sha256_hex(F.col("_email"), pseudonym_key).alias("subject_key")
    return joined.select(
        "sensorReadingTime",
        "distanceFromObject",
        "x",
        "y",
        "z",
        subject_key,
        reason.alias(r.REASON),
        detail.alias(r.DETAIL),
    ).select(*MACHINE_LEARNING_CURATED.columns, r.REASON, r.DETAIL)
