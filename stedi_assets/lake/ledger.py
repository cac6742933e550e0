"""The ledger of landing files: which raw files a landing table's current version consumed.

Each commit of a landing table names, in its commit metadata, a Parquet snapshot of the whole ledger written
just before it (under the table's `_stedi/` folder, which Delta readers and vacuum leave alone). The ledger is
thus atomic with the version: a file counts as consumed exactly when a committed version says so. A run
consumes the files whose fingerprint (size and ETag on S3; size, modification time, inode and change time
locally) the ledger does not hold, and removes the rows of files that are gone.
No Dagster and no Spark here: the sensor reads the ledger too.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import pyarrow as pa
import pyarrow.parquet as pq

from stedi_assets.lake.delta import DeltaFolder, Snapshot
from stedi_assets.lake.names import listed_name, text_name
from stedi_assets.lake.storage import FileInfo

LEDGER_KEY = "ledger"  # commit metadata key (stedi.ledger): the snapshot's path relative to the table root
READ = "read"
QUARANTINED = "quarantined"  # the whole file could not be read: see the landing quarantine for why
# Read, but an erasure could not blank its erased customer's lines (an I/O error): every later run of the
# landing table reads it again, as if rewritten, and blanks them, until it is blanked or gone.
BLANKING_PENDING = "blanking_pending"


@dataclass(frozen=True)
class LedgerEntry:
    source_file: str
    size: int
    version: str
    # When the file arrived: its modification time when first consumed (orders records delivered as ties).
    arrived_at: int
    status: str = READ
    lines: int = 0

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.version}"

    @classmethod
    def of(cls, info: FileInfo) -> LedgerEntry:
        return cls(info.uri, info.size, info.version, info.modified_ms)


_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("source_file", pa.string()),
    ("size", pa.int64()),
    ("version", pa.string()),
    ("arrived_at", pa.int64()),
    ("status", pa.string()),
    ("lines", pa.int64()),
]
SCHEMA = pa.schema(_COLUMNS)


@dataclass(frozen=True)
class Delivery:
    """What the landing folder holds against what the ledger consumed."""

    new: list[FileInfo]  # not in the ledger, or rewritten since (another fingerprint)
    gone: list[str]  # in the ledger, no longer in the folder (or rewritten: their old rows go)

    @property
    def empty(self) -> bool:
        return not self.new and not self.gone


def compare(ledger: dict[str, LedgerEntry], files: list[FileInfo], retry_blanking: bool = False) -> Delivery:
    """New, rewritten and gone files; with `retry_blanking` (the landing asset, not the sensor: a failure would
    request a run every tick), the files whose blanking is pending count as rewritten."""
    listed = {f.uri: f for f in files}

    def taken(f: FileInfo) -> bool:
        entry = ledger.get(f.uri)
        pending = retry_blanking and entry is not None and entry.status == BLANKING_PENDING
        return entry is not None and entry.fingerprint == f.fingerprint and not pending

    new = [f for f in files if not taken(f)]
    rewritten = [f.uri for f in new if f.uri in ledger]
    gone = sorted(set(ledger) - set(listed)) + rewritten
    return Delivery(new=new, gone=sorted(gone))


def read_ledger(table: DeltaFolder, snapshot: Snapshot | None) -> dict[str, LedgerEntry]:
    """The ledger of a landing table's version (empty before its first commit)."""
    if snapshot is None or f"stedi.{LEDGER_KEY}" not in snapshot.metadata:
        return {}
    data = table.storage.read_bytes(f"{table.uri}/{snapshot.metadata[f'stedi.{LEDGER_KEY}']}")
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    entries = [LedgerEntry(**{**row, "source_file": listed_name(row["source_file"])}) for row in rows]
    return {entry.source_file: entry for entry in entries}


def write_ledger(table: DeltaFolder, entries: dict[str, LedgerEntry]) -> str:
    """Writes a ledger snapshot for the next commit; returns the path to name in its metadata."""
    rows = [
        {**asdict(entry), "source_file": text_name(entry.source_file)}
        for entry in sorted(entries.values(), key=lambda e: e.source_file)
    ]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buffer)
    relative = f"_stedi/ledger-{uuid.uuid4().hex}.parquet"
    table.storage.write_bytes(f"{table.uri}/{relative}", buffer.getvalue())
    return relative


def arrival_times(
    ledger: dict[str, LedgerEntry], files: list[FileInfo], blanked: Mapping[str, int] | None = None
) -> dict[str, int]:
    """When each file arrived: its modification time when first consumed. A file the ledger already holds as it
    is (a rebuild rereads it) keeps its recorded arrival, as does a file an erasure rewrote (`blanked`, from the
    blanking journal: its new fingerprint may not have been committed); a new or rewritten file arrives now, at
    its mtime."""
    blanked = blanked or {}

    def arrival(f: FileInfo) -> int:
        if f.uri in ledger and ledger[f.uri].fingerprint == f.fingerprint:
            return ledger[f.uri].arrived_at
        return blanked.get(f.uri, f.modified_ms)

    return {f.uri: arrival(f) for f in files}


JOURNAL = "_stedi/blanking-journal"


def journal_blanking(table: DeltaFolder, uri: str, arrived_at: int) -> None:
    """Records, before an erasure rewrites a raw file, that the rewrite is the lake's own and when the file
    arrived: if the run fails before its commit names the new fingerprint, the next run takes the file up again
    (as rewritten) with its arrival, not as a new delivery. Cleared once the commit is made."""
    name = hashlib.sha256(uri.encode()).hexdigest()
    record = json.dumps({"source_file": uri, "arrived_at": arrived_at}).encode()
    table.storage.write_bytes(f"{table.uri}/{JOURNAL}/{name}.json", record)


def read_blanking_journal(table: DeltaFolder) -> dict[str, int]:
    """The rewrites journaled and not yet committed: file -> its arrival."""
    records = [json.loads(table.storage.read_bytes(f.uri)) for f in table.storage.list_files(f"{table.uri}/{JOURNAL}")]
    return {record["source_file"]: record["arrived_at"] for record in records}


def clear_blanking_journal(table: DeltaFolder) -> None:
    for record in table.storage.list_files(f"{table.uri}/{JOURNAL}"):
        table.storage.delete(record.uri)


def consumed(
    ledger: dict[str, LedgerEntry],
    delivery: Delivery,
    arrivals: dict[str, int],
    read: dict[str, int],
    quarantined: set[str],
) -> dict[str, LedgerEntry]:
    """The ledger after a run: gone files out, new files in with their line counts (`read`) or as quarantined."""
    entries = {uri: entry for uri, entry in ledger.items() if uri not in set(delivery.gone)}
    for info in delivery.new:
        entry = replace(LedgerEntry.of(info), arrived_at=arrivals[info.uri])
        if info.uri in quarantined:
            entries[info.uri] = replace(entry, status=QUARANTINED)
        else:  # read: an empty file has no lines, and is consumed all the same
            entries[info.uri] = replace(entry, lines=read.get(info.uri, 0))
    return entries
