"""Curated zone: the customers with data, and the machine-learning training table."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    TableColumnDep,
    TableColumnLineage,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.inputs import Inputs, Merge
from stedi_assets.assets.publishing import TableUpdate, apply_update
from stedi_assets.assets.specs import zone_check_specs, zone_specs
from stedi_assets.assets.trusted import by_email, by_serial, by_user
from stedi_assets.dataset_card import figures, markdown
from stedi_assets.lake.changes import Changes
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import (
    ACCELEROMETER_TRUSTED,
    CUSTOMER_CURATED,
    CUSTOMER_LANDING,
    CUSTOMER_TRUSTED,
    MACHINE_LEARNING_CURATED,
    STEP_TRAINER_TRUSTED,
    ZoneTable,
)
from stedi_assets.transforms.customers import classify_customer_curated, device_claims
from stedi_assets.transforms.identity import IDENTITY_KEY, identities
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.pseudonyms import SUBJECT_KEY, key_fingerprint, subject_keys, subjects_frame
from stedi_assets.transforms.readings import OWNER, with_owner_at_time

Results = Iterator[MaterializeResult | AssetCheckResult]


def column_lineage(sources: dict[str, list[tuple[ZoneTable, str]]]) -> TableColumnLineage:
    return TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(asset_key=AssetKey(table.name), column_name=name) for table, name in deps]
            for column, deps in sources.items()
        }
    )


@multi_asset(
    specs=zone_specs(
        CUSTOMER_CURATED,
        [CUSTOMER_TRUSTED, ACCELEROMETER_TRUSTED],
        column_lineage({c: [(CUSTOMER_TRUSTED, c)] for c in CUSTOMER_CURATED.columns}),
    ),
    check_specs=zone_check_specs(CUSTOMER_CURATED),
)
def customer_curated(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    with lake.store.exclusive(CUSTOMER_CURATED):
        inputs = Inputs(lake, spark.session, CUSTOMER_TRUSTED, ACCELEROMETER_TRUSTED, key=privacy.key_bytes)
        changes = inputs.changes(lake.store.snapshot(CUSTOMER_CURATED))
        merge = None if changes is None else inputs.customer_merge(changes.identities, by_email)
        customers, readings = inputs.read(CUSTOMER_TRUSTED, merge), inputs.read(ACCELEROMETER_TRUSTED, merge, by_user)
        classified = classify_customer_curated(customers, readings)
        rows_in = inputs.rows_in(CUSTOMER_TRUSTED, customers, merge)
        yield from apply_update(context, lake, inputs, TableUpdate(CUSTOMER_CURATED, classified, rows_in, merge=merge))


@multi_asset(
    specs=zone_specs(
        MACHINE_LEARNING_CURATED,
        [STEP_TRAINER_TRUSTED, ACCELEROMETER_TRUSTED, CUSTOMER_LANDING, CUSTOMER_CURATED],
        column_lineage(
            {
                "sensorReadingTime": [
                    (STEP_TRAINER_TRUSTED, "sensorReadingTime"),
                    (ACCELEROMETER_TRUSTED, "timestamp"),
                ],
                "distanceFromObject": [(STEP_TRAINER_TRUSTED, "distanceFromObject")],
                **{axis: [(ACCELEROMETER_TRUSTED, axis)] for axis in "xyz"},
                "subject_key": [(CUSTOMER_CURATED, "email")],
            }
        ),
    ),
    check_specs=zone_check_specs(MACHINE_LEARNING_CURATED),
)
def machine_learning_curated(context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy) -> Results:
    if privacy.uses_development_key:
        context.log.warning(
            "STEDI_PSEUDONYM_KEY is unset: subject_key uses the built-in DEVELOPMENT key, which anyone can"
            " reproduce (allowed on the built-in sample lake only)."
        )
    with lake.store.exclusive(MACHINE_LEARNING_CURATED):
        session = spark.session
        fingerprint = key_fingerprint(privacy.key_bytes)
        inputs = Inputs(
            lake,
            session,
            STEP_TRAINER_TRUSTED,
            ACCELEROMETER_TRUSTED,
            CUSTOMER_LANDING,
            CUSTOMER_CURATED,
            key=privacy.key_bytes,
            settings={"pseudonym_key_fingerprint": fingerprint},
        )
        changes = inputs.changes(lake.store.snapshot(MACHINE_LEARNING_CURATED))
        steps, readings = inputs.read(STEP_TRAINER_TRUSTED), inputs.read(ACCELEROMETER_TRUSTED)
        customers, curated = inputs.read(CUSTOMER_LANDING), inputs.read(CUSTOMER_CURATED)
        merge, rows_in = None, inputs.rows(STEP_TRAINER_TRUSTED)
        if changes is not None:
            # A device's change touches whoever held it; a customer's, every reading of a device they held.
            claims = [(row.serialNumber, row[IDENTITY_KEY]) for row in device_claims(customers).collect()]
            touched = changes.identities | {who for serial, who in claims if serial in changes.serials}
            curated = inputs.read_for(CUSTOMER_CURATED, inputs.keys(touched), by_email)
            readings = inputs.read_for(ACCELEROMETER_TRUSTED, inputs.keys(touched), by_user)
            held = inputs.read_for(
                STEP_TRAINER_TRUSTED, inputs.keys({s for s, who in claims if who in touched}), by_serial
            )
            owned = with_owner_at_time(held, "sensorReadingTime", device_claims(customers))
            ours = owned.join(F.broadcast(inputs.keys(touched)), owned[OWNER] == F.col("_key"), "left_semi")
            steps = ours.select(*STEP_TRAINER_TRUSTED.columns)
            rows_in = steps.count()
        # Pseudonyms are computed here, in the driver, for the curated subjects, and joined in as data: the key is
        # never part of a Spark plan (plans show literals in full in the UI and event logs).
        subjects = subject_keys([row[IDENTITY_KEY] for row in identities(curated).collect()], privacy.key_bytes)
        if changes is not None:
            keys = subject_keys(touched, privacy.key_bytes).values()
            merge = Merge(inputs.keys(keys), lambda rows: rows[SUBJECT_KEY], Changes(identities=frozenset(touched)))
        classified = classify_machine_learning_curated(steps, readings, customers, subjects_frame(session, subjects))
        update = TableUpdate(
            MACHINE_LEARNING_CURATED,
            classified,
            rows_in,
            merge=merge,
            pairing=True,
            purge=lambda rows: subjects_left(lake, session, rows, None if merge is None else merge.keys),
            # Recorded with the commit too: the dataset card reads both from the version it describes.
            metadata={"pseudonym_key_fingerprint": fingerprint, "consent_policy": privacy.policy.value},
            describe=lambda version: {"dataset_card": MetadataValue.md(card_markdown(lake, version))},
        )
        yield from apply_update(context, lake, inputs, update)


def subjects_left(lake: Lake, session: SparkSession, rows: DataFrame, among: DataFrame | None) -> bool:
    """Whether a subject of the current version (`among` these subject keys, for an incremental run) is not in
    the new rows (a withdrawal, or an erasure): then no older version of the research table may stay readable."""
    if not lake.store.exists(MACHINE_LEARNING_CURATED):
        return False
    before = lake.store.read(session, MACHINE_LEARNING_CURATED).select(SUBJECT_KEY).distinct()
    if among is not None:
        before = before.join(F.broadcast(among), before[SUBJECT_KEY] == among["_key"], "left_semi")
    return before.join(rows.select(SUBJECT_KEY).distinct(), SUBJECT_KEY, "left_anti").limit(1).count() > 0


def card_markdown(lake: Lake, version: int) -> str:
    """The dataset card of a version of the training table, as `stedi export` writes it (read with delta-rs in the
    driver: no Spark job)."""
    return markdown(figures(lake.store, version))
