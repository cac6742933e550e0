"""The lake's tables: where each zone table lives under the root, and how it is read and written (Delta).

No Dagster here: the `Lake` resource (resources/lake.py) wraps a store with its run configuration, and the light
commands (`stedi sql`, `stedi catalog`) use a store as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructField, StructType

from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import DeltaFolder, Snapshot
from stedi_assets.lake.storage import FileInfo, LakeRootError, Storage, is_s3, storage_for
from stedi_assets.tables import LANDING_TABLES, ZoneTable

LEAVING = "_leaving"
# The built-in sample lake (`stedi sample` writes it): the root when none is set.
SAMPLE_LAKE = Path(__file__).resolve().parents[2] / "sample_lake"
ALL_CHANGED = "all"  # a commit's changes when it replaced the whole table (or cannot say what it changed)


LAKE_ROOT = "STEDI_LAKE_ROOT / lake.root"
LAKE_FIX = (
    "set it to your lake's folder or s3://bucket/prefix, or unset it for the built-in sample lake (`stedi sample`"
    " generates it)"
)


class MissingTableError(LookupError):
    """A table that has not been materialized yet."""


class LakeStore:
    """The zone tables under a root, a local directory or s3://bucket/prefix: each a Delta table at its path."""

    def __init__(self, root: str = "") -> None:
        self._root = root

    @property
    def root_setting(self) -> str:
        """The root as configured (empty: the built-in sample lake)."""
        return self._root

    @property
    def uri(self) -> str:
        return self.root_setting.strip().rstrip("/") or str(SAMPLE_LAKE)

    @property
    def is_sample(self) -> bool:
        return not self.root_setting.strip()

    @cached_property
    def storage(self) -> Storage:
        return storage_for(self.uri)

    def check_root(self) -> None:
        """Checks the root setting (STEDI_LAKE_ROOT, or the resource's `lake.root`) before anything reads it: a
        LakeRootError saying, in one line, what is wrong with the root and how to fix it."""
        root = self.root_setting
        shown = f"{LAKE_ROOT}={root!r}"
        if self.is_sample and not Path(self.uri).is_dir():
            raise LakeRootError(
                f"{LAKE_ROOT} is unset, so the lake is the built-in sample lake {self.uri}, which is not generated yet:"
                " run `stedi sample`, or set STEDI_LAKE_ROOT to your lake's folder or s3://bucket/prefix"
            )
        if is_s3(self.uri):
            try:
                self.storage.check_root()
            except LakeRootError as error:
                cause = error.__context__ or error  # the S3 client's error (suppressed in the trace, not lost)
                raise LakeRootError(
                    f"{shown} cannot be read ({cause}): check the bucket and prefix, and the AWS credentials and region"
                    " (AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_REGION)"
                ) from None
        else:
            path = Path(self.uri)
            if not path.exists():
                raise LakeRootError(f"{shown} names no folder: {LAKE_FIX}")
            if not path.is_dir():
                raise LakeRootError(f"{shown} names a file, not a folder: {LAKE_FIX}")
        missing = [table.files_path for table in LANDING_TABLES if not self.storage.exists(self.files_location(table))]
        named = shown if root.strip() else LAKE_ROOT
        landing = ", ".join(table.files_path for table in LANDING_TABLES)
        if len(missing) == len(LANDING_TABLES):
            raise LakeRootError(
                f"{named} names a folder that is not a lake (it has none of the landing folders {landing}): set it to"
                " the folder that holds them, or unset it for the built-in sample lake"
            )
        if missing:
            raise LakeRootError(
                f"{named} names a lake without the landing folder{'s' * (len(missing) > 1)} {', '.join(missing)}:"
                f" create {'them' if len(missing) > 1 else 'it'}, or set it to the folder that holds {landing}"
            )

    @contextmanager
    def exclusive(self, table: ZoneTable) -> Iterator[None]:
        """Holds the writer's lock of a table (and its quarantine) on this machine while the block runs.

        Two runs on one machine (the sensor's, one from the UI, `stedi run`) then take turns on each table: the
        second reads what the first committed instead of losing a commit race. The lock is an flock, released by
        the operating system when its process dies, so a killed run never leaves it held. Writers on other
        machines are kept apart by Delta's commit conflicts (ConcurrentWriteError) instead.
        """
        if is_s3(self.uri):
            folder = Path(tempfile.gettempdir()) / "stedi-locks" / hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        else:
            folder = Path(self.uri) / "_stedi" / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{table.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def location(self, table: ZoneTable) -> str:
        """The table's folder under the root, spelled as the root is (s3:// stays s3://)."""
        return f"{self.uri}/{table.path}"

    def files_location(self, table: ZoneTable) -> str:
        return f"{self.uri}/{table.files_path}"

    def delta(self, table: ZoneTable) -> DeltaFolder:
        return DeltaFolder(self.location(table), self.storage)

    def snapshot(self, table: ZoneTable, version: int | None = None) -> Snapshot | None:
        """The table's current version (or `version`); None before its first commit."""
        return self.delta(table).snapshot(version)

    def exists(self, table: ZoneTable) -> bool:
        return self.snapshot(table) is not None

    def landing_files(self, table: ZoneTable) -> list[FileInfo]:
        """The raw files a feed has delivered (names starting with _ or . are skipped: staging, markers)."""
        return self.storage.list_files(self.files_location(table))

    def read(
        self, session: SparkSession, table: ZoneTable, snapshot: Snapshot | None = None, as_stored: bool = False
    ) -> DataFrame:
        """A version of a table (the current one unless given) as a DataFrame with the contract's schema, or
        `as_stored`, with the schema its log records (what readers without the contract see)."""
        snapshot = snapshot or self.snapshot(table)
        if snapshot is None:
            raise MissingTableError(f"{table.name} has not been materialized yet (no table at {self.location(table)})")
        schema = from_arrow_schema(snapshot.schema) if as_stored and snapshot.schema else table.schema
        return self.read_files(session, schema, snapshot.files)

    def read_files(self, session: SparkSession, schema: StructType, files: list[str]) -> DataFrame:
        if not files:
            return session.createDataFrame([], schema)
        return session.read.schema(schema).parquet(*(self.storage.spark_uri(f) for f in files))

    def survivors(
        self, session: SparkSession, table: ZoneTable, base: Snapshot, leaving: Callable[[DataFrame], DataFrame]
    ) -> tuple[DataFrame, list[str]]:
        """For rows to leave a table (`leaving` adds a boolean column `_leaving` to a frame of its rows): the
        files holding such rows (to be replaced) and those files' other rows (to be written again)."""
        files = self.read(session, table, base).withColumn("_file", F.col("_metadata.file_path"))
        found = leaving(files).where(F.col(LEAVING)).select("_file").distinct().collect()
        # Spark names files by its own URI (file:/..., s3a://...): back to the lake's spelling of the same file.
        marker = f"/{table.path}/"
        replaced = sorted(f"{self.location(table)}/{row[0].split(marker, 1)[1]}" for row in found)
        staying = leaving(self.read_files(session, table.schema, replaced)).where(~F.col(LEAVING))
        return staying.select(*table.columns), replaced

    def vacuum(self, table: ZoneTable, retention_hours: int) -> int:
        """Deletes the files no version within the retention needs (and any a killed writer left); returns how
        many. With no retention, no version but the current one can be read afterwards."""
        return len(self.delta(table).vacuum(retention_hours))

    def vacuum_due(self, table: ZoneTable, retention_hours: int) -> int:
        """How many files a vacuum with this retention would delete now (deleting none)."""
        return len(self.delta(table).vacuum(retention_hours, dry_run=True))

    def write(
        self,
        table: ZoneTable,
        frame: DataFrame,
        base: Snapshot | None,
        replaced: list[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        changes: Changes | None = None,
    ) -> Snapshot:
        """Commits `frame` as the table's next version after `base` (the version this run read), in one atomic
        Delta commit: with `replaced`, those files leave the table and the others stay; without, the frame
        replaces the whole table. Another run's commit since `base` makes this fail (ConcurrentWriteError).

        `changes` (None: all) are recorded with the commit, for downstream tables to recompute only those keys.
        """
        delta = self.delta(table)
        write_id = uuid.uuid4().hex
        recorded = ALL_CHANGED if changes is None else self.record_changes(table, changes, write_id)
        staging = delta.staging_folder(write_id)
        frame.select(*table.columns).write.mode("error").parquet(self.storage.spark_uri(staging))
        added = self.storage.list_files(staging)
        schema = to_arrow_schema(StructType([StructField(f.name, f.dataType, True) for f in table.schema.fields]))
        return delta.commit(
            schema,
            added,
            replaced,
            None if base is None else base.version,
            {**(metadata or {}), "write_id": write_id, "table": table.name, "changes": recorded},
        )

    def record_changes(self, table: ZoneTable, changes: Changes, write_id: str) -> str:
        """Writes a commit's change set under the table's `_stedi/` folder (Delta readers and vacuum leave it
        alone); returns its path relative to the table, which the commit's metadata names (`stedi.changes`).

        A table without personal data (the research table) records none: a change set names customers and
        devices, and nothing under a folder granted to researchers may. No table reads its changes; one that
        did would recompute everything, as after a commit that cannot say what it changed."""
        if not table.pii:
            return ALL_CHANGED
        buffer = io.BytesIO()
        pq.write_table(changes.to_arrow(), buffer)
        recorded = f"_stedi/changes-{write_id}.parquet"
        self.storage.write_bytes(f"{self.location(table)}/{recorded}", buffer.getvalue())
        return recorded

    def changes(self, table: ZoneTable, since: int | None, until: int | None) -> Changes | None:
        """The keys the table's commits after version `since`, up to `until`, changed; None when one of them
        replaced the whole table or did not say (then everything downstream is recomputed)."""
        if since is None or until is None:
            return None
        total = Changes()
        try:
            commits = self.delta(table).commits(since + 1, until)
        except FileNotFoundError:  # the log of those versions was cleaned up: they cannot say
            return None
        for metadata in commits:
            recorded = metadata.get("stedi.changes", ALL_CHANGED)
            if recorded == ALL_CHANGED:
                return None
            try:
                data = self.storage.read_bytes(f"{self.location(table)}/{recorded}")
            except FileNotFoundError:  # forgotten by an erasure (see forget_changes)
                return None
            total |= Changes.from_arrow(pq.read_table(io.BytesIO(data)))
        return total

    def forget_changes(self, table: ZoneTable) -> int:
        """Deletes every change set recorded with the table's commits (they name customers and devices, so an
        erasure must not leave them behind); returns how many. Downstream tables reading changes since an
        earlier version then recompute from scratch, as after a commit that cannot say what it changed."""
        recorded = [f for f in self.storage.list_files(f"{self.location(table)}/_stedi") if "/changes-" in f.uri]
        for changes in recorded:
            self.storage.delete(changes.uri)
        return len(recorded)
