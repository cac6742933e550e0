"""The lake as a Dagster resource: its root and run settings, wrapping the lake's tables (lake/store.py)."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from stedi_assets.lake.store import LakeStore, MissingTableError

__all__ = ["Lake", "MissingTableError"]


class Lake(ConfigurableResource):
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
    _store: LakeStore | None = PrivateAttr(default=None)

    @property
    def store(self) -> LakeStore:
        """The tables under the configured root (no Dagster in it: the sensor and the commands use it too)."""
        if self._store is None:
            self._store = LakeStore(self.root)
        return self._store

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.store.check_root()  # a bad root fails the run at once, in one line naming it
        if context.log is not None:  # optional: an InitResourceContext made without a log manager has none
            context.log.info(f"lake {self.store.uri}")
