"""The registry: every zone table declared once.

A table's name is its Dagster asset key, its SQL name and (with its entity and zone) its path under the lake
root. Assets, the IO manager, the checks and the docs all look tables up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pyspark.sql.types as T
from pandera.pyspark import DataFrameModel

from stedi_assets import contracts as c


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
    model: type[DataFrameModel]
    description: str
    # Landing feeds only: JSON field spellings accepted for a column, e.g. {"timeStamp": "timestamp"}.
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """Path under the lake root. Quarantine tables get a folder per rejecting asset."""
        if self.zone is Zone.QUARANTINE:
            return f"{self.entity}/quarantine/{self.name.removesuffix('_quarantine')}"
        return f"{self.entity}/{self.zone.value}"

    @property
    def schema(self) -> T.StructType:
        return c.spark_schema(self.model)

    @property
    def columns(self) -> list[str]:
        return self.schema.fieldNames()


def _quarantine_of(table: ZoneTable) -> ZoneTable:
    return ZoneTable(
        name=f"{table.name}_quarantine",
        entity=table.entity,
        zone=Zone.QUARANTINE,
        model=c.Quarantine,
        description=f"Rows {table.name} rejected, with the reason.",
    )


CUSTOMER_LANDING = ZoneTable(
    "customer_landing",
    "customer",
    Zone.LANDING,
    c.CustomerLanding,
    "Customer records from the website, as delivered (JSON lines), parsed against the contract.",
)
ACCELEROMETER_LANDING = ZoneTable(
    "accelerometer_landing",
    "accelerometer",
    Zone.LANDING,
    c.AccelerometerLanding,
    "Accelerometer readings from the phone app, as delivered (JSON lines), parsed against the contract.",
    aliases={"timeStamp": "timestamp"},
)
STEP_TRAINER_LANDING = ZoneTable(
    "step_trainer_landing",
    "step_trainer",
    Zone.LANDING,
    c.StepTrainerLanding,
    "Step-trainer distance readings, as delivered (JSON lines), parsed against the contract.",
)
CUSTOMER_TRUSTED = ZoneTable(
    "customer_trusted",
    "customer",
    Zone.TRUSTED,
    c.CustomerTrusted,
    "Current state of each customer whose current record consents to research.",
)
ACCELEROMETER_TRUSTED = ZoneTable(
    "accelerometer_trusted",
    "accelerometer",
    Zone.TRUSTED,
    c.AccelerometerTrusted,
    "Accelerometer readings of customer_trusted customers, deduplicated, within the consent policy.",
)
CUSTOMER_CURATED = ZoneTable(
    "customer_curated",
    "customer",
    Zone.CURATED,
    c.CustomerCurated,
    "customer_trusted customers with at least one accelerometer_trusted reading.",
)
STEP_TRAINER_TRUSTED = ZoneTable(
    "step_trainer_trusted",
    "step_trainer",
    Zone.TRUSTED,
    c.StepTrainerTrusted,
    "Readings of devices owned by exactly one customer, who is in customer_curated; within the consent policy.",
)
MACHINE_LEARNING_CURATED = ZoneTable(
    "machine_learning_curated",
    "machine_learning",
    Zone.CURATED,
    c.MachineLearningCurated,
    "Each step_trainer_trusted reading paired with its owner's accelerometer reading(s) at the same millisecond."
    " No direct identifiers: subject_key is a keyed pseudonym.",
)

LANDING_TABLES = (CUSTOMER_LANDING, ACCELEROMETER_LANDING, STEP_TRAINER_LANDING)
QUARANTINE_OF = {t.name: _quarantine_of(t) for t in (*LANDING_TABLES, STEP_TRAINER_TRUSTED)}

ALL_TABLES: dict[str, ZoneTable] = {
    t.name: t
    for t in (
        *LANDING_TABLES,
        CUSTOMER_TRUSTED,
        ACCELEROMETER_TRUSTED,
        CUSTOMER_CURATED,
        STEP_TRAINER_TRUSTED,
        MACHINE_LEARNING_CURATED,
        *QUARANTINE_OF.values(),
    )
}
