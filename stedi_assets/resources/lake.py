"""The lake as a Dagster resource: its root and run settings, on top of the lake's tables (delta_lake.py)."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from stedi_assets.resources.delta_lake import DeltaLake, MissingTableError

__all__ = ["Lake", "MissingTableError"]


class Lake(ConfigurableResource, DeltaLake):
    """The zone tables under `root`, each a Delta table at its path; configured per run."""

    root: str = Field(
        default="",
        description="A directory or s3://bucket/prefix holding {entity}/landing/ folders; empty: the built-in"
        " sample lake ./sample_lake",
    )
    rebuild: bool = Field(
        default=False,
        description="Reread every landing file and rebuild every table, instead of taking up only new files",
    )
    retention_hours: int = Field(
        default=168,
        description="How long replaced table versions stay readable (time travel, rollback); an erasure removes"
        " them at once",
    )

    @property
    def root_setting(self) -> str:
        return self.root

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.check_root()
        context.log.info(f"lake {self.uri}")
