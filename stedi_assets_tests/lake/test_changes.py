"""Change sets, and the lake store's reading of those its commits recorded (no Spark: committed with delta-rs)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stedi_assets.lake.changes import CHANGES_SCHEMA, Changes
from stedi_assets.lake.delta import Snapshot
from stedi_assets.lake.store import ALL_CHANGED, LakeStore
from stedi_assets.tables import ALL_TABLES, CUSTOMER_TRUSTED, MACHINE_LEARNING_CURATED
from stedi_assets_tests.lake.commits import commit

ANN, BOB = "ann@example.com", "bob@example.com"
SERIAL_1, SERIAL_2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def test_changes_unite_and_are_true_when_they_name_a_key() -> None:
    ann = Changes(frozenset({ANN}))
    device = Changes(serials=frozenset({SERIAL_1}))
    assert ann | device == Changes(frozenset({ANN}), frozenset({SERIAL_1}))
    assert (ann | Changes(frozenset({ANN, BOB}))).identities == {ANN, BOB}
    assert ann | Changes() == ann
    assert not Changes() and ann and device
    assert not (Changes() | Changes())


def test_changes_round_trip_through_arrow() -> None:
    changes = Changes(frozenset({BOB, ANN}), frozenset({SERIAL_2, SERIAL_1}))
    table = changes.to_arrow()
    assert table.schema == CHANGES_SCHEMA
    assert table.to_pylist() == [
        {"kind": "identity", "key": ANN},
        {"kind": "identity", "key": BOB},
        {"kind": "serial", "key": SERIAL_1},
        {"kind": "serial", "key": SERIAL_2},
    ]
    assert Changes.from_arrow(table) == changes
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    assert Changes.from_arrow(pq.read_table(io.BytesIO(buffer.getvalue()))) == changes
    assert Changes().to_arrow().num_rows == 0 and Changes.from_arrow(Changes().to_arrow()) == Changes()
    # An identity and a serial that happen to be spelled alike stay apart.
    same = Changes(frozenset({"x"}), frozenset({"x"}))
    assert Changes.from_arrow(same.to_arrow()) == same


def written(store: LakeStore, base: Snapshot | None, changes: Changes | None, **metadata) -> Snapshot:
    """A commit as `LakeStore.write` makes it: the change set recorded by the store and named by the commit."""
    delta = store.delta(CUSTOMER_TRUSTED)
    recorded = ALL_CHANGED if changes is None else store.record_changes(CUSTOMER_TRUSTED, changes, uuid.uuid4().hex)
    return commit(delta, [1], base=base, removed=[], **{"changes": recorded, **metadata})


@pytest.fixture
def store(tmp_path: Path) -> LakeStore:
    return LakeStore(str(tmp_path))


def test_the_changes_since_a_version_are_the_union_of_the_later_commits(store: LakeStore) -> None:
    v0 = written(store, None, None)  # replaced the whole table
    v1 = written(store, v0, Changes(frozenset({ANN})))
    v2 = written(store, v1, Changes(frozenset({BOB}), frozenset({SERIAL_1})))
    v3 = written(store, v2, Changes())  # committed, changing no key
    assert store.changes(CUSTOMER_TRUSTED, 0, 3) == Changes(frozenset({ANN, BOB}), frozenset({SERIAL_1}))
    assert store.changes(CUSTOMER_TRUSTED, 1, 2) == Changes(frozenset({BOB}), frozenset({SERIAL_1}))
    assert store.changes(CUSTOMER_TRUSTED, 2, 3) == Changes()  # nothing to recompute (not None)
    assert store.changes(CUSTOMER_TRUSTED, 3, 3) == Changes()  # no commit since
    assert v3.version == 3


def test_changes_cannot_be_said_across_a_whole_replacement_or_without_a_base(store: LakeStore) -> None:
    v0 = written(store, None, Changes(frozenset({ANN})))
    v1 = written(store, v0, None)
    v2 = written(store, v1, Changes(frozenset({BOB})))
    assert store.changes(CUSTOMER_TRUSTED, -1, 0) == Changes(frozenset({ANN}))
    assert store.changes(CUSTOMER_TRUSTED, 0, 2) is None  # version 1 replaced the whole table
    assert store.changes(CUSTOMER_TRUSTED, 1, 2) == Changes(frozenset({BOB}))
    assert store.changes(CUSTOMER_TRUSTED, None, 2) is None  # first run: never computed
    assert store.changes(CUSTOMER_TRUSTED, 0, None) is None
    commit(store.delta(CUSTOMER_TRUSTED), [1], base=v2, removed=[])  # a commit that does not say
    assert store.changes(CUSTOMER_TRUSTED, 2, 3) is None


def test_changes_of_versions_whose_log_is_gone_cannot_be_said(store: LakeStore) -> None:
    v0 = written(store, None, Changes(frozenset({ANN})))
    written(store, v0, Changes(frozenset({BOB})))
    Path(store.location(CUSTOMER_TRUSTED), "_delta_log", f"{1:020d}.json").unlink()
    assert store.changes(CUSTOMER_TRUSTED, 0, 1) is None


def test_forgotten_changes_are_deleted_and_then_cannot_be_said(store: LakeStore) -> None:
    v0 = written(store, None, None)
    v1 = written(store, v0, Changes(frozenset({ANN})))
    written(store, v1, Changes(frozenset({BOB})))
    folder = Path(store.location(CUSTOMER_TRUSTED), "_stedi")
    ledger = folder / "ledger-keep.parquet"
    ledger.write_bytes(b"not a change set")
    assert len(list(folder.glob("changes-*.parquet"))) == 2 and names_ann(store)
    assert store.forget_changes(CUSTOMER_TRUSTED) == 2
    assert list(folder.glob("changes-*.parquet")) == [] and ledger.exists()
    assert store.changes(CUSTOMER_TRUSTED, 0, 2) is None  # downstream recomputes from scratch
    assert store.forget_changes(CUSTOMER_TRUSTED) == 0
    assert not names_ann(store)  # change sets held identity keys: none is left under the root


def names_ann(store: LakeStore) -> bool:
    return any(ANN.encode() in p.read_bytes() for p in Path(store.uri).rglob("*") if p.is_file())


def test_a_table_never_written_has_nothing_to_forget(store: LakeStore) -> None:
    assert store.forget_changes(CUSTOMER_TRUSTED) == 0
    assert store.snapshot(CUSTOMER_TRUSTED) is None and not store.exists(CUSTOMER_TRUSTED)
    assert store.location(CUSTOMER_TRUSTED) == f"{store.uri}/customer/trusted"


def test_no_change_set_is_recorded_under_a_research_tables_folder(store: LakeStore) -> None:
    """A change set names customers (identity keys) and devices: a table without personal data records none,
    and every table with personal data does."""
    changes = Changes(frozenset({ANN}), frozenset({SERIAL_1}))
    assert store.record_changes(MACHINE_LEARNING_CURATED, changes, "w1") == ALL_CHANGED
    assert not Path(store.location(MACHINE_LEARNING_CURATED)).exists()
    for table in ALL_TABLES.values():
        recorded = store.record_changes(table, changes, "w2")
        assert (recorded == ALL_CHANGED) == (not table.pii), table.name
    assert not [p for p in Path(store.location(MACHINE_LEARNING_CURATED)).rglob("*") if p.is_file()]
    assert names_ann(store)  # not vacuous: the tables with personal data recorded theirs
