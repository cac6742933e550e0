"""Curated zone: the customers with data, and the machine-learning training table."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    TableColumnDep,
    TableColumnLineage,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession

from stedi_assets.assets.accounting import Inputs, rebuild
from stedi_assets.assets.specs import zone_check_specs, zone_specs
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
from stedi_assets.transforms.customers import classify_customer_curated
from stedi_assets.transforms.identity import IDENTITY_KEY, identities
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.pseudonyms import SUBJECT_KEY, key_fingerprint, subject_keys, subjects_frame

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
    with lake.exclusive(CUSTOMER_CURATED):
        inputs = Inputs(lake, spark.session, CUSTOMER_TRUSTED, ACCELEROMETER_TRUSTED, key=privacy.key_bytes)
        classified = classify_customer_curated(inputs.read(CUSTOMER_TRUSTED), inputs.read(ACCELEROMETER_TRUSTED))
        yield from rebuild(context, lake, CUSTOMER_CURATED, classified, inputs, inputs.rows(CUSTOMER_TRUSTED))


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
    with lake.exclusive(MACHINE_LEARNING_CURATED):
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
        # Pseudonyms are computed here, in the driver, for the curated subjects, and joined in as data: the key is
        # never part of a Spark plan (plans show literals in full in the UI and event logs).
        subjects = [row[IDENTITY_KEY] for row in identities(inputs.read(CUSTOMER_CURATED)).collect()]
        classified = classify_machine_learning_curated(
            inputs.read(STEP_TRAINER_TRUSTED),
            inputs.read(ACCELEROMETER_TRUSTED),
            inputs.read(CUSTOMER_LANDING),
            subjects_frame(session, subject_keys(subjects, privacy.key_bytes)),
        )
        yield from rebuild(
            context,
            lake,
            MACHINE_LEARNING_CURATED,
            classified,
            inputs,
            inputs.rows(STEP_TRAINER_TRUSTED),
            pairing=True,
            metadata={"pseudonym_key_fingerprint": fingerprint},
            purge=lambda rows: subjects_left(lake, session, rows),
        )


def subjects_left(lake: Lake, session: SparkSession, rows: DataFrame) -> bool:
    """Whether a subject of the current version is not in the new rows (a withdrawal, or an erasure): then no
    older version of the research table may stay readable."""
    if not lake.exists(MACHINE_LEARNING_CURATED):
        return False
    before = lake.read(session, MACHINE_LEARNING_CURATED).select(SUBJECT_KEY).distinct()
    return before.join(rows.select(SUBJECT_KEY).distinct(), SUBJECT_KEY, "left_anti").limit(1).count() > 0
