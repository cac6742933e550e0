"""The landing ledger without Spark: its entries, its snapshot committed with a version, and what it says is new."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from stedi_assets.lake.delta import DeltaFolder
from stedi_assets.lake.ledger import (
    BLANKING_PENDING,
    QUARANTINED,
    READ,
    Delivery,
    LedgerEntry,
    arrival_times,
    clear_blanking_journal,
    compare,
    consumed,
    journal_blanking,
    read_blanking_journal,
    read_ledger,
    write_ledger,
)
from stedi_assets.lake.storage import FileInfo, LocalStorage
from stedi_assets_tests.lake.commits import commit

A = FileInfo("/lake/customer/landing/a.json", 10, 1_000, "v1")
B = FileInfo("/lake/customer/landing/b.json", 20, 2_000, "v2")
C = FileInfo("/lake/customer/landing/c.json", 30, 3_000, "v3")


@pytest.fixture
def delta(tmp_path: Path) -> DeltaFolder:
    return DeltaFolder(f"{tmp_path}/customer/parsed", LocalStorage(str(tmp_path)))


def test_an_entry_is_the_file_as_listed() -> None:
    entry = LedgerEntry.of(B)
    assert entry == LedgerEntry("/lake/customer/landing/b.json", 20, "v2", 2_000, READ, 0)
    assert entry.fingerprint == B.fingerprint == "20:v2"


def test_a_ledger_round_trips_through_a_commit(delta: DeltaFolder) -> None:
    entries = {
        A.uri: LedgerEntry.of(A),
        B.uri: LedgerEntry(B.uri, 20, "v2", 1_500, QUARANTINED, 0),
        C.uri: LedgerEntry(C.uri, 30, "v3", 3_000, READ, 7),
    }
    path = write_ledger(delta, entries)
    assert path.startswith("_stedi/ledger-") and path.endswith(".parquet")
    snapshot = commit(delta, [1], ledger=path)
    assert read_ledger(delta, snapshot) == entries
    assert read_ledger(delta, delta.snapshot()) == entries
    assert read_ledger(delta, None) == {}  # before the first commit
    assert read_ledger(delta, commit(delta, [2], base=snapshot)) == {}  # a commit naming no ledger


def test_a_ledger_written_but_not_committed_is_not_read(delta: DeltaFolder) -> None:
    committed = {A.uri: LedgerEntry.of(A)}
    first = commit(delta, [1], ledger=write_ledger(delta, committed))
    # A run writes the next ledger, then dies before its commit (or loses the commit race).
    write_ledger(delta, {**committed, B.uri: LedgerEntry.of(B)})
    assert len(list(Path(delta.uri, "_stedi").glob("ledger-*.parquet"))) == 2
    assert read_ledger(delta, delta.snapshot()) == committed
    assert delta.snapshot().version == first.version
    # Each version reads its own ledger.
    later = {**committed, C.uri: LedgerEntry.of(C)}
    second = commit(delta, [2], base=first, ledger=write_ledger(delta, later))
    assert read_ledger(delta, second) == later
    assert read_ledger(delta, first) == committed


def test_compare_says_what_is_new_rewritten_gone_and_unchanged() -> None:
    rewritten = FileInfo(B.uri, 20, 2_500, "v2-again")  # same name, another fingerprint
    ledger = {A.uri: LedgerEntry.of(A), B.uri: LedgerEntry.of(B), C.uri: LedgerEntry.of(C)}
    delivery = compare(ledger, [A, rewritten, FileInfo("/lake/customer/landing/d.json", 5, 4_000, "v4")])
    assert [f.uri for f in delivery.new] == [B.uri, "/lake/customer/landing/d.json"]
    assert delivery.new[0] is rewritten
    assert delivery.gone == [B.uri, C.uri]  # the rewritten file's old rows go too
    assert not delivery.empty
    assert compare(ledger, [A, B, C]) == Delivery(new=[], gone=[])
    assert compare(ledger, [A, B, C]).empty
    assert compare({}, [A]) == Delivery(new=[A], gone=[])
    assert compare(ledger, []).gone == [A.uri, B.uri, C.uri]


def test_a_file_of_the_same_size_and_another_version_is_rewritten() -> None:
    touched = FileInfo(A.uri, A.size, A.modified_ms, "v1-touched")
    assert compare({A.uri: LedgerEntry.of(A)}, [touched]) == Delivery(new=[touched], gone=[A.uri])
    resized = FileInfo(A.uri, A.size + 1, A.modified_ms, A.version)
    assert compare({A.uri: LedgerEntry.of(A)}, [resized]).new == [resized]


def test_a_file_whose_blanking_is_pending_is_read_again_by_the_landing_asset_only() -> None:
    """Until its erased lines are blanked, a file counts as rewritten for the landing asset (which retries), and
    keeps its arrival; the sensor (no retry) sees nothing new, or it would request a run every tick."""
    ledger = {A.uri: replace(LedgerEntry.of(A), status=BLANKING_PENDING, arrived_at=500), B.uri: LedgerEntry.of(B)}
    assert compare(ledger, [A, B], retry_blanking=True) == Delivery(new=[A], gone=[A.uri])
    assert compare(ledger, [A, B]).empty
    assert compare(ledger, [B], retry_blanking=True) == Delivery(new=[], gone=[A.uri])  # gone: nothing to retry
    assert arrival_times(ledger, [A]) == {A.uri: 500}
    entries = consumed(ledger, Delivery(new=[A], gone=[A.uri]), {A.uri: 500}, {A.uri: 3}, set())
    assert entries[A.uri].status == READ and entries[A.uri].lines == 3


def test_arrival_is_kept_for_a_file_as_it_was_and_now_for_a_new_or_rewritten_one() -> None:
    ledger = {A.uri: LedgerEntry(A.uri, A.size, A.version, 500), B.uri: LedgerEntry(B.uri, 20, "old", 600)}
    assert arrival_times(ledger, [A, B, C]) == {A.uri: 500, B.uri: B.modified_ms, C.uri: C.modified_ms}
    assert arrival_times({}, []) == {}


def test_consumed_is_the_ledger_after_the_run() -> None:
    ledger = {A.uri: LedgerEntry(A.uri, 10, "v1", 500, READ, 4), B.uri: LedgerEntry(B.uri, 20, "old", 600, READ, 2)}
    rewritten_b = FileInfo(B.uri, 25, 2_500, "new")
    delivery = Delivery(new=[rewritten_b, C], gone=[B.uri])
    after = consumed(ledger, delivery, {B.uri: 2_500, C.uri: 3_000}, read={B.uri: 3}, quarantined={C.uri})
    assert after == {
        A.uri: LedgerEntry(A.uri, 10, "v1", 500, READ, 4),  # untouched
        B.uri: LedgerEntry(B.uri, 25, "new", 2_500, READ, 3),  # its new fingerprint and line count
        C.uri: LedgerEntry(C.uri, 30, "v3", 3_000, QUARANTINED, 0),
    }
    assert ledger[B.uri].version == "old"  # the input ledger is not changed
    gone = consumed(after, Delivery(new=[], gone=[A.uri, C.uri]), {}, {}, set())
    assert gone == {B.uri: after[B.uri]}


def test_an_empty_file_is_consumed_with_no_lines() -> None:
    empty = FileInfo("/lake/customer/landing/empty.json", 0, 9_000, "v0")
    after = consumed({}, compare({}, [empty]), arrival_times({}, [empty]), read={}, quarantined=set())
    assert after == {empty.uri: LedgerEntry(empty.uri, 0, "v0", 9_000, READ, 0)}
    assert compare(after, [empty]).empty  # and is not new again


def test_a_rewrite_the_erasure_journaled_keeps_the_files_arrival_until_committed(delta: DeltaFolder) -> None:
    """Blanking rewrites a file before the commit names its new fingerprint: if the run fails in between, the next
    run reads the file again (rewritten), and the journal gives it its arrival, not the rewrite's time."""
    ledger = {A.uri: replace(LedgerEntry.of(A), arrived_at=500)}
    blanked = FileInfo(A.uri, A.size - 4, 9_000, "v1-blanked")
    assert read_blanking_journal(delta) == {}
    journal_blanking(delta, A.uri, 500)
    journal = read_blanking_journal(delta)
    assert journal == {A.uri: 500}
    assert arrival_times(ledger, [blanked, C], journal) == {A.uri: 500, C.uri: C.modified_ms}
    assert arrival_times(ledger, [blanked]) == {A.uri: 9_000}  # without the journal: a new delivery
    clear_blanking_journal(delta)
    assert read_blanking_journal(delta) == {}


def test_a_name_that_is_not_utf8_round_trips_through_the_ledger(delta: DeltaFolder) -> None:
    """A local file named with bytes that are not UTF-8 (quarantined as unsupported_name) is held by the ledger
    under the name the listing gives it, so it is not taken up again by every run."""
    odd = FileInfo(os.fsdecode(b"/lake/customer/landing/caf\xe9.json"), 7, 1_000, "v1")
    entries = {odd.uri: replace(LedgerEntry.of(odd), status=QUARANTINED), A.uri: LedgerEntry.of(A)}
    snapshot = commit(delta, [1], ledger=write_ledger(delta, entries))
    assert read_ledger(delta, snapshot) == entries
    assert compare(read_ledger(delta, snapshot), [odd, A]).empty
