"""The training table: step-trainer readings paired with their owner's accelerometer readings."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets.transforms import classify
from stedi_assets.transforms.customers import device_claims
from stedi_assets.transforms.identity import IDENTITY_KEY, identity_key
from stedi_assets.transforms.pseudonyms import SUBJECT_KEY
from stedi_assets.transforms.readings import OWNER, with_owner_at_time


def classify_machine_learning_curated(
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customer_landing: DataFrame,
    subjects: DataFrame,
) -> DataFrame:
    """Pairs each step reading with the accelerometer reading(s) of the SAME customer at the SAME millisecond.

    The join goes through the customer who held the device at the reading's time (serialNumber and time ->
    `customers.device_claims` -> identity key -> accelerometer `user`'s identity key) and equal times; time
    alone would pair readings of different customers. A step reading with k matches gives k rows; one with none
    is filtered as no_accelerometer_match. Identifiers end at the join: only `subject_key` leaves, looked up in
    `subjects` (identity_key, subject_key: see `pseudonyms.subject_keys`), so this function never sees the key.
    """
    owned = with_owner_at_time(step_trainer_trusted, "sensorReadingTime", device_claims(customer_landing))
    phone = accelerometer_trusted.select(
        identity_key("user").alias(OWNER),
        F.col("timestamp").alias("sensorReadingTime"),
        "x",
        "y",
        "z",
        F.lit(True).alias("_matched"),
    )
    pseudonyms = subjects.select(F.col(IDENTITY_KEY).alias(OWNER), SUBJECT_KEY)
    joined = owned.join(phone, [OWNER, "sensorReadingTime"], "left").join(pseudonyms, OWNER, "left")
    # step_trainer_trusted kept only readings with exactly one owner at their time, so every row has one here.
    reason, detail = classify.first_reason([(F.col("_matched").isNull(), reasons.NO_ACCELEROMETER_MATCH, None)])
    return joined.select(*MACHINE_LEARNING_CURATED.columns, reason.alias(reasons.REASON), detail.alias(reasons.DETAIL))
