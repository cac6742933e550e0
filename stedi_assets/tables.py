"""The registry: every zone table declared once.

A table's name is its Dagster asset key, its SQL name and (with its entity and zone) its path under the lake
root. Every table is a Delta table at its path; a landing table is the parse of the raw JSON-lines files that
feeds drop under `{entity}/landing/`. Assets, the checks, the SQL command, the catalog and the docs all look
tables up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import pyspark.sql.types as T

from stedi_assets import reasons

if TYPE_CHECKING:
    from pandera.pyspark import DataFrameModel
    from pyspark.sql import DataFrame


class Zone(StrEnum):
    LANDING = "landing"
    TRUSTED = "trusted"
    CURATED = "curated"
    QUARANTINE = "quarantine"


@dataclass(frozen=True)
class ZoneTable:
    name: str
    entity: str
    zone: Zone
    # Its pandera model's class name in contracts.py, imported on first use (pandera takes a second to import,
    # which the light commands, `stedi sql` among them, do not pay), or the class itself (a table defined elsewhere).
    contract: str | type[DataFrameModel[DataFrame]]
    description: str
    # Why the table's asset may leave an input row out: its filter and quarantine reasons (classify.py). A
    # table with a quarantine reason gets a quarantine table; a reason not declared here fails the run.
    reasons: frozenset[str] = frozenset()
    # Holds direct identifiers (email, name, phone, birthday, device serial) or lines that do: tagged `pii`.
    pii: bool = True
    # Landing feeds only: JSON field spellings accepted for a column, e.g. {"timeStamp": "timestamp"}.
    aliases: dict[str, str] = field(default_factory=dict)
    # Landing zone: the folder (under the entity) a feed delivers raw files into, and the table's own folder.
    feed: str = "landing"
    folder: str = "parsed"

    @property
    def path(self) -> str:
        """The Delta table's folder under the lake root. Quarantine tables get a folder per rejecting asset;
        a landing table lives beside its feed's raw files, in `{entity}/parsed`."""
        if self.zone is Zone.QUARANTINE:
            return f"{self.entity}/quarantine/{self.name.removesuffix('_quarantine')}"
        if self.zone is Zone.LANDING:
            return f"{self.entity}/{self.folder}"
        return f"{self.entity}/{self.zone.value}"

    @property
    def files_path(self) -> str:
        """Landing tables: the folder the feed delivers its raw files into."""
        if self.zone is not Zone.LANDING:
            raise ValueError(f"{self.name} is not a landing table")
        return f"{self.entity}/{self.feed}"

    @property
    def model(self) -> type[DataFrameModel[DataFrame]]:
        if not isinstance(self.contract, str):
            return self.contract
        from stedi_assets import contracts  # imported on first use: see `contract`

        model: type[DataFrameModel[DataFrame]] = getattr(contracts, self.contract)
        return model

    @property
    def schema(self) -> T.StructType:
        from stedi_assets.contracts import spark_schema  # imported on first use: see `contract`

        return spark_schema(self.model)

    @property
    def columns(self) -> list[str]:
        return self.schema.fieldNames()

    @property
    def quarantines(self) -> bool:
        return bool(self.reasons & reasons.QUARANTINE_REASONS)


def _quarantine_of(table: ZoneTable) -> ZoneTable:
    return ZoneTable(
        name=f"{table.name}_quarantine",
        entity=table.entity,
        zone=Zone.QUARANTINE,
        contract="Quarantine",
        description=f"Rows {table.name} rejected, with the reason.",
    )


LANDING_REASONS = (
    frozenset(
        {
            reasons.BLANK_LINE,
            reasons.ERASED,
            reasons.NOT_JSON,
            reasons.DUPLICATE_KEY,
            reasons.MISSING_FIELD,
            reasons.WRONG_TYPE,
            reasons.INVALID_VALUE,
        }
    )
    | reasons.FILE_REASONS
)

CUSTOMER_LANDING = ZoneTable(
    "customer_landing",
    "customer",
    Zone.LANDING,
    "CustomerLanding",
    "Customer records from the website, as delivered (JSON lines), parsed against the contract.",
    LANDING_REASONS,
)
ACCELEROMETER_LANDING = ZoneTable(
    "accelerometer_landing",
    "accelerometer",
    Zone.LANDING,
    "AccelerometerLanding",
    "Accelerometer readings from the phone app, as delivered (JSON lines), parsed against the contract.",
    LANDING_REASONS,
    aliases={"timeStamp": "timestamp"},
)
STEP_TRAINER_LANDING = ZoneTable(
    "step_trainer_landing",
    "step_trainer",
    Zone.LANDING,
    "StepTrainerLanding",
    "Step-trainer distance readings, as delivered (JSON lines), parsed against the contract.",
    LANDING_REASONS,
)
CUSTOMER_TRUSTED = ZoneTable(
    "customer_trusted",
    "customer",
    Zone.TRUSTED,
    "CustomerTrusted",
    "Current state of each customer whose current record consents to research.",
    frozenset(
        {
            reasons.DUPLICATE,
            reasons.SUPERSEDED,
            reasons.SUPERSEDED_BY_QUARANTINED,
            reasons.NO_CONSENT,
            reasons.FUTURE_CONSENT,
        }
    ),
)
ACCELEROMETER_TRUSTED = ZoneTable(
    "accelerometer_trusted",
    "accelerometer",
    Zone.TRUSTED,
    "AccelerometerTrusted",
    "Accelerometer readings of customer_trusted customers, deduplicated, within the consent policy.",
    frozenset({reasons.DUPLICATE, reasons.UNKNOWN_USER, reasons.NO_CONSENT, reasons.BEFORE_CONSENT}),
)
CUSTOMER_CURATED = ZoneTable(
    "customer_curated",
    "customer",
    Zone.CURATED,
    "CustomerCurated",
    "customer_trusted customers with at least one accelerometer_trusted reading.",
    frozenset({reasons.NO_ACCELEROMETER_READINGS}),
)
STEP_TRAINER_TRUSTED = ZoneTable(
    "step_trainer_trusted",
    "step_trainer",
    Zone.TRUSTED,
    "StepTrainerTrusted",
    "Readings of devices owned by exactly one customer, who is in customer_curated; within the consent policy.",
    frozenset(
        {
            reasons.DUPLICATE,
            reasons.UNKNOWN_DEVICE,
            reasons.NO_OWNER_AT_TIME,
            reasons.AMBIGUOUS_DEVICE_OWNER,
            reasons.NO_CONSENT,
            reasons.OWNER_NOT_CURATED,
            reasons.BEFORE_CONSENT,
        }
    ),
)
MACHINE_LEARNING_CURATED = ZoneTable(
    "machine_learning_curated",
    "machine_learning",
    Zone.CURATED,
    "MachineLearningCurated",
    "Each step_trainer_trusted reading paired with its owner's accelerometer reading(s) at the same millisecond."
    " No direct identifiers: subject_key is a keyed pseudonym.",
    frozenset({reasons.NO_ACCELEROMETER_MATCH}),
    pii=False,
)

# Erasure requests land as files too; they are consumed into tombstones and then deleted (see assets/erasure.py).
CUSTOMER_ERASURE = ZoneTable(
    "customer_erasure",
    "customer",
    Zone.LANDING,
    "ErasureTombstone",
    "Erasure requests, kept only as keyed hashes of the customer and of the devices they held (tombstones), so"
    " that no rebuild or redelivered file brings an erased customer back.",
    pii=False,
    feed="erasure",
    folder="erasure_tombstones",
)

LANDING_TABLES = (CUSTOMER_LANDING, ACCELEROMETER_LANDING, STEP_TRAINER_LANDING)
ZONE_TABLES = (
    CUSTOMER_ERASURE,
    *LANDING_TABLES,
    CUSTOMER_TRUSTED,
    ACCELEROMETER_TRUSTED,
    CUSTOMER_CURATED,
    STEP_TRAINER_TRUSTED,
    MACHINE_LEARNING_CURATED,
)
QUARANTINE_OF = {t.name: _quarantine_of(t) for t in ZONE_TABLES if t.quarantines}

ALL_TABLES: dict[str, ZoneTable] = {t.name: t for t in (*ZONE_TABLES, *QUARANTINE_OF.values())}
