"""A full rebuild on demand gives the same tables, row for row, as any sequence of incremental runs.

A generated lake's landing files are moved aside, then delivered back into their folders in batches, in a
shuffled (seeded) order across feeds, with a real materialization of every asset after each batch. With the
last batch come a file rewritten in place, a file deleted and a file delivered again under another name (each
one a file an earlier run consumed). Every table is then held to a `--rebuild` run's tables on the same final
lake, row for row (quarantine run ids left out), and to the independent reference (reference.py) reading the raw
files as they are at the end; every incremental run's row accounting and table versions are checked on the way.

Arrivals: a file's arrival is its modification time when a run first consumes it (ties between customer
records are decided by it). The files are moved aside and back by renaming, which keeps the modification times
the generator set (asserted), so the delivery order changes no arrival. A file rewritten or delivered again
arrives when it is written, as a real delivery does. On a local lake the ledger's fingerprint holds the
modification time, so the arrival a run records is always the file's current modification time: the one the
rebuild (which keeps the ledger's arrivals) and the reference (which reads the files' times) both use.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from stedi_assets.sample import EXPECTED_FILE, FEEDS
from stedi_assets.tables import (
    ALL_TABLES,
    CUSTOMER_ERASURE,
    LANDING_TABLES,
    MACHINE_LEARNING_CURATED,
    QUARANTINE_OF,
    ZoneTable,
)
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import reference
from stedi_assets_tests.lakes import TEST_KEY, delta_table, generate_lake, materialize_lake, table_frame

pytestmark = pytest.mark.graph
CUSTOMERS = 24
SEED = 5
# The delivery order's seed: one that delivers a plain file of every feed before the last batch (the changes
# made before it need one), on this lake as the generator now writes it.
SHUFFLE_SEED = 6
BATCHES = 3
POLICY = ConsentPolicy.SINCE
NUMBERED = re.compile(r"[a-z_]+-\d{4}\.json")
# Left out of the comparisons: which run rejected a row (a rebuild rejects every row again).
NOT_COMPARED = ("run_id",)


class Run:
    """One real materialization of every asset, and what it left: each table's version and rows."""

    def __init__(self, root: Path, instance: DagsterInstance, note: str, rebuild: bool = False) -> None:
        started = time.monotonic()
        result = materialize_lake(root, POLICY, instance, rebuild=rebuild)
        self.seconds = time.monotonic() - started
        assert result.success, note
        self.note = note
        self.metadata = {
            event.asset_key.to_user_string(): {
                k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()
            }
            for event in result.get_asset_materialization_events()
        }
        self.versions = {name: delta_table(root, table).version() for name, table in ALL_TABLES.items()}
        self.rows = {name: rows(root, table) for name, table in ALL_TABLES.items()}


def rows(root: Path, table: ZoneTable) -> pd.DataFrame:
    """A table's current version as pandas reads it (delta-rs), sorted on every column, run ids left out."""
    frame = table_frame(root, table)
    assert list(frame.columns) == table.columns, table.name
    frame = frame.drop(columns=[c for c in NOT_COMPARED if c in frame.columns])
    return frame.sort_values(list(frame.columns), na_position="last", kind="mergesort").reset_index(drop=True)


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    except AssertionError:
        return False
    return True


def landing_files(root: Path) -> list[Path]:
    """Every landing file of the lake, by path (hidden names are not deliveries)."""
    return sorted(
        path
        for feed in FEEDS
        for path in (root / feed / "landing").iterdir()
        if path.is_file() and not path.name.startswith(("_", "."))
    )


def deliver(files: list[Path], aside: Path, root: Path) -> None:
    """Moves files back from `aside` into their landing folders, by rename: the modification time stays."""
    for path in files:
        (aside / path.relative_to(root)).rename(path)


def rewrite_in_place(path: Path) -> None:
    """Another content under the same name: the first line left out, the others in reverse order."""
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3 and lines[-1].endswith(b"\n")
    path.write_bytes(b"".join(reversed(lines[1:])))


def delivered_earlier(batches: list[list[Path]], feed: str) -> Path:
    """A plain numbered file of a feed (customer-0001.json) that a batch before the last delivered."""
    found = [p for batch in batches[:-1] for p in batch if p.parent.parent.name == feed and NUMBERED.fullmatch(p.name)]
    assert found, f"no plain {feed} file in the first batches: choose another SHUFFLE_SEED"
    return min(found)


def change_delivered_files(batches: list[list[Path]]) -> dict[str, Path]:
    """A file rewritten in place, one deleted, one delivered again under another name (each of a file a previous
    run consumed, one per feed); the new contents arrive when they are written, as real deliveries do."""
    rewritten = delivered_earlier(batches, "customer")
    deleted = delivered_earlier(batches, "accelerometer")
    redelivered = delivered_earlier(batches, "step_trainer")
    again = redelivered.with_name(redelivered.name.replace(".json", "-again.json"))
    rewrite_in_place(rewritten)
    deleted.unlink()
    shutil.copyfile(redelivered, again)
    return {"rewritten": rewritten, "deleted": deleted, "again": again}


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("incremental-lake")
    aside = tmp_path_factory.mktemp("incremental-aside")
    generate_lake(root, customers=CUSTOMERS, seed=SEED)
    files = landing_files(root)
    arrivals = {path: path.stat().st_mtime_ns for path in files}
    for path in files:
        target = aside / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    order = files[:]
    random.Random(SHUFFLE_SEED).shuffle(order)
    batches = [order[i::BATCHES] for i in range(BATCHES)]

    found: dict = {"root": root, "batches": batches, "incremental": []}
    with DagsterInstance.ephemeral() as instance:
        for n, batch in enumerate(batches, start=1):
            deliver(batch, aside, root)
            note = f"batch {n}: {sorted(p.name for p in batch)}"
            if n == BATCHES:
                # Renaming kept every file's modification time (its arrival): the generated lake is whole again.
                assert {path: path.stat().st_mtime_ns for path in landing_files(root)} == arrivals
                found["changes"] = change_delivered_files(batches)
                note += f", and {', '.join(f'{k} {p.name}' for k, p in found['changes'].items())}"
            found["incremental"].append(Run(root, instance, note))
        found["rebuild"] = Run(root, instance, "rebuild", rebuild=True)
        # Nothing new since: a run of every asset (a user's "Materialize all") keeps every table as it is.
        found["nothing_new"] = materialize_lake(root, POLICY, instance)
    for run in (*found["incremental"], found["rebuild"]):
        print(f"{run.seconds:5.0f}s  {run.note}")
    return found


def test_the_batches_are_shuffled_across_feeds(runs) -> None:
    batches = runs["batches"]
    assert len(batches) == BATCHES and all(batches)
    names = [path.name for batch in batches for path in batch]
    assert names != sorted(names)
    # Files of one feed arrive in more than one batch, and not in name order.
    for feed in FEEDS:
        per_batch = [sorted(p.name for p in batch if p.parent.parent.name == feed) for batch in batches]
        assert sum(1 for names in per_batch if names) > 1, feed


def test_a_rebuild_gives_the_same_tables_row_for_row(runs) -> None:
    incremental, rebuilt = runs["incremental"][-1], runs["rebuild"]
    for name in ALL_TABLES:
        pd.testing.assert_frame_equal(incremental.rows[name], rebuilt.rows[name], check_dtype=False, obj=name)
    # A rebuild replaces every table it can compute from the landing files (tombstones stay: their requests are gone).
    replaced = {name for name in ALL_TABLES if rebuilt.versions[name] == incremental.versions[name] + 1}
    assert replaced == set(ALL_TABLES) - {CUSTOMER_ERASURE.name}
    # Not vacuous: the changed files reached the tables.
    changes = {name: str(path) for name, path in runs["changes"].items()}
    sources = {t: set(incremental.rows[t]["source_file"]) for t in ("customer_landing", "step_trainer_landing")}
    assert changes["rewritten"] in sources["customer_landing"] and changes["again"] in sources["step_trainer_landing"]
    assert changes["deleted"] not in set(incremental.rows["accelerometer_landing"]["source_file"])
    assert len(incremental.rows[MACHINE_LEARNING_CURATED.name]) > 0


def test_unreadable_files_are_one_quarantine_row_each_as_the_generator_says(runs) -> None:
    """Files no reader can use (a truncated .gz, a .gz that is not gzip, a bzip2 file), whichever batch brought
    them."""
    expected = json.loads((runs["root"] / EXPECTED_FILE).read_text())["quarantined_files"]
    delivered: set[str] = set()
    for run, batch in zip(runs["incremental"], runs["batches"], strict=True):
        delivered |= {str(path) for path in batch if any(k in path.name for k in ("-truncated-", "-fake-", "-bzip2-"))}
        for name in expected:
            quarantine = run.rows[name]
            files = quarantine[quarantine["line_number"].isna()]["source_file"]
            assert sorted(files) == sorted(p for p in delivered if f"/{ALL_TABLES[name].entity}/" in p), run.note
    last = runs["incremental"][-1]
    assert {name: int(last.rows[name]["line_number"].isna().sum()) for name in expected} == expected


def test_the_final_tables_match_the_reference(runs) -> None:
    root = runs["root"]
    independent = reference.compute(root, POLICY.value, TEST_KEY.encode())
    for run in (runs["incremental"][-1], runs["rebuild"]):
        counts = {name: len(run.rows[name]) for name in independent["counts"]}
        assert counts == independent["counts"], run.note
        ml = run.rows[MACHINE_LEARNING_CURATED.name][MACHINE_LEARNING_CURATED.columns]
        assert sorted(ml.itertuples(index=False, name=None)) == sorted(independent["machine_learning_rows"].elements())
    # The last run changed what the generator delivered: the reference is not the generator's count any more.
    expected = json.loads((root / EXPECTED_FILE).read_text())
    assert independent["counts"]["customer_landing"] != expected["landing_rows"]["customer_landing"]


def test_every_incremental_run_accounts_for_every_row(runs) -> None:
    for run in runs["incremental"]:
        assert set(ALL_TABLES) <= set(run.metadata), run.note
        for name in ALL_TABLES:
            meta = run.metadata[name]
            accounted = meta["rows_out"] + meta["rows_filtered"] + meta["rows_quarantined"]
            # Only a pairing (machine_learning_curated) may add rows: one step reading, two phone readings.
            assert meta["rows_in"] + meta.get("rows_added_by_pairing", 0) == accounted, (run.note, name)
            assert meta["table_version"] == run.versions[name], (run.note, name)
            assert meta["dagster/row_count"] == len(run.rows[name]), (run.note, name)


def test_landing_tables_change_by_what_each_run_consumed(runs) -> None:
    """A landing table (and its quarantine) after a run: the rows of files still delivered as they were, and the
    rows the run read from new or rewritten files."""
    gone = {str(runs["changes"]["rewritten"]), str(runs["changes"]["deleted"])}
    previous: Run | None = None
    for run in runs["incremental"]:
        leaving = gone if run is runs["incremental"][-1] else set()
        for table in LANDING_TABLES:
            meta = run.metadata[table.name]
            assert meta.get("files_gone", 0) == sum(1 for uri in leaving if f"/{table.entity}/" in uri), run.note
            for name, new_rows in ((table.name, "rows_out"), (QUARANTINE_OF[table.name].name, "rows_quarantined")):
                staying = 0 if previous is None else int((~previous.rows[name]["source_file"].isin(leaving)).sum())
                assert len(run.rows[name]) == staying + meta[new_rows], (run.note, name)
        previous = run


def test_a_table_version_grows_only_when_its_rows_change(runs) -> None:
    previous: Run | None = None
    for run in runs["incremental"]:
        for name in ALL_TABLES:
            if previous is None:
                assert run.versions[name] == 0, (run.note, name)
                continue
            grown = run.versions[name] - previous.versions[name]
            changed = not same_rows(previous.rows[name], run.rows[name])
            assert grown in (0, 1), (run.note, name)
            assert bool(grown) == changed, (run.note, name, f"+{grown} version", "changed" if changed else "same rows")
        previous = run


def test_a_run_with_nothing_new_succeeds_and_keeps_every_table(runs) -> None:
    """A second "Materialize all" (or `stedi run`) with no landing file new, rewritten or gone.

    Fails on core at 2851249: a landing asset with nothing new reports its tables as unchanged without its
    `descriptive` check, which Dagster requires (DagsterStepOutputNotFoundError): the run fails."""
    result, rebuilt = runs["nothing_new"], runs["rebuild"]
    failed = [event.step_key for event in result.get_step_failure_events()]
    assert result.success, f"steps failed: {failed}"
    root = runs["root"]
    assert {name: delta_table(root, table).version() for name, table in ALL_TABLES.items()} == rebuilt.versions
