"""Exports the training table, one version, with its dataset card, for the data scientists.

    stedi export DEST                 # the current version, as Parquet
    stedi export DEST --version 3     # an earlier version (within the retention)
    stedi export DEST --csv           # CSV with a header instead
    stedi export s3://bucket/prefix   # to S3

Writes `machine_learning_curated` at a Delta version to DEST (a local folder or s3://bucket/prefix): its rows under
DEST/data/ (part-00000.parquet, ..., at most 500,000 rows each; .csv with --csv), then its dataset card beside
them, DATASET.md and dataset.json (rows, subjects, reading times, sampling, consent policy, pseudonym key
fingerprint, the columns with their units, known limits, how to split). The card is written last: a DEST with a
card holds a complete export. It is the card the Dagster UI shows on the asset's materialization of that version.

DEST must be empty or new; --force replaces a previous export there (its data/part-* files and card; nothing
else in DEST is touched). Environment: STEDI_LAKE_ROOT (unset: the built-in sample lake), and the AWS variables
for an s3:// lake or DEST (credentials from the usual chain, never arguments). No Spark and no Dagster: delta-rs
and pyarrow, one record batch at a time, so memory stays flat however big the table is.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from stedi_assets import dataset_card
from stedi_assets.lake.storage import LakeRootError, Storage, is_s3, storage_for
from stedi_assets.lake.store import LakeStore

TABLE = dataset_card.TABLE
DATA = "data"
PART_PREFIX = "part-"
ROWS_PER_FILE = 500_000  # each part is built in memory (tens of MB), then written in one atomic write


class ExportError(ValueError):
    """An export that cannot be done as asked, explained in one line (exit status 2)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, whose usage errors are one line, as the command's other errors (argparse prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def parser(prog: str) -> argparse.ArgumentParser:
    arguments = OneLineParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_argument("dest", metavar="DEST", help="a local folder or s3://bucket/prefix, empty or new")
    arguments.add_argument("--version", type=int, help="the table version to export (default: the current one)")
    arguments.add_argument("--csv", action="store_true", help="CSV files with a header instead of Parquet")
    arguments.add_argument("--force", action="store_true", help="replace a previous export in DEST")
    return arguments


def destination(dest: str) -> str:
    """DEST as the lake spells locations: s3://bucket/prefix, or an absolute local path."""
    if is_s3(dest):
        if not dest.split("://", 1)[1].strip("/"):
            raise ExportError(f"{dest} names no bucket: give s3://bucket/prefix")
        return "s3://" + dest.split("://", 1)[1].rstrip("/")
    path = Path(dest).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ExportError(f"{dest} is a file, not a folder: give a new or empty folder")
    return str(path)


def previous_export(storage: Storage, target: str) -> list[str]:
    """The files a previous export wrote in `target`: its parts and its card."""
    card = {f"{target}/{dataset_card.CARD_MARKDOWN}", f"{target}/{dataset_card.CARD_JSON}"}
    parts = [f.uri for f in storage.list_files(f"{target}/{DATA}") if f.uri.rsplit("/", 1)[1].startswith(PART_PREFIX)]
    return sorted(parts) + sorted(uri for uri in card if storage.stat(uri) is not None)


def check_destination(storage: Storage, target: str, force: bool) -> list[str]:
    """The files to delete before writing (a previous export, with --force); fails if DEST holds anything else
    without --force."""
    try:
        present = storage.list_files(target)
    except (OSError, BotoCoreError, ClientError) as error:  # no such bucket, no access
        raise ExportError(f"{target} cannot be listed ({_first_line(error)}): check DEST and AWS credentials") from None
    if not present:
        return []
    if not force:
        raise ExportError(
            f"{target} is not empty ({len(present)} files): give a new or empty folder, or --force to replace a"
            " previous export there"
        )
    return previous_export(storage, target)


def version_to_export(store: LakeStore, version: int | None) -> int:
    current = store.snapshot(TABLE)
    if current is None:
        raise ExportError(
            f"{TABLE.name} has not been materialized yet (no table at {store.location(TABLE)}): run `stedi run`"
            " first, or set STEDI_LAKE_ROOT to the lake that has it"
        )
    if version is None:
        return current.version
    if not 0 <= version <= current.version:
        raise ExportError(
            f"{TABLE.name} has no version {version} (its versions are 0 to {current.version}): give --version"
            f" between 0 and {current.version}, or leave it out for the current one"
        )
    return version


def batches(table: DeltaTable) -> Iterator[pa.RecordBatch]:
    """The version's rows, the contract's columns in its order, one record batch at a time."""
    yield from table.to_pyarrow_dataset().to_batches(columns=TABLE.columns, batch_size=dataset_card.BATCH_ROWS)


def encode(part: list[pa.RecordBatch], schema: pa.Schema, csv: bool) -> bytes:
    buffer = io.BytesIO()
    if csv:
        with pcsv.CSVWriter(buffer, schema) as writer:
            for batch in part:
                writer.write_batch(batch)
    else:
        with pq.ParquetWriter(buffer, schema) as writer:
            for batch in part:
                writer.write_batch(batch)
    return buffer.getvalue()


def write_rows(table: DeltaTable, storage: Storage, target: str, csv: bool) -> tuple[int, int]:
    """Writes the version's rows as parts of at most ROWS_PER_FILE rows; returns (rows, files). An empty table
    gives one part with the columns and no row."""
    schema = pa.schema([table.to_pyarrow_dataset().schema.field(name) for name in TABLE.columns])
    suffix = "csv" if csv else "parquet"
    rows = files = 0
    part: list[pa.RecordBatch] = []
    held = 0

    def flush() -> None:
        nonlocal files, part, held
        storage.write_bytes(f"{target}/{DATA}/{PART_PREFIX}{files:05d}.{suffix}", encode(part, schema, csv))
        files, part, held = files + 1, [], 0

    for batch in batches(table):
        while batch.num_rows:
            taken = batch.slice(0, ROWS_PER_FILE - held)
            batch = batch.slice(taken.num_rows)
            part.append(taken)
            held += taken.num_rows
            rows += taken.num_rows
            if held == ROWS_PER_FILE:
                flush()
    if held or not files:
        flush()
    return rows, files


def export(store: LakeStore, dest: str, version: int | None, csv: bool, force: bool) -> str:
    """Writes the version's rows and card to DEST; returns what was done, in one line."""
    target = destination(dest)
    chosen = version_to_export(store, version)
    storage = storage_for(target)
    stale = check_destination(storage, target, force)
    try:
        card = dataset_card.figures(store, chosen)
        table = store.delta(TABLE).open(chosen)
    except (OSError, DeltaError) as error:
        raise ExportError(
            f"version {chosen} of {TABLE.name} can no longer be read ({_first_line(error)}): its files were removed"
            " after the retention, an erasure or a withdrawal; export a later version"
        ) from None
    assert table is not None, f"{TABLE.name} version {chosen} was just read"
    for uri in stale:
        storage.delete(uri)
    rows, files = write_rows(table, storage, target, csv)
    assert rows == card.rows, f"{TABLE.name} version {chosen}: {rows} rows written, {card.rows} counted"
    for name, text in dataset_card.files(card):
        storage.write_bytes(f"{target}/{name}", text.encode())
    kind = "CSV" if csv else "Parquet"
    return (
        f"{TABLE.name} version {chosen}: {_count(rows, 'row')} of {_count(card.subjects, 'subject')} in"
        f" {_count(files, f'{kind} file')} under {target}/{DATA}/, card in {target}/{dataset_card.CARD_MARKDOWN}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_root(store: LakeStore) -> None:
    """The lake root must be readable (an export needs no landing folder, so LakeStore.check_root is too strict)."""
    try:
        store.storage.check_root()
    except LakeRootError as error:
        if store.is_sample:
            raise ExportError(f"{error}; it is the built-in sample lake: `make run` builds it") from None
        raise


def main(argv: list[str] | None = None, prog: str = "stedi export") -> int:
    args = parser(prog).parse_args(argv)
    store = LakeStore(os.environ.get("STEDI_LAKE_ROOT", ""))
    try:
        check_root(store)
        print(export(store, args.dest, args.version, args.csv, args.force))
    except (ExportError, LakeRootError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except (OSError, BotoCoreError, ClientError) as error:  # writing failed (a full disk, S3 refusing)
        print(f"{prog}: the export failed ({_first_line(error)}); rerun it with --force", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
