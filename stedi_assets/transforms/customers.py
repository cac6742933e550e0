"""Customer state and consent."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from stedi_assets.tables import CUSTOMER_TRUSTED
from stedi_assets.transforms import classify as r
from stedi_assets.transforms.landing import LINEAGE_COLUMNS

CUSTOMER_COLUMNS = CUSTOMER_TRUSTED.columns
RESEARCH_CONSENT = "shareWithResearchAsOfDate"


def _rank_records(customer_landing: DataFrame) -> DataFrame:
    """Adds _copy (1 for the first of exact duplicates) and _version (1 for each email's current record).

    The current record has the greatest lastUpdateDate, then registrationDate; exact duplicates sort last so
    that they never count as current; the file and line make the order total, so reruns agree.
    """
    copies = customer_landing.withColumn("_copy", r.duplicate_rank(CUSTOMER_COLUMNS, LINEAGE_COLUMNS))
    newest_first = Window.partitionBy("email").orderBy(
        (F.col("_copy") > 1).asc(),
        F.col("lastUpdateDate").desc(),
        F.col("registrationDate").desc(),
        *LINEAGE_COLUMNS,
    )
    return copies.withColumn("_version", F.row_number().over(newest_first))


def current_customers(customer_landing: DataFrame) -> DataFrame:
    """The current record of every customer, consenting or not: one row per email."""
    ranked = _rank_records(customer_landing)
    return ranked.where(F.col("_version") == 1).select(*CUSTOMER_COLUMNS)


def classify_customer_trusted(customer_landing: DataFrame) -> DataFrame:
    """Keeps each customer's current record where it consents to research.

    An older record's consent does not count: a customer whose latest record withdraws it is out.
    """
    ranked = _rank_records(customer_landing)
    reason, detail = r.first_reason(
        [
            (F.col("_copy") > 1, r.DUPLICATE, None),
            (F.col("_version") > 1, r.SUPERSEDED, None),
            (F.col(RESEARCH_CONSENT).isNull(), r.NO_CONSENT, None),
        ]
    )
    return ranked.select(*CUSTOMER_COLUMNS, reason.alias(r.REASON), detail.alias(r.DETAIL))


def classify_customer_curated(customer_trusted: DataFrame, accelerometer_trusted: DataFrame) -> DataFrame:
    """Keeps the trusted customers that have at least one trusted accelerometer reading."""
    with_readings = (
        accelerometer_trusted.select(F.col("user").alias("email")).distinct().withColumn("_has", F.lit(True))
    )
    joined = customer_trusted.join(with_readings, "email", "left")
    reason, detail = r.first_reason([(F.col("_has").isNull(), r.NO_ACCELEROMETER_READINGS, None)])
    return joined.select(*CUSTOMER_COLUMNS, reason.alias(r.REASON), detail.alias(r.DETAIL))
