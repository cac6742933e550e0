"""Committing to a Delta folder without Spark, as `LakeStore.write` does: Parquet files written (here with
pyarrow) into a fresh staging folder of the table, then one `DeltaFolder.commit` naming them."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stedi_assets.lake.delta import DeltaFolder, Snapshot
from stedi_assets.lake.storage import FileInfo

SCHEMA = pa.schema([("x", pa.int64())])


def stage(delta: DeltaFolder, *parts: list[int], schema: pa.Schema = SCHEMA) -> tuple[str, list[FileInfo]]:
    """Writes one Parquet file per part into a new staging folder; returns the write id and the files listed."""
    write_id = uuid.uuid4().hex
    folder = delta.staging_folder(write_id)
    for number, values in enumerate(parts):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"x": values}, schema=schema), buffer)
        delta.storage.write_bytes(f"{folder}/part-{number:05d}.parquet", buffer.getvalue())
    return write_id, delta.storage.list_files(folder)


def commit(
    delta: DeltaFolder,
    *parts: list[int],
    base: Snapshot | None = None,
    removed: list[str] | None = None,
    **metadata: Any,
) -> Snapshot:
    """Stages the parts and commits them after `base` (None: the first version), removing `removed`."""
    write_id, added = stage(delta, *parts)
    version = None if base is None else base.version
    return delta.commit(SCHEMA, added, removed, version, {**metadata, "write_id": write_id})


def values(delta: DeltaFolder, snapshot: Snapshot) -> list[int]:
    """What a reader of the snapshot reads: the rows of exactly its files."""
    rows = []
    for uri in snapshot.files:
        rows += pq.read_table(io.BytesIO(delta.storage.read_bytes(uri)))["x"].to_pylist()
    return sorted(rows)
