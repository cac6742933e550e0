"""Trusted zone: deduplicated records of known, consenting customers.

Each table is recomputed only for the customers (identity keys) or devices (serials) its inputs' commits
changed since its version was computed (`Inputs.changes`), and merged in; from scratch when that cannot be
said (its first run, a rebuild, another setting, new erasure tombstones).
"""

from collections.abc import Iterator
from dataclasses import dataclass

from dagster import AssetCheckResult, AssetExecutionContext, MaterializeResult, multi_asset
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.inputs import Inputs, Merge
from stedi_assets.assets.publishing import TableUpdate, apply_update
from stedi_assets.assets.specs import zone_check_specs, zone_specs
from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import Snapshot
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
    ZoneTable,
)
from stedi_assets.transforms.customers import RESEARCH_CONSENT, classify_customer_trusted, device_claims
from stedi_assets.transforms.identity import IDENTITY_KEY, identity_key
from stedi_assets.transforms.parsing import RAW
from stedi_assets.transforms.readings import classify_accelerometer_trusted, classify_step_trainer_trusted

Results = Iterator[MaterializeResult | AssetCheckResult]
NEXT_CONSENT = "next_consent"  # customer_trusted's commit metadata (stedi.next_consent): when a consent comes due
# Quarantined customer lines take part in customer state: a malformed newer record keeps a customer out.
CUSTOMER_LANDING_QUARANTINE = QUARANTINE_OF[CUSTOMER_LANDING.name]


def by_email(rows: DataFrame) -> Column:
    return identity_key(rows["email"])


def by_user(rows: DataFrame) -> Column:
    return identity_key(rows["user"])


def by_serial(rows: DataFrame) -> Column:
    return rows["serialNumber"]


def by_serial_in_raw(rows: DataFrame) -> Column:
    """A step_trainer_trusted quarantine row's device: its raw line is the reading as JSON."""
    return F.get_json_object(rows[RAW], "$.serialNumber")


@multi_asset(
    specs=zone_specs(CUSTOMER_TRUSTED, [CUSTOMER_LANDING, CUSTOMER_LANDING_QUARANTINE]),
    check_specs=zone_check_specs(CUSTOMER_TRUSTED),
)
def customer_trusted(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.store.exclusive(CUSTOMER_TRUSTED):
        inputs = Inputs(lake, spark.session, CUSTOMER_LANDING, CUSTOMER_LANDING_QUARANTINE, key=privacy.key_bytes)
        base = lake.store.snapshot(CUSTOMER_TRUSTED)
        changes, consents = inputs.changes(base), consent_dates(inputs.read(CUSTOMER_LANDING), base, privacy.as_of)
        matured = consents.matured
        merge = (
            inputs.customer_merge(changes.identities | matured, by_email)
            if changes is not None and matured is not None
            else None
        )
        landing = inputs.read(CUSTOMER_LANDING, merge)
        update = TableUpdate(
            CUSTOMER_TRUSTED,
            classify_customer_trusted(landing, inputs.read(CUSTOMER_LANDING_QUARANTINE), privacy.as_of),
            inputs.rows_in(CUSTOMER_LANDING, landing, merge),
            merge=merge,
            changed=bool(matured),
            # The schedule of what comes due reads the next consent from the commit: no new file announces it.
            metadata={
                "as_of": privacy.as_of,
                **({} if consents.next_due is None else {NEXT_CONSENT: consents.next_due}),
            },
        )
        yield from apply_update(context, lake, inputs, update)


@dataclass(frozen=True)
class ConsentDates:
    """Consents dated after a table's last computation: the customers whose consent has come due since (None when
    there is no last computation), and the earliest consent still in the future (epoch ms; None: none)."""

    matured: frozenset[str] | None
    next_due: int | None


def consent_dates(customer_landing: DataFrame, base: Snapshot | None, as_of: int) -> ConsentDates:
    """One pass over the consents dated after the last computation (`stedi.as_of`), or after now without one."""
    computed = None if base is None else base.metadata.get("stedi.as_of")
    since = as_of if computed is None else min(int(computed), as_of)
    dated = customer_landing.where(F.col(RESEARCH_CONSENT) > since)
    rows = dated.select(identity_key("email").alias(IDENTITY_KEY), RESEARCH_CONSENT).distinct().collect()
    matured = frozenset(row[IDENTITY_KEY] for row in rows if row[RESEARCH_CONSENT] <= as_of)
    future = [row[RESEARCH_CONSENT] for row in rows if row[RESEARCH_CONSENT] > as_of]
    return ConsentDates(None if computed is None else matured, min(future, default=None))


def readings_inputs(lake: Lake, spark: Spark, privacy: Privacy, *tables: ZoneTable) -> Inputs:
    """The inputs of a readings table: which readings are trusted depends on the consent policy too."""
    settings = {"consent_policy": privacy.policy.value}
    return Inputs(lake, spark.session, *tables, key=privacy.key_bytes, settings=settings)


@multi_asset(
    specs=zone_specs(ACCELEROMETER_TRUSTED, [ACCELEROMETER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED]),
    check_specs=zone_check_specs(ACCELEROMETER_TRUSTED),
)
def accelerometer_trusted(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.store.exclusive(ACCELEROMETER_TRUSTED):
        inputs = readings_inputs(lake, spark, privacy, ACCELEROMETER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED)
        changes = inputs.changes(lake.store.snapshot(ACCELEROMETER_TRUSTED))
        merge = None if changes is None else inputs.customer_merge(changes.identities, by_user)
        readings = inputs.read(ACCELEROMETER_LANDING, merge)
        customers = inputs.read(CUSTOMER_LANDING, merge, by_email)
        trusted = inputs.read(CUSTOMER_TRUSTED, merge, by_email)
        classified = classify_accelerometer_trusted(readings, customers, trusted, privacy.policy)
        rows_in = inputs.rows_in(ACCELEROMETER_LANDING, readings, merge)
        yield from apply_update(
            context, lake, inputs, TableUpdate(ACCELEROMETER_TRUSTED, classified, rows_in, merge=merge)
        )


@multi_asset(
    specs=zone_specs(
        STEP_TRAINER_TRUSTED, [STEP_TRAINER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED, CUSTOMER_CURATED]
    ),
    check_specs=zone_check_specs(STEP_TRAINER_TRUSTED),
)
def step_trainer_trusted(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.store.exclusive(STEP_TRAINER_TRUSTED):
        inputs = readings_inputs(
            lake, spark, privacy, STEP_TRAINER_LANDING, CUSTOMER_LANDING, CUSTOMER_TRUSTED, CUSTOMER_CURATED
        )
        changes = inputs.changes(lake.store.snapshot(STEP_TRAINER_TRUSTED))
        customers, merge = inputs.read(CUSTOMER_LANDING), None
        if changes is not None:
            # A customer's change (records, consent, curation) reaches every device they ever claimed; a device's
            # readings then go to whoever held it, so every customer who ever claimed those devices is touched.
            claims = [(row.serialNumber, row[IDENTITY_KEY]) for row in device_claims(customers).collect()]
            serials = changes.serials | {serial for serial, who in claims if who in changes.identities}
            holders = frozenset(who for serial, who in claims if serial in serials)
            touched = Changes(identities=holders, serials=frozenset(serials))
            merge = Merge(inputs.keys(serials), by_serial, touched, quarantine_key=by_serial_in_raw)
        readings = inputs.read(STEP_TRAINER_LANDING, merge)
        classified = classify_step_trainer_trusted(
            readings, customers, inputs.read(CUSTOMER_TRUSTED), inputs.read(CUSTOMER_CURATED), privacy.policy
        )
        rows_in = inputs.rows_in(STEP_TRAINER_LANDING, readings, merge)
        yield from apply_update(
            context, lake, inputs, TableUpdate(STEP_TRAINER_TRUSTED, classified, rows_in, merge=merge)
        )
