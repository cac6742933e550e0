"""Customer state and consent: which record of a customer is current, whether it consents, who held which device.

A customer is an identity key (`identity.identity_key` of the e-mail). Their records, newest first:
1. the greater `lastUpdateDate`, then the greater `registrationDate`;
2. on an exact tie of both, the record delivered later: the file that arrived later (`arrived_at`), or within
   one file the later line;
3. when arrival cannot decide (two files that arrived at the same time), the record without research consent;
4. then the file and line (descending), only so that every rerun picks the same record.
An exact duplicate of a record (a file delivered again, a line twice) is the same record: its first delivery
counts and the copies are `duplicate`.

Records quarantined at landing take part too (fail closed): a quarantined customer line whose e-mail can be read
is a record of that customer that does not consent, so a malformed newer record never lets an older consenting
one stand. Its unreadable times take the latest value they can have: `lastUpdateDate` its file's arrival (a record
is not updated after it is delivered), `registrationDate` its `lastUpdateDate` (nobody registers after an update).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets import reasons
from stedi_assets.contracts import EPOCH_MS_MAX, EPOCH_MS_MIN
from stedi_assets.tables import CUSTOMER_LANDING, CUSTOMER_TRUSTED
from stedi_assets.transforms import classify
from stedi_assets.transforms.identity import ARRIVAL_ORDER, IDENTITY_KEY, identities, identity_key
from stedi_assets.transforms.parsing import RAW, given_values, read_objects

CUSTOMER_COLUMNS = CUSTOMER_TRUSTED.columns
RESEARCH_CONSENT = "shareWithResearchAsOfDate"
# The recency columns every record gets, accepted or quarantined.
_ID, _TIME, _REGISTERED, _WITHHOLDS, _ACCEPTED, _COPY = (
    "_id",
    "_time",
    "_registered",
    "_withholds",
    "_accepted",
    "_copy",
)


def _accepted_records(customer_landing: DataFrame) -> DataFrame:
    return customer_landing.select(
        *CUSTOMER_COLUMNS,
        *ARRIVAL_ORDER,
        identity_key("email").alias(_ID),
        F.col("lastUpdateDate").alias(_TIME),
        F.col("registrationDate").alias(_REGISTERED),
        F.col(RESEARCH_CONSENT).isNull().alias(_WITHHOLDS),
        F.lit(True).alias(_ACCEPTED),
        classify.duplicate_rank(CUSTOMER_COLUMNS, ARRIVAL_ORDER).alias(_COPY),
    )


def _latest_epoch_ms(name: str) -> Column:
    """The latest plausible time (the contract's range) a read line gives a column; null when it gives none."""
    return F.array_max(
        F.filter(given_values(name, T.LongType()), lambda value: value.between(EPOCH_MS_MIN, EPOCH_MS_MAX))
    )


def _named_identities() -> Column:
    """The identity keys a read line (`parsing.read_objects`) gives its e-mail where the parser would read one:
    a JSON string, not blank."""
    return F.filter(F.transform(given_values("email", T.StringType()), identity_key), lambda key: key != "")


def quarantined_identities(customer_lines: DataFrame) -> DataFrame:
    """The customers that customer lines (lineage and `raw`) count for as quarantined records (`IDENTITY_KEY`,
    once each): the reading of `_quarantined_records`, so that an incremental run recomputes exactly whom a
    rebuild would see change."""
    objects = read_objects(customer_lines, CUSTOMER_LANDING)
    return objects.select(F.explode(_named_identities()).alias(IDENTITY_KEY)).distinct()


def _quarantined_records(customer_landing_quarantine: DataFrame) -> DataFrame:
    """Quarantined customer lines with a readable e-mail, as records that withhold consent.

    A line is read as the landing parser reads it (`parsing.read_objects`: one JSON object after an optional
    byte-order mark, keys in any case); its e-mail is read where the parser would read one: a JSON string, not
    blank. A line that gives the e-mail key more than once (quarantined as `duplicate_key`) is a record of each
    customer it names, and its times are the latest it gives. Identical lines delivered again count once, at
    their first arrival.
    """
    objects = read_objects(customer_landing_quarantine, CUSTOMER_LANDING)
    time = F.coalesce(_latest_epoch_ms("lastUpdateDate"), F.col("arrived_at"))
    lines = objects.select(
        *ARRIVAL_ORDER,
        RAW,
        F.explode(F.array_distinct(_named_identities())).alias(_ID),
        time.alias(_TIME),
        F.coalesce(_latest_epoch_ms("registrationDate"), time).alias(_REGISTERED),
    )
    return lines.select(
        *ARRIVAL_ORDER,
        _ID,
        _TIME,
        _REGISTERED,
        F.lit(True).alias(_WITHHOLDS),
        F.lit(False).alias(_ACCEPTED),
        classify.duplicate_rank([RAW, _ID], ARRIVAL_ORDER).alias(_COPY),
    )


def _newest_first(records: DataFrame) -> tuple[DataFrame, WindowSpec]:
    """Adds `_newest` (1 for each customer's current record) and returns the newest-first window.

    Exact duplicates sort after every first copy. `_last_in_file` marks, among records of equal times that
    arrived together, the last line of each file: within a file the later line was delivered later, so only
    across files does the lack of consent decide.
    """
    first = F.col(_COPY) == 1
    delivery = Window.partitionBy(_ID, _TIME, _REGISTERED, "arrived_at", "source_file")
    last_in_file = F.col("line_number") == F.max(F.when(first, F.col("line_number"))).over(delivery)
    newest_first = Window.partitionBy(_ID).orderBy(
        first.desc(),
        F.col(_TIME).desc(),
        F.col(_REGISTERED).desc(),
        F.col("arrived_at").desc(),
        F.col("_last_in_file").desc(),
        F.col(_WITHHOLDS).desc(),
        F.col("source_file").desc(),
        F.col("line_number").desc(),
    )
    ranked = records.withColumn("_last_in_file", first & last_in_file)
    return ranked.withColumn("_newest", F.row_number().over(newest_first)), newest_first


def classify_customer_trusted(
    customer_landing: DataFrame, customer_landing_quarantine: DataFrame, as_of: int
) -> DataFrame:
    """Keeps each customer's current record where it consents to research by `as_of` (epoch ms, the run's time).

    Reasons, first match wins: duplicate; superseded_by_quarantined (the current record is a quarantined one: the
    detail is its file:line); superseded; no_consent (withdrawn or never given); future_consent (given for a
    time after `as_of`: not consent yet). An older record's consent never counts.
    """
    records = _accepted_records(customer_landing).unionByName(
        _quarantined_records(customer_landing_quarantine), allowMissingColumns=True
    )
    ranked, newest_first = _newest_first(records)
    current = F.first(F.struct(_ACCEPTED, "source_file", "line_number")).over(newest_first)
    rows = ranked.withColumn("_current", current).where(F.col(_ACCEPTED))
    reason, detail = classify.first_reason(
        [
            (F.col(_COPY) > 1, reasons.DUPLICATE, None),
            (
                ~F.col(f"_current.{_ACCEPTED}"),
                reasons.SUPERSEDED_BY_QUARANTINED,
                F.concat_ws(":", "_current.source_file", "_current.line_number"),
            ),
            (F.col("_newest") > 1, reasons.SUPERSEDED, None),
            (F.col(RESEARCH_CONSENT).isNull(), reasons.NO_CONSENT, None),
            (F.col(RESEARCH_CONSENT) > F.lit(as_of), reasons.FUTURE_CONSENT, None),
        ]
    )
    return rows.select(*CUSTOMER_COLUMNS, reason.alias(reasons.REASON), detail.alias(reasons.DETAIL))


def device_claims(customer_landing: DataFrame) -> DataFrame:
    """Who claimed which device when: `serialNumber`, `identity_key`, `claimed_from`, `claimed_until` (epoch ms).

    Each accepted record of a customer claims its serial from its `lastUpdateDate` (the customer's oldest record:
    from its `registrationDate`) until the customer's next record (`claimed_until` null: still claims), in the
    order above. Quarantined records neither claim a device nor end a claim: their serial is not trusted, and a
    reading at that time stays with the record that last claimed it validly (or is ambiguous).
    """
    ranked, _ = _newest_first(_accepted_records(customer_landing))
    oldest_first = Window.partitionBy(_ID).orderBy(F.col("_newest").desc())
    claimed_from = F.when(F.lag(_ID).over(oldest_first).isNull(), F.col(_REGISTERED)).otherwise(F.col(_TIME))
    return ranked.where(F.col(_COPY) == 1).select(
        "serialNumber",
        F.col(_ID).alias(IDENTITY_KEY),
        claimed_from.alias("claimed_from"),
        F.lead(_TIME).over(oldest_first).alias("claimed_until"),
    )


def classify_customer_curated(customer_trusted: DataFrame, accelerometer_trusted: DataFrame) -> DataFrame:
    """Keeps the trusted customers that have at least one trusted accelerometer reading."""
    with_readings = identities(accelerometer_trusted, "user").withColumn("_has", F.lit(True))
    joined = customer_trusted.withColumn(IDENTITY_KEY, identity_key("email")).join(with_readings, IDENTITY_KEY, "left")
    reason, detail = classify.first_reason([(F.col("_has").isNull(), reasons.NO_ACCELEROMETER_READINGS, None)])
    return joined.select(*CUSTOMER_COLUMNS, reason.alias(reasons.REASON), detail.alias(reasons.DETAIL))
