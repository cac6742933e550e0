"""Delta tables over the Parquet files Spark writes, committed with delta-rs (Spark cannot load delta-spark here).

A write is two steps: Spark writes new Parquet files into a fresh folder under the table's root (invisible to
every reader: no commit names them), then one Delta commit adds them and removes the files they replace. A
reader sees the previous version or the new one, never a mix; a killed writer leaves only unreferenced files,
which `vacuum` deletes. Each commit carries `stedi.*` metadata (the run, the inputs it read, the landing
ledger) in its commitInfo, and an application transaction per table, so two writers that read the same version
cannot both commit: the second fails cleanly with a conflict. Each added file carries Delta statistics from its
Parquet footer (rows; null counts of number columns; min and max of integer columns: times, line numbers), so that
readers skip files; never of a text column, because the log is kept as history and a text column's min or max can
be an address or a name.
No Dagster and no Spark here: the sensor and the SQL command use it too.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)

from stedi_assets.lake.storage import FileInfo, Storage

APP_ID = "stedi"
PARQUET_MAGIC = b"PAR1"
FOOTER_GUESS = 64 * 1024
METADATA_PREFIX = "stedi."


class VacuumOptions(TypedDict):
    retention_hours: int
    enforce_retention_duration: bool
    full: bool


class ConcurrentWriteError(RuntimeError):
    """Another run committed to the table since this run read it: nothing was committed; rerun."""


@dataclass(frozen=True)
class Snapshot:
    """One version of a table: its data files (URIs as the lake spells them), rows and commit metadata."""

    version: int
    files: list[str]
    rows: int
    metadata: dict[str, str] = field(default_factory=dict)
    schema: pa.Schema | None = None  # as the table's log records it


class DeltaFolder:
    """The Delta table at `uri` (a folder under the lake root)."""

    def __init__(self, uri: str, storage: Storage) -> None:
        self.uri = uri.rstrip("/")
        self.storage = storage

    def open(self, version: int | None = None) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri, version=version, storage_options=self.storage.delta_options())
        except TableNotFoundError:
            return None

    def snapshot(self, version: int | None = None) -> Snapshot | None:
        table = self.open(version)
        return None if table is None else self._snapshot(table)

    def _snapshot(self, table: DeltaTable) -> Snapshot:
        actions = pa.table(table.get_add_actions(flatten=True))
        rows = pa.compute.sum(actions["num_records"]).as_py() if actions.num_rows else 0
        metadata = self._our_metadata(table.version())
        files = [f"{self.uri}/{path}" for path in actions["path"].to_pylist()]
        # pyarrow-stubs 20 lack pa.schema's overload for an object with __arrow_c_schema__ (delta-rs's arro3 schema)
        schema = pa.schema(table.schema().to_arrow())  # type: ignore[arg-type]
        return Snapshot(table.version(), sorted(files), int(rows or 0), metadata, schema)

    def staging_folder(self, write_id: str) -> str:
        """Where a write puts its new files before the commit names them."""
        return f"{self.uri}/data/{write_id}"

    def commit(
        self,
        schema: pa.Schema,
        added: list[FileInfo],
        removed: list[str] | None,
        base_version: int | None,
        metadata: dict[str, Any],
    ) -> Snapshot:
        """Commits `added` files, removing `removed` (None: every current file), as the version after
        `base_version` (the version the writer read; None: the table must not exist yet).

        Raises ConcurrentWriteError if another writer committed after `base_version`.
        """
        adds = [
            AddAction(
                self._relative(info.uri),
                info.size,
                {},
                info.modified_ms,
                True,
                json.dumps(statistics(_parquet_footer(self.storage, info), schema)),
            )
            for info in added
        ]
        custom = {f"{METADATA_PREFIX}{key}": _text(value) for key, value in metadata.items()}
        next_version = 0 if base_version is None else base_version + 1
        properties = CommitProperties(custom_metadata=custom, app_transactions=[Transaction(APP_ID, next_version)])
        try:
            if base_version is None:
                create_table_with_add_actions(
                    self.uri,
                    Schema.from_arrow(schema),
                    adds,
                    mode="error",
                    storage_options=self.storage.delta_options(),
                    commit_properties=properties,
                )
            else:
                table = self.open(base_version)
                assert table is not None
                now = int(time.time() * 1000)
                current = self._snapshot(table).files
                gone = current if removed is None else removed
                removes = [RemoveAction(self._relative(uri), True, now) for uri in gone]
                table.create_write_transaction(
                    [*removes, *adds], mode="append", schema=schema, commit_properties=properties
                )
        except (DeltaError, FileExistsError) as error:
            latest = self.open()
            if latest is None or latest.version() < next_version:
                raise  # not a lost race: the storage failed
            raise ConcurrentWriteError(
                f"{self.uri}: another run committed version {next_version} since this run read"
                f" {'no version' if base_version is None else f'version {base_version}'}; nothing was committed"
                f" ({error.__class__.__name__}): rerun"
            ) from None
        snapshot = self.snapshot(next_version)
        write_id = f"{METADATA_PREFIX}write_id"
        if snapshot is None or snapshot.metadata.get(write_id) != custom.get(write_id):
            raise ConcurrentWriteError(f"{self.uri}: version {next_version} was committed by another run")
        return snapshot

    def commits(self, first: int, last: int) -> list[dict[str, str]]:
        """The `stedi.*` metadata of this project's commits among versions first..last (other commits, a
        vacuum's, have none and are left out), read from the log's commit files."""
        found = (self._commit_metadata(version) for version in range(first, last + 1))
        return [metadata for metadata in found if metadata]

    def commit_info(self, version: int) -> dict[str, Any]:
        """One version's commitInfo (its `timestamp`, epoch ms, the operation, `stedi.*` metadata), from its
        commit file ({} when the commit has none). FileNotFoundError when the log no longer holds the version."""
        lines = self.storage.read_bytes(f"{self.uri}/_delta_log/{version:020d}.json").decode().splitlines()
        info: dict[str, Any] = next((json.loads(line)["commitInfo"] for line in lines if '"commitInfo"' in line), {})
        return info

    def _commit_metadata(self, version: int) -> dict[str, str]:
        """The `stedi.*` metadata of one version's commit, from its commit file ({} for others' commits)."""
        info = self.commit_info(version)
        if f"{METADATA_PREFIX}write_id" not in info:
            return {}
        return {k: str(v) for k, v in info.items() if k.startswith(METADATA_PREFIX)}

    def _our_metadata(self, version: int) -> dict[str, str]:
        """The `stedi.*` metadata of this project's last write at or before `version`: other commits (a vacuum's,
        a user's OPTIMIZE) come after it without any. Read from the commit files, not `DeltaTable.history()`,
        which (deltalake 1.6) lists the newest commits whatever version the table was opened at."""
        for earlier in range(version, -1, -1):
            try:
                metadata = self._commit_metadata(earlier)
            except FileNotFoundError:  # the log before a checkpoint was cleaned up: nothing older to read
                return {}
            if metadata:
                return metadata
        return {}

    def _relative(self, uri: str) -> str:
        prefix = self.uri + "/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri} is not inside the table {self.uri}")
        return uri[len(prefix) :]

    def vacuum(self, retention_hours: int, dry_run: bool = False) -> list[str]:
        """Deletes files that no version within the retention needs, and files no commit ever named (with
        `dry_run`, only names them). (A vacuum adds commits to the log: only when there is something to delete.)"""
        table = self.open()
        if table is None:
            return []
        options = VacuumOptions(retention_hours=retention_hours, enforce_retention_duration=False, full=True)
        # delta-rs names a removed file until the log forgets its removal, even once deleted: only files still
        # there are due (else every vacuum would commit again, and the schedule of what comes due run forever).
        named = table.vacuum(dry_run=True, **options)
        due = [path for path in named if self.storage.stat(f"{self.uri}/{path}") is not None]
        if due and not dry_run:
            table.vacuum(dry_run=False, **options)
        return due


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _parquet_footer(storage: Storage, info: FileInfo) -> pq.FileMetaData:
    """A Parquet file's metadata, from its footer alone (the file's last bytes: footer, its length, magic)."""
    tail = storage.read_tail(info.uri, min(info.size, FOOTER_GUESS))
    footer_length = int.from_bytes(tail[-8:-4], "little")
    if footer_length + 8 > len(tail):
        tail = storage.read_tail(info.uri, footer_length + 8)
    footer = tail[-(footer_length + 8) :]
    return pq.read_metadata(io.BytesIO(PARQUET_MAGIC + footer))


def statistics(metadata: pq.FileMetaData, schema: pa.Schema) -> dict[str, Any]:
    """A file's Delta statistics: its rows, the null count of each number column of the table's `schema` and the
    min and max of each integer column (see the module doc), where every row group records them. A column some
    row group records nothing of gets nothing: a reader skips a file on a wrong bound, never on a missing one.
    Fractional columns get no bounds: Parquet's leave NaN out, and Spark orders NaN above every number, so `x > 5`
    could skip a NaN."""
    integers = {f.name for f in schema if pa.types.is_integer(f.type)}
    numbers = [f.name for f in schema if f.name in integers or pa.types.is_floating(f.type)]
    paths = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    lows: dict[str, int] = {}
    highs: dict[str, int] = {}
    nulls: dict[str, int] = {}
    for name in numbers:
        if name not in paths or not groups:
            continue
        found = [stats for group in groups if (stats := group.column(paths[name]).statistics) is not None]
        counts = [stats.null_count for stats in found if stats.null_count is not None]
        if len(counts) < len(groups):
            continue
        nulls[name] = sum(counts)
        bounded = [stats for stats in found if stats.num_values > 0]  # a group of nulls only has no bounds
        if name not in integers or not bounded or not all(stats.has_min_max for stats in bounded):
            continue
        low = [stats.min for stats in bounded if isinstance(stats.min, int)]
        high = [stats.max for stats in bounded if isinstance(stats.max, int)]
        if len(low) == len(high) == len(bounded):
            lows[name], highs[name] = min(low), max(high)
    return {"numRecords": metadata.num_rows, "minValues": lows, "maxValues": highs, "nullCount": nulls}
