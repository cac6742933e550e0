"""`stedi export` and the dataset card: a version of the training table written out exactly, as Parquet or CSV,
locally and to S3, with a card whose figures an independent count of tiny literal rows gives too; one-line errors;
and (graph) the card the asset's materialization shows is the card an export of that version writes."""

from __future__ import annotations

import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructField, StructType

from stedi_assets import dataset_card
from stedi_assets.cli import export
from stedi_assets.contracts import column_units
from stedi_assets.lake.delta import Snapshot
from stedi_assets.lake.store import LakeStore
from stedi_assets.tables import CUSTOMER_LANDING, MACHINE_LEARNING_CURATED
from stedi_assets.transforms.pseudonyms import key_fingerprint, subject_keys
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import lakes
from stedi_assets_tests.builders import ALICE, BOB, CAROL, T0, customer
from stedi_assets_tests.lakes import TEST_KEY

TABLE = MACHINE_LEARNING_CURATED
# As LakeStore.write commits it: the contract's columns, every field nullable in the log.
SCHEMA = to_arrow_schema(StructType([StructField(f.name, f.dataType, True) for f in TABLE.schema.fields]))
SUBJECTS = subject_keys([ALICE, BOB, CAROL], TEST_KEY.encode())
FINGERPRINT = key_fingerprint(TEST_KEY.encode())
PROG = "stedi export"


def row(who: str, at: int, distance: int = 10, x: float = 0.1, y: float = -9.81, z: float = 1 / 3) -> dict[str, Any]:
    return {
        "sensorReadingTime": T0 + at,
        "distanceFromObject": distance,
        "x": x,
        "y": y,
        "z": z,
        "subject_key": SUBJECTS[who],
    }


# Version 0: two subjects. Version 1 adds readings in a second file: a repeated millisecond (a step reading
# paired with two accelerometer readings), irregular intervals, and a subject with a single reading.
VERSION_0 = [row(ALICE, 0), row(ALICE, 20, 11), row(BOB, 5, 7)]
ADDED_1 = [
    row(ALICE, 40, 12),
    row(ALICE, 40, 12, x=0.2),
    row(ALICE, 100, 13, z=123456789.123456789),
    row(BOB, 25, 8),
    row(BOB, 3_600_025, 9),
    row(CAROL, 86_400_000, 0, x=-1e-300),
]
VERSION_1 = VERSION_0 + ADDED_1
VERSIONS = {0: VERSION_0, 1: VERSION_1}


def commit_rows(
    store: LakeStore, rows: list[dict[str, Any]], base: Snapshot | None, removed: list[str] | None = None
) -> Snapshot:
    """Commits the rows (one Parquet file) as the table's next version (`removed`: the files that leave it; None:
    all), through the lake's own Delta commit and with the commit metadata the asset records (LakeStore.write
    does the same with the files Spark writes)."""
    delta = store.delta(TABLE)
    write_id = uuid.uuid4().hex
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buffer)
    store.storage.write_bytes(f"{delta.staging_folder(write_id)}/part-00000.parquet", buffer.getvalue())
    metadata = {
        "write_id": write_id,
        "table": TABLE.name,
        "consent_policy": ConsentPolicy.SINCE.value,
        "pseudonym_key_fingerprint": FINGERPRINT,
    }
    added = store.storage.list_files(delta.staging_folder(write_id))
    return delta.commit(SCHEMA, added, removed, None if base is None else base.version, metadata)


def build_table(store: LakeStore) -> None:
    """Version 0 (VERSION_0, one file), then version 1 (VERSION_1: that file and a second one)."""
    commit_rows(store, ADDED_1, commit_rows(store, VERSION_0, None), removed=[])


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LakeStore:
    """A lake holding only the training table, two versions, as STEDI_LAKE_ROOT."""
    root = tmp_path / "lake"
    root.mkdir()
    store = LakeStore(str(root))
    build_table(store)
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(root))
    return store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = export.main(list(argv), prog=PROG)
    out, err = capsys.readouterr()
    return status, out, err


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def expected_frame(version: int) -> pd.DataFrame:
    return pd.DataFrame(VERSIONS[version], columns=TABLE.columns).astype(
        {"sensorReadingTime": "int64", "distanceFromObject": "int32"}
    )


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def independent_card(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The card's figures of literal rows, counted in plain Python."""
    times: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        times[r["subject_key"]].append(r["sensorReadingTime"])
    intervals, repeated = [], 0
    for found in times.values():
        found.sort()
        repeated += len(found) - len(set(found))
        distinct = sorted(set(found))
        intervals += [b - a for a, b in itertools.pairwise(distinct)]
    per_subject = [len(found) for found in times.values()]
    return {
        "rows": len(rows),
        "subjects": len(times),
        "first_reading": iso(min(r["sensorReadingTime"] for r in rows)),
        "last_reading": iso(max(r["sensorReadingTime"] for r in rows)),
        "readings_per_subject": {
            "min": min(per_subject),
            "median": statistics.median(per_subject),
            "max": max(per_subject),
        },
        "interval_ms": {"min": min(intervals), "median": statistics.median(intervals), "max": max(intervals)},
        "intervals": len(intervals),
        "repeated_times": repeated,
    }


def commit_time(store: LakeStore, version: int) -> str:
    log = Path(store.location(TABLE)) / "_delta_log" / f"{version:020d}.json"
    info = next(json.loads(line)["commitInfo"] for line in log.read_text().splitlines() if "commitInfo" in line)
    return iso(info["timestamp"])


@pytest.mark.parametrize("version", [None, 0])
def test_parquet_export_is_the_version_exactly(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int | None
) -> None:
    dest = tmp_path / "export"
    argv = [str(dest)] + ([] if version is None else ["--version", str(version)])
    status, out, err = run(capsys, *argv)
    chosen = 1 if version is None else version
    assert (status, err) == (0, "")
    rows = len(VERSIONS[chosen])
    assert out == (
        f"machine_learning_curated version {chosen}: {rows} rows of {2 if chosen == 0 else 3} subjects in 1 Parquet"
        f" file under {dest}/data/, card in {dest}/DATASET.md\n"
    )
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "DATASET.md",
        "data/part-00000.parquet",
        "dataset.json",
    ]
    exported = pd.read_parquet(dest / "data")
    at_version = DeltaTable(lake.location(TABLE), version=chosen).to_pandas()
    pd.testing.assert_frame_equal(ordered(exported), ordered(at_version[TABLE.columns]))
    pd.testing.assert_frame_equal(ordered(exported), ordered(expected_frame(chosen)))


def test_csv_export_reads_back_as_the_version(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "export"
    status, out, err = run(capsys, str(dest), "--version", "1", "--csv")
    assert (status, err) == (0, "")
    assert "in 1 CSV file" in out
    (part,) = (dest / "data").iterdir()
    assert part.name == "part-00000.csv"
    assert part.read_text().splitlines()[0] == ",".join(f'"{c}"' for c in TABLE.columns)
    exported = pd.read_csv(part, float_precision="round_trip", dtype={"distanceFromObject": "int32"})
    pd.testing.assert_frame_equal(ordered(exported), ordered(expected_frame(1)))


@pytest.mark.parametrize("version", [0, 1])
def test_the_card_holds_what_an_independent_count_gives(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    dest = tmp_path / "export"
    assert run(capsys, str(dest), "--version", str(version))[0] == 0
    card = json.loads((dest / "dataset.json").read_text())
    expected = independent_card(VERSIONS[version])
    assert {key: card[key] for key in expected} == expected
    assert card["table"] == TABLE.name
    assert card["version"] == version
    assert card["committed_at"] == commit_time(lake, version)
    assert card["consent_policy"]["name"] == "since"
    assert card["key_fingerprint"] == FINGERPRINT
    assert card["generated"] is False
    units = column_units(TABLE.model)
    assert [(c["name"], c["unit"]) for c in card["columns"]] == [(name, units[name]) for name in TABLE.columns]
    assert [c["type"] for c in card["columns"]] == ["int64", "int32", "double", "double", "double", "string"]
    assert all(units[name] for name in TABLE.columns if name != "subject_key")
    text = (dest / "DATASET.md").read_text()
    assert text == dataset_card.markdown(dataset_card.figures(lake, version))
    assert f"| rows | {expected['rows']} |" in text
    assert f"| subjects (distinct `subject_key`) | {expected['subjects']} |" in text
    assert f"{expected['first_reading']} to {expected['last_reading']}" in text
    assert f"`{FINGERPRINT}`" in text
    assert "split" in text.lower() and "never by row" in text


def test_version_1_figures_spelled_out(lake: LakeStore) -> None:
    """The literal rows' figures, by hand: a check of the independent count itself."""
    card = dataset_card.as_json(dataset_card.figures(lake, 1))
    assert (card["rows"], card["subjects"], card["repeated_times"]) == (9, 3, 1)
    # alice 0, 20, 40, 40, 100: 20, 20, 60; bob 5, 25, 3,600,025: 20, 3,600,000; carol alone.
    assert card["interval_ms"] == {"min": 20, "median": 20, "max": 3_600_000}
    assert card["intervals"] == 5
    assert card["readings_per_subject"] == {"min": 1, "median": 3, "max": 5}
    assert card["first_reading"] == "2022-06-18T15:00:44.000Z"


def test_figures_read_in_several_passes_are_the_same(lake: LakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table bigger than a pass is read in groups of subjects: the figures do not change."""
    whole = dataset_card.figures(lake, 1)
    monkeypatch.setattr(dataset_card, "PASS_ROWS", 2)
    monkeypatch.setattr(dataset_card, "BATCH_ROWS", 2)
    assert dataset_card.figures(lake, 1) == whole


def test_an_even_count_has_the_mean_of_its_middle_values_as_median() -> None:
    assert dataset_card.spread_of(Counter({1: 1, 4: 1})) == dataset_card.Spread(1, 2.5, 4)
    assert dataset_card.spread_of(Counter({7: 4})) == dataset_card.Spread(7, 7, 7)
    assert dataset_card.spread_of(Counter({1: 2, 9: 2, 10: 1})) == dataset_card.Spread(1, 9, 10)
    assert dataset_card.spread_of(Counter()) is None


def test_big_tables_are_written_in_parts(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "ROWS_PER_FILE", 4)
    dest = tmp_path / "export"
    status, out, _ = run(capsys, str(dest))
    assert status == 0 and "in 3 Parquet files" in out
    parts = sorted(p.name for p in (dest / "data").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.read_metadata(dest / "data" / p).num_rows for p in parts] == [4, 4, 1]
    pd.testing.assert_frame_equal(ordered(pd.read_parquet(dest / "data")), ordered(expected_frame(1)))


def test_a_version_that_does_not_exist_is_one_line(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "export"
    assert run(capsys, str(dest), "--version", "2") == (
        2,
        "",
        "stedi export: machine_learning_curated has no version 2 (its versions are 0 to 1): give --version between 0"
        " and 1, or leave it out for the current one\n",
    )
    assert not dest.exists()


def test_a_vacuumed_version_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version whose files a vacuum deleted (after the retention, an erasure, a withdrawal) cannot be exported."""
    root = tmp_path / "lake"
    store = LakeStore(str(root))
    commit_rows(store, VERSION_1, commit_rows(store, VERSION_0, None))  # version 1 replaces version 0's file
    assert store.vacuum(TABLE, 0) == 1
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(root))
    dest = tmp_path / "export"
    status, out, err = run(capsys, str(dest), "--version", "0")
    assert (status, out) == (2, "")
    assert err.startswith("stedi export: version 0 of machine_learning_curated can no longer be read (")
    assert err.endswith(
        "): its files were removed after the retention, an erasure or a withdrawal; export a later version\n"
    )
    assert err.count("\n") == 1
    assert not dest.exists()
    assert run(capsys, str(dest), "--version", "1")[0] == 0


def test_the_command_runs_from_the_stedi_script_without_a_stack_trace(lake: LakeStore, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "stedi"
    done = subprocess.run(
        [str(script), "export", str(tmp_path / "export"), "--version", "-1"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "stedi export: machine_learning_curated has no version -1 (its versions are 0 to 1): give --version between 0"
        " and 1, or leave it out for the current one\n"
    )


def test_bad_arguments_are_one_line_each(lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        export.main([str(tmp_path / "x"), "--version", "last"], prog=PROG)
    assert exited.value.code == 2
    assert capsys.readouterr().err == "stedi export: argument --version: invalid int value: 'last' (see --help)\n"
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert run(capsys, str(a_file)) == (
        2,
        "",
        f"stedi export: {a_file} is a file, not a folder: give a new or empty folder\n",
    )


def test_a_lake_without_the_table_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(root))
    assert run(capsys, str(tmp_path / "export")) == (
        2,
        "",
        f"stedi export: machine_learning_curated has not been materialized yet (no table at"
        f" {root}/machine_learning/curated): run `stedi run` first, or set STEDI_LAKE_ROOT to the lake that has it\n",
    )
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(tmp_path / "nowhere"))
    status, _, err = run(capsys, str(tmp_path / "export"))
    assert (status, err) == (
        2,
        f"stedi export: lake root {tmp_path / 'nowhere'} does not exist or is not a directory (STEDI_LAKE_ROOT)\n",
    )


def test_a_folder_in_use_needs_force_which_replaces_only_a_previous_export(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "export"
    monkeypatch.setattr(export, "ROWS_PER_FILE", 4)
    assert run(capsys, str(dest))[0] == 0  # three parts
    (dest / "notes.txt").write_text("mine")
    assert run(capsys, str(dest), "--version", "0") == (
        2,
        "",
        f"stedi export: {dest} is not empty (6 files): give a new or empty folder, or --force to replace a previous"
        " export there\n",
    )
    status, _, err = run(capsys, str(dest), "--version", "0", "--force")
    assert (status, err) == (0, "")
    assert sorted(p.name for p in (dest / "data").iterdir()) == ["part-00000.parquet"]
    assert (dest / "notes.txt").read_text() == "mine"
    assert json.loads((dest / "dataset.json").read_text())["version"] == 0
    pd.testing.assert_frame_equal(ordered(pd.read_parquet(dest / "data")), ordered(expected_frame(0)))


def test_an_empty_version_exports_its_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    store = LakeStore(str(root))
    commit_rows(store, [], None)
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(root))
    dest = tmp_path / "export"
    assert run(capsys, str(dest))[0] == 0
    assert list(pd.read_parquet(dest / "data").columns) == TABLE.columns
    card = json.loads((dest / "dataset.json").read_text())
    assert (card["rows"], card["subjects"], card["first_reading"], card["interval_ms"]) == (0, 0, None, None)


def identifiers() -> list[str]:
    """Every direct identifier of the literal customers: e-mails (as delivered and as identity keys), name,
    phone, birthday."""
    record = customer()
    return [ALICE, BOB, CAROL, record["customerName"], record["phone"], record["birthDay"]]


def test_the_export_and_its_card_name_no_one(
    lake: LakeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for form in ("parquet", "csv"):
        dest = tmp_path / form
        assert run(capsys, str(dest), *(["--csv"] if form == "csv" else []))[0] == 0
        texts = [p.read_bytes() for p in dest.rglob("*") if p.is_file()]
        texts.append(pd.read_parquet(dest / "data").to_csv().encode() if form == "parquet" else b"")
        for value in identifiers():
            assert not any(value.encode() in text for text in texts), value
        card = (dest / "DATASET.md").read_text() + (dest / "dataset.json").read_text()
        assert not any(key in card for key in SUBJECTS.values())  # the card names no subject either


@pytest.fixture
def s3_lake(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> tuple[LakeStore, str]:
    """The same two versions in a lake on the test S3 server, and a bucket to export into."""
    bucket = f"export-{os.urandom(4).hex()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = LakeStore(f"s3://{bucket}/lake")
    build_table(store)
    monkeypatch.setenv("STEDI_LAKE_ROOT", store.uri)
    return store, bucket


def test_export_to_s3_reads_back(
    s3_lake: tuple[LakeStore, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, bucket = s3_lake
    status, out, err = run(capsys, f"s3://{bucket}/exports/v0/", "--version", "0")
    assert (status, err) == (0, "")
    assert f"under s3://{bucket}/exports/v0/data/" in out
    client = boto3.client("s3")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="exports/")["Contents"])
    assert keys == ["exports/v0/DATASET.md", "exports/v0/data/part-00000.parquet", "exports/v0/dataset.json"]
    body = client.get_object(Bucket=bucket, Key="exports/v0/data/part-00000.parquet")["Body"].read()
    exported = pq.read_table(io.BytesIO(body)).to_pandas()
    pd.testing.assert_frame_equal(ordered(exported), ordered(expected_frame(0)))
    card = json.loads(client.get_object(Bucket=bucket, Key="exports/v0/dataset.json")["Body"].read())
    expected = independent_card(VERSION_0)
    assert {key: card[key] for key in expected} == expected
    markdown = client.get_object(Bucket=bucket, Key="exports/v0/DATASET.md")["Body"].read().decode()
    assert markdown == dataset_card.markdown(dataset_card.figures(store, 0))
    # A local export of the same S3 version says the same.
    local = tmp_path / "local"
    assert run(capsys, str(local), "--version", "0")[0] == 0
    assert (local / "DATASET.md").read_text() == markdown
    assert run(capsys, f"s3://{bucket}/exports/v0", "--version", "0")[2] == (
        f"stedi export: s3://{bucket}/exports/v0 is not empty (3 files): give a new or empty folder, or --force to"
        " replace a previous export there\n"
    )


@pytest.mark.graph
def test_the_asset_shows_the_card_an_export_of_its_version_writes(
    materialized_lake: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = lakes.materialized(ConsentPolicy.SINCE, tmp_path_factory).result
    (metadata,) = [
        event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None and event.asset_key.path == [TABLE.name]
    ]
    shown = metadata["dataset_card"].value
    version = metadata["table_version"].value
    assert isinstance(shown, str) and isinstance(version, int)
    monkeypatch.setenv("STEDI_LAKE_ROOT", str(materialized_lake))
    dest = tmp_path_factory.mktemp("export") / "ml"
    status, _, err = run(capsys, str(dest), "--version", str(version))
    assert (status, err) == (0, "")
    assert (dest / "DATASET.md").read_text() == shown
    card = json.loads((dest / "dataset.json").read_text())
    assert card["rows"] == metadata["dagster/row_count"].value
    assert card["consent_policy"]["name"] == "since"
    assert card["key_fingerprint"] == FINGERPRINT == metadata["pseudonym_key_fingerprint"].value
    assert card["generated"] is True
    # No direct identifier of the world's customers reaches the card.
    customers = lakes.table_frame(materialized_lake, CUSTOMER_LANDING)
    names = [n for n in customers["customerName"].dropna() if any(c.isalpha() for c in n) and len(n) >= 5]
    phones = [p for p in customers["phone"].dropna() if sum(c.isdigit() for c in p) >= 7]
    births = [b for b in customers["birthDay"].dropna() if any(c.isdigit() for c in b)]
    for value in [*customers["email"].dropna(), *names, *phones, *births]:
        assert value.strip() not in shown, "the card holds a customer's identifier"
