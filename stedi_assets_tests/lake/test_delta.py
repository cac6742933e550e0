"""Delta folders without Spark: commits, what readers of each version see, conflicts, vacuum, the commit list."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from stedi_assets.lake.delta import ConcurrentWriteError, DeltaFolder, statistics
from stedi_assets.lake.storage import LocalStorage, S3Storage
from stedi_assets_tests.lake.commits import SCHEMA, commit, stage, values


@pytest.fixture
def delta(tmp_path: Path) -> DeltaFolder:
    return DeltaFolder(f"{tmp_path}/table/", LocalStorage(str(tmp_path)))


def test_a_missing_table_has_no_snapshot(delta: DeltaFolder) -> None:
    assert delta.snapshot() is None
    assert delta.open() is None
    assert delta.vacuum(0) == []


def test_each_version_shows_exactly_its_files(delta: DeltaFolder) -> None:
    first = commit(delta, [1, 2], [3])
    second = commit(delta, [4], base=first, removed=[first.files[0]])
    third = commit(delta, [5, 6], base=second, removed=None)  # None: replaces every file
    _, leftover = stage(delta, [99])  # a writer that never committed
    assert (first.version, second.version, third.version) == (0, 1, 2)
    assert delta.uri == str(Path(delta.storage.root, "table"))  # the trailing slash is not part of the URI
    readers = {version: delta.snapshot(version) for version in (0, 1, 2)}
    assert readers[0].files == first.files and len(first.files) == 2
    assert first.files[0] not in readers[1].files and first.files[1] in readers[1].files
    assert readers[1].files == second.files and len(second.files) == 2
    assert values(delta, readers[0]) == [1, 2, 3]
    assert values(delta, readers[1]) == [3, 4]
    assert values(delta, readers[2]) == [5, 6]
    assert [readers[v].rows for v in (0, 1, 2)] == [3, 2, 2]  # from the Parquet footers
    assert delta.snapshot().version == 2
    assert all(leftover[0].uri not in s.files for s in readers.values())
    # delta-rs reads the same versions (what Spark, Athena or `stedi sql` would read)
    assert sorted(DeltaTable(delta.uri, version=1).to_pyarrow_table()["x"].to_pylist()) == [3, 4]
    assert readers[2].schema.names == ["x"] and readers[2].schema.field("x").type == SCHEMA.field("x").type


def test_commit_metadata_round_trips_under_stedi(delta: DeltaFolder) -> None:
    snapshot = commit(delta, [1], run_id="r-1", inputs={"b": 2, "a": [1]}, ledger="_stedi/ledger-x.parquet")
    assert snapshot.metadata["stedi.run_id"] == "r-1"
    assert snapshot.metadata["stedi.inputs"] == '{"a": [1], "b": 2}'  # not a string: JSON, keys sorted
    assert snapshot.metadata["stedi.ledger"] == "_stedi/ledger-x.parquet"
    assert all(key.startswith("stedi.") for key in snapshot.metadata)
    assert delta.snapshot().metadata == snapshot.metadata
    later = commit(delta, [2], base=snapshot, run_id="r-2")
    assert delta.snapshot().metadata == later.metadata and later.metadata["stedi.run_id"] == "r-2"
    assert "stedi.inputs" not in later.metadata  # each version its own commit's metadata
    # version 0 as its own commit recorded it (read from the log)
    assert delta.commits(0, 0) == [snapshot.metadata]


@pytest.mark.parametrize("removed", [[], None], ids=["appending", "replacing"])
def test_a_second_writer_from_the_same_base_commits_nothing(delta: DeltaFolder, removed) -> None:
    base = commit(delta, [1])
    _, mine = stage(delta, [2])
    write_id, theirs = stage(delta, [3])
    winner = delta.commit(SCHEMA, mine, removed, base.version, {"write_id": "winner"})
    with pytest.raises(ConcurrentWriteError, match="another run committed version 1 since this run read version 0"):
        delta.commit(SCHEMA, theirs, removed, base.version, {"write_id": write_id})
    current = delta.snapshot()
    assert current.version == winner.version == 1
    assert current.metadata["stedi.write_id"] == "winner"
    assert theirs[0].uri not in current.files
    assert not Path(delta.uri, "_delta_log", f"{2:020d}.json").exists()


def test_two_first_commits_one_fails(delta: DeltaFolder) -> None:
    commit(delta, [1], run_id="first")
    write_id, added = stage(delta, [2])
    with pytest.raises(ConcurrentWriteError, match="since this run read no version"):
        delta.commit(SCHEMA, added, None, None, {"write_id": write_id})
    assert delta.snapshot().version == 0 and delta.snapshot().metadata["stedi.run_id"] == "first"


def test_a_file_outside_the_table_is_refused(delta: DeltaFolder, tmp_path: Path) -> None:
    other = DeltaFolder(f"{tmp_path}/other", delta.storage)
    _, foreign = stage(other, [1])
    with pytest.raises(ValueError, match="is not inside the table"):
        delta.commit(SCHEMA, foreign, None, None, {"write_id": "w"})
    assert delta.snapshot() is None


def test_vacuum_deletes_only_what_no_version_within_the_retention_needs(delta: DeltaFolder) -> None:
    first = commit(delta, [1], [2])
    second = commit(delta, [3], base=first, removed=[first.files[0]])
    _, fresh = stage(delta, [7])  # a writer still at work (or killed a moment ago)
    _, stale = stage(delta, [8])  # a writer killed long ago
    long_ago = time.time() - 200 * 3600
    os.utime(stale[0].uri, (long_ago, long_ago))
    sidecar = Path(delta.uri, "_stedi", "ledger-1.parquet")  # ledgers and change sets are not table files
    delta.storage.write_bytes(str(sidecar), b"ledger")

    deleted = delta.vacuum(168)
    assert [f"{delta.uri}/{path}" for path in deleted] == [stale[0].uri]
    assert all(Path(uri).exists() for uri in [*first.files, fresh[0].uri])  # version 0 can still be read
    assert values(delta, delta.snapshot(0)) == [1, 2]
    assert delta.vacuum(168) == []  # nothing left to delete: no commit either
    deleted = {f"{delta.uri}/{path}" for path in delta.vacuum(0)}
    assert deleted == {first.files[0], fresh[0].uri}
    assert all(Path(uri).exists() for uri in second.files) and sidecar.exists()
    assert values(delta, delta.snapshot()) == [2, 3]


def test_commits_lists_this_projects_commits_between_two_versions(delta: DeltaFolder) -> None:
    snapshots = [commit(delta, [0], run_id="0")]
    for number in range(1, 4):
        snapshots.append(commit(delta, [number], base=snapshots[-1], removed=[], run_id=str(number)))
    with pytest.raises(ConcurrentWriteError):  # a lost race adds no version
        commit(delta, [9], base=snapshots[0], removed=None)
    assert [c["stedi.run_id"] for c in delta.commits(1, 3)] == ["1", "2", "3"]
    assert [c["stedi.run_id"] for c in delta.commits(2, 2)] == ["2"]
    assert delta.commits(3, 2) == []
    assert all(set(c) >= {"stedi.write_id", "stedi.run_id"} for c in delta.commits(0, 3))
    # A vacuum's commits carry no stedi.* metadata: left out, and the snapshot keeps the last write's.
    delta.vacuum(0)
    latest = delta.open().version()
    assert latest > 3
    assert [c["stedi.run_id"] for c in delta.commits(0, latest)] == ["0", "1", "2", "3"]
    assert delta.snapshot().metadata["stedi.run_id"] == "3"
    with pytest.raises(FileNotFoundError):
        delta.commits(latest + 1, latest + 1)


@pytest.mark.s3
def test_on_s3_commits_conflict_cleanly(s3_bucket: str) -> None:
    bucket = s3_bucket
    delta = DeltaFolder(f"s3://{bucket}/lake/table", S3Storage(f"s3://{bucket}/lake"))
    base = commit(delta, [1, 2], run_id="first")
    _, mine = stage(delta, [3])
    write_id, theirs = stage(delta, [4])
    delta.commit(SCHEMA, mine, None, base.version, {"write_id": "winner"})
    with pytest.raises(ConcurrentWriteError):
        delta.commit(SCHEMA, theirs, None, base.version, {"write_id": write_id})
    assert delta.snapshot().version == 1 and values(delta, delta.snapshot()) == [3]
    assert values(delta, delta.snapshot(0)) == [1, 2]
    assert [c["stedi.write_id"] for c in delta.commits(0, 1)][1] == "winner"
    assert delta.commits(0, 0)[0]["stedi.run_id"] == "first"


def test_a_past_versions_metadata_is_its_own(delta: DeltaFolder) -> None:
    """deltalake's history() lists the newest commits whatever version a table was opened at."""
    first = commit(delta, [1], run_id="r-1")
    commit(delta, [2], base=first, run_id="r-2")
    delta.vacuum(0)  # a vacuum's own commits carry no stedi.* metadata: the last write's still counts
    assert delta.snapshot(0).metadata["stedi.run_id"] == "r-1"
    assert delta.snapshot(1).metadata["stedi.run_id"] == "r-2"
    assert delta.snapshot().metadata["stedi.run_id"] == "r-2"


def test_a_commit_followed_at_once_by_another_is_not_reported_lost(
    delta: DeltaFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = commit(delta, [1])
    original = DeltaFolder.snapshot

    def another_writer_commits_right_after(self: DeltaFolder, version: int | None = None) -> object:
        if version == 1 and self.open().version() == 1:  # ours landed as version 1; another run commits version 2
            commit(DeltaFolder(self.uri, self.storage), [3], base=original(self, 1), removed=[])
        return original(self, version)

    monkeypatch.setattr(DeltaFolder, "snapshot", another_writer_commits_right_after)
    write_id, added = stage(delta, [2])
    committed = delta.commit(SCHEMA, added, [], base.version, {"write_id": write_id})
    assert committed.version == 1
    assert committed.metadata["stedi.write_id"] == write_id
    monkeypatch.undo()
    assert delta.snapshot().version == 2


def test_each_added_file_carries_statistics_of_its_number_columns_and_none_of_its_text(delta: DeltaFolder) -> None:
    schema = pa.schema([("t", pa.int64()), ("x", pa.float64()), ("email", pa.string())])
    rows = {
        "t": [30, None, 10, 20, None, None],
        "x": [1.5, None, float("nan"), -2.0, None, None],
        "email": ["zed@example.com", "amy@example.com", None, "bob@example.com", None, None],
    }
    write_id = "stats"
    folder = delta.staging_folder(write_id)
    buffer = io.BytesIO()
    # Row groups of two rows: bounds are the groups' together; the last group holds nulls only.
    pq.write_table(pa.table(rows, schema=schema), buffer, row_group_size=2)
    delta.storage.write_bytes(f"{folder}/part-00000.parquet", buffer.getvalue())
    delta.commit(schema, delta.storage.list_files(folder), None, None, {"write_id": write_id})

    log = (Path(delta.uri) / "_delta_log" / f"{0:020d}.json").read_text()
    (add,) = [json.loads(line)["add"] for line in log.splitlines() if '"add"' in line]
    assert json.loads(add["stats"]) == {
        "numRecords": 6,
        "minValues": {"t": 10},
        "maxValues": {"t": 30},
        "nullCount": {"t": 3, "x": 3},
    }
    assert "example.com" not in log  # no text column's value reaches the log, which is kept as history
    actions = pa.table(DeltaTable(delta.uri).get_add_actions(flatten=True)).to_pydict()
    assert (actions["min.t"], actions["max.t"], actions["null_count.x"]) == ([10], [30], [3])


def test_a_column_some_row_group_records_no_statistics_of_gets_none() -> None:
    buffer = io.BytesIO()
    table = pa.table({"t": pa.array([1, 2, 3, 4], pa.int64())})
    pq.write_table(table, buffer, row_group_size=2, write_statistics=False)
    metadata = pq.read_metadata(io.BytesIO(buffer.getvalue()))
    assert statistics(metadata, table.schema) == {"numRecords": 4, "minValues": {}, "maxValues": {}, "nullCount": {}}
