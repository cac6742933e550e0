"""Erasure reaches every copy: a request removes the customer from every table, every readable version, the raw
landing files and the Dagster instance; neither a rebuild nor an old file delivered again brings them back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from stedi_assets.assets import landing
from stedi_assets.assets.erasure import RECEIPTS, RequestError, parse_requests
from stedi_assets.contracts import EPOCH_MS_MIN
from stedi_assets.lake.storage import storage_for
from stedi_assets.tables import ALL_TABLES, CUSTOMER_ERASURE, CUSTOMER_LANDING
from stedi_assets.transforms.erased_rows import ERASED, erased_holdings, mark_erased
from stedi_assets.transforms.identity import identity_of
from stedi_assets.transforms.pseudonyms import subject_keys
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import lakes
from stedi_assets_tests.builders import BOB, SERIAL_1, SERIAL_2, T0
from stedi_assets_tests.lakes import (
    TEST_KEY,
    generate_lake,
    gunzipped,
    materialize_lake,
    table_frame,
    table_location,
)
from stedi_assets_tests.test_tombstones import O_NEIL, O_NEIL_SPELLINGS


def test_requests_are_read_as_identity_keys_and_a_bad_line_names_only_its_place() -> None:
    lines = [
        ("r.json", 1, '\ufeff{"email": " Alice@Example.com\u00a0", "requestedAt": 5}'),
        ("r.json", 2, ""),
        ("r.json", 3, '{"email": "alice@example.com", "requestedAt": 3}'),
        ("s.json", 1, '{"email": "bob@example.com"}'),
    ]
    assert parse_requests(lines) == {"alice@example.com": 3, "bob@example.com": None}
    for bad in (
        '{"mail": "carol@example.com"}',
        "carol@example.com",
        '{"email": ""}',
        '{"email": "c@x", "requestedAt": "x"}',
    ):
        with pytest.raises(RequestError) as error:
            parse_requests([("t.json", 7, bad)])
        assert "t.json line 7" in str(error.value) and "carol" not in str(error.value)


def test_rows_of_erased_customers_are_marked_wherever_they_name_them(spark: SparkSession) -> None:
    identities = spark.createDataFrame([("alice@example.com",)], "identity_key string")
    devices = spark.createDataFrame(
        [(SERIAL_1, T0, T0 + 1000)], "serialNumber string, claimed_from long, claimed_until long"
    )
    customers = spark.createDataFrame([(" ALICE@example.com",), (BOB,)], "email string")
    marked_customers = mark_erased(customers, identities, devices, raw_readings=False)
    assert _marks(marked_customers, "email") == {" ALICE@example.com": True, BOB: False}
    readings = spark.createDataFrame(
        [(SERIAL_1, T0), (SERIAL_1, T0 + 1000), (SERIAL_2, T0)], "serialNumber string, sensorReadingTime long"
    )
    marked = {
        (r.serialNumber, r.sensorReadingTime): r[ERASED]
        for r in mark_erased(readings, identities, devices, raw_readings=True).collect()
    }
    assert marked == {(SERIAL_1, T0): True, (SERIAL_1, T0 + 1000): False, (SERIAL_2, T0): False}
    lines = spark.createDataFrame(
        [
            ("f", 1, '{"email": "Alice@Example.com", "phone": "12'),  # cut off: not JSON, still hers
            ("f", 2, f'{{"serialNumber": "{SERIAL_1}", "sensorReadingTime": "soon"}}'),  # time unreadable: erased
            ("f", 3, f'{{"serialNumber": "{SERIAL_1}", "sensorReadingTime": {T0 + 5000}}}'),  # after she held it
            ("f", 4, '{"email": "bob@example.com"}'),
        ],
        "source_file string, line_number long, raw string",
    )
    assert _marks(mark_erased(lines, identities, devices, raw_readings=True), "line_number") == {
        1: True,
        2: True,
        3: False,
        4: False,
    }


def test_a_customer_record_is_erased_by_its_own_identity_only(spark: SparkSession) -> None:
    """A device tombstone erases readings, never the record of whoever claims that serial later: records carry
    no reading time, which for a reading would count as held (fail closed)."""
    identities = spark.createDataFrame([("alice@example.com",)], "identity_key string")
    devices = spark.createDataFrame(
        [(SERIAL_1, T0, None)], "serialNumber string, claimed_from long, claimed_until long"
    )
    lines = spark.createDataFrame(
        [
            ("c", 1, f'{{"email": "carol@example.com", "serialNumber": "{SERIAL_1}"}}'),  # took the device over
            ("c", 2, f'{{"serialNumber": "{SERIAL_1}", "email": "carol@example.com", "phone": '),  # cut off
            ("c", 3, f'{{"serialNumber": "{SERIAL_1}"}}'),  # nobody's record: no identity to erase
            ("c", 4, f'{{"email": "ALICE@example.com", "serialNumber": "{SERIAL_2}"}}'),  # the erased customer's own
        ],
        "source_file string, line_number long, raw string",
    )
    records = mark_erased(lines, identities, devices, raw_readings=False)
    assert _marks(records, "line_number") == {1: False, 2: False, 3: False, 4: True}
    # Not vacuous: the same lines as readings of the held device would be erased (no readable time: held).
    readings = mark_erased(lines, identities, devices, raw_readings=True)
    assert _marks(readings, "line_number") == {1: True, 2: True, 3: True, 4: True}


def test_a_raw_line_is_erased_whatever_spelling_of_the_address_it_holds(spark: SparkSession) -> None:
    """Quarantined lines (not JSON, cut short, another key's case) with the address JSON-escaped, in another case,
    with an apostrophe: each is the erased customer's; another customer whose address is a part of hers is not."""
    identities = spark.createDataFrame([(O_NEIL,)], "identity_key string")
    devices = spark.createDataFrame([], "serialNumber string, claimed_from long, claimed_until long")
    raws = [*O_NEIL_SPELLINGS, '{"email": "neil@example.com"}', "neil@example.com"]
    lines = spark.createDataFrame(
        [("q", n, raw) for n, raw in enumerate(raws, start=1)], "source_file string, line_number long, raw string"
    )
    marks = _marks(mark_erased(lines, identities, devices, raw_readings=False), "line_number")
    assert marks == {n: n <= len(O_NEIL_SPELLINGS) for n in range(1, len(raws) + 1)}


def test_an_erased_first_holder_keeps_the_readings_before_every_claim(spark: SparkSession) -> None:
    """Readings before a device's first claim are its first holder's: erasing them tombstones that span too (up to
    anyone else's first claim), or the next holder would inherit them; a device they were not first on, only
    their own holding."""
    ann, bob = "ann@example.com", "bob@example.com"
    claims = spark.createDataFrame(
        [
            (SERIAL_1, ann, T0, T0 + 500),  # Ann first, Bob from T0 + 1000
            (SERIAL_1, bob, T0 + 1000, None),
            (SERIAL_2, bob, T0, T0 + 50),  # Bob first: Ann's holding only
            (SERIAL_2, ann, T0 + 50, None),
            ("33333333-3333-4333-8333-333333333333", ann, T0, None),  # nobody else, ever
            ("44444444-4444-4444-8444-444444444444", ann, T0, T0),  # a claim holding no time
            ("44444444-4444-4444-8444-444444444444", bob, T0 + 9, None),
        ],
        "serialNumber string, identity_key string, claimed_from long, claimed_until long",
    )
    erased = spark.createDataFrame([(ann,)], "identity_key string")
    holdings = {tuple(row) for row in erased_holdings(claims, erased).collect()}
    assert holdings == {
        (SERIAL_1, T0, T0 + 500),
        (SERIAL_1, EPOCH_MS_MIN, T0 + 1000),
        (SERIAL_2, T0 + 50, None),
        ("33333333-3333-4333-8333-333333333333", T0, None),
        ("33333333-3333-4333-8333-333333333333", EPOCH_MS_MIN, None),
        ("44444444-4444-4444-8444-444444444444", T0, T0),
    }


def _marks(frame, key: str) -> dict:
    return {row[key]: row[ERASED] for row in frame.collect()}


def strings_in(path: Path) -> bytes:
    """Everything a file holds, as text a search can see: Parquet columns decoded, gzip and JSON as they are."""
    data = path.read_bytes()
    if data[:4] == b"PAR1":
        table = pq.read_table(path)
        return "\n".join(str(v) for column in table.columns for v in column.to_pylist()).encode()
    if data[:2] == b"\x1f\x8b":  # as much as decompresses, a broken .gz included
        return gunzipped(data)
    return data


def where_it_appears(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = strings_in(path).lower()
        found += [f"{path}: {needle}" for needle in needles if needle.lower().encode() in text]
    return found


def readable_versions_holding(root: Path | str, needles: list[str]) -> list[str]:
    """Every version of every table that can still be read and holds one of the values."""
    found = []
    for table in ALL_TABLES.values():
        location = table_location(root, table)
        options = storage_for(location).delta_options()
        if not DeltaTable.is_deltatable(location, storage_options=options):
            continue
        for version in range(DeltaTable(location, storage_options=options).version() + 1):
            try:
                frame = DeltaTable(location, version=version, storage_options=options).to_pyarrow_table()
            except Exception:
                continue
            text = "\n".join(str(v) for column in frame.columns for v in column.to_pylist()).lower()
            found += [f"{table.name}@{version}: {n}" for n in needles if n.lower() in text]
    return found


def a_curated_customer_with_readings(root: Path) -> tuple[str, str]:
    """The e-mail and device of a customer whose rows are in every table, training table included."""
    curated = table_frame(root, ALL_TABLES["customer_curated"])
    steps = set(table_frame(root, ALL_TABLES["step_trainer_trusted"])["serialNumber"])
    row = curated[curated["serialNumber"].isin(steps)].sort_values("email").iloc[0]
    return row["email"], row["serialNumber"]


@pytest.fixture(scope="module")
def erased(spark: SparkSession, tmp_path_factory) -> dict:
    """A lake materialized, then an erasure request for one customer (in another spelling) and a second run."""
    work = tmp_path_factory.mktemp("erasure")
    lake = work / "lake"
    generate_lake(lake, customers=15)
    instance = DagsterInstance.ephemeral()
    assert materialize_lake(lake, ConsentPolicy.SINCE, instance).success
    email, serial = a_curated_customer_with_readings(lake)
    subject = table_frame(lake, ALL_TABLES["machine_learning_curated"])["subject_key"]
    kept_aside = work / "original-customer-files"  # the raw files as first delivered, to deliver again later
    shutil.copytree(lake / CUSTOMER_LANDING.files_path, kept_aside)
    requests = lake / CUSTOMER_ERASURE.files_path
    requests.mkdir(parents=True)
    (requests / "request-1.json").write_text(json.dumps({"email": f"  {email.upper()} ", "requestedAt": T0}) + "\n")
    result = materialize_lake(lake, ConsentPolicy.SINCE, instance)
    assert result.success
    return {
        "lake": lake,
        "email": email,
        "serial": serial,
        "subjects": set(subject),
        "instance": instance,
        "result": result,
        "kept_aside": kept_aside,
    }


@pytest.mark.graph
def test_the_customer_is_in_no_table_and_no_file_of_the_lake(erased) -> None:
    assert where_it_appears(erased["lake"], [erased["email"]]) == []
    assert not (erased["lake"] / CUSTOMER_ERASURE.files_path / "request-1.json").exists()


@pytest.mark.graph
def test_no_readable_version_of_any_table_holds_the_customer(erased) -> None:
    """Neither their e-mail nor their training-table pseudonym (another customer may hold their device later)."""
    identity = identity_of(erased["email"])
    subject = subject_keys([identity], TEST_KEY.encode())[identity]
    assert subject in erased["subjects"]
    assert readable_versions_holding(erased["lake"], [erased["email"], subject]) == []


@pytest.mark.graph
def test_the_run_says_how_many_rows_each_table_lost_without_naming_anyone(erased) -> None:
    metadata = {
        e.asset_key.to_user_string(): {
            k: v.value for k, v in e.step_materialization_data.materialization.metadata.items()
        }
        for e in erased["result"].get_asset_materialization_events()
    }
    assert metadata["customer_erasure"]["customers_newly_erased"] == 1
    erased_rows = {name: meta.get("rows_erased", 0) for name, meta in metadata.items()}
    assert erased_rows["customer_landing"] >= 1 and erased_rows["machine_learning_curated"] >= 1
    assert erased_rows["step_trainer_landing"] >= 1
    logs = "\n".join(str(entry) for entry in erased["instance"].all_logs(erased["result"].run_id)).lower()
    assert erased["email"].lower() not in logs


@pytest.mark.graph
def test_a_receipt_tells_an_auditor_what_was_removed(erased) -> None:
    receipts = sorted((erased["lake"] / "customer" / "erasure_receipts").glob("*.json"))
    assert receipts
    receipt = json.loads(receipts[-1].read_text())
    assert receipt["tables"]["customer_landing"]["rows_erased"] >= 1
    assert all("version" in entry for entry in receipt["tables"].values())
    assert erased["email"].lower() not in receipts[-1].read_text().lower()


@pytest.mark.graph
def test_neither_a_rebuild_nor_an_old_file_delivered_again_brings_the_customer_back(erased) -> None:
    lake, instance = erased["lake"], erased["instance"]
    assert materialize_lake(lake, ConsentPolicy.SINCE, instance, rebuild=True).success
    redelivered = lake / CUSTOMER_LANDING.files_path / "redelivered"
    shutil.copytree(erased["kept_aside"], redelivered)
    assert materialize_lake(lake, ConsentPolicy.SINCE, instance).success
    assert where_it_appears(lake, [erased["email"]]) == []
    subjects = set(table_frame(lake, ALL_TABLES["machine_learning_curated"])["subject_key"])
    assert subjects and subjects < erased["subjects"]


@pytest.mark.graph
def test_erasure_on_s3(spark: SparkSession, s3_server: str, tmp_path_factory, tmp_path: Path) -> None:
    """On test_s3's lake (materialized locally and on S3 once per session): a request, and the run that erases."""
    lake = lakes.on_s3(tmp_path_factory)
    root, bucket = lake.root, lake.bucket
    email = table_frame(root, ALL_TABLES["customer_curated"]).sort_values("email").iloc[0]["email"]
    assert readable_versions_holding(root, [email]) != [], "the customer is in the lake before the request"
    client = boto3.client("s3")
    client.put_object(
        Bucket=bucket, Key=f"lake/{CUSTOMER_ERASURE.files_path}/r.json", Body=json.dumps({"email": email}).encode()
    )
    assert materialize_lake(root, ConsentPolicy.SINCE, lake.instance).success
    download = tmp_path / "downloaded"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="lake/"):
        for item in page.get("Contents", []):
            target = download / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, item["Key"], str(target))
    assert where_it_appears(download, [email]) == []
    assert readable_versions_holding(root, [email]) == []


@pytest.mark.graph
def test_a_request_stays_until_its_receipt_and_a_file_not_blanked_is_retried(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails part-way keeps the request; a raw file whose rewrite fails (an I/O error) is named in the
    receipt as pending and blanked by the next run; the request goes once the receipt is written."""
    lake = tmp_path / "lake"
    generate_lake(lake, customers=6, seed=5)
    readings = lake / "accelerometer" / "landing"
    with DagsterInstance.ephemeral() as instance:
        assert materialize_lake(lake, ConsentPolicy.SINCE, instance).success
        email, _ = a_curated_customer_with_readings(lake)
        request = lake / CUSTOMER_ERASURE.files_path / "request.json"
        request.parent.mkdir(parents=True)
        request.write_text(json.dumps({"email": email}) + "\n")
        assert where_it_appears(readings, [email])
        blank_lines = landing.blank_lines

        def failing_for_readings(error: Exception):
            def blank(storage, uri: str, numbers: set[int]):
                if uri.startswith(str(readings)):
                    raise error
                return blank_lines(storage, uri, numbers)

            return blank

        # A failure the landing asset does not expect: the run fails before any receipt; the request stays.
        monkeypatch.setattr(landing, "blank_lines", failing_for_readings(RuntimeError("a bug")))
        assert not materialize_lake(lake, ConsentPolicy.SINCE, instance).success
        assert request.exists() and not (lake / RECEIPTS).exists()
        # An I/O error on one file: the erasure completes, the file is pending.
        monkeypatch.setattr(landing, "blank_lines", failing_for_readings(OSError(5, "Input/output error")))
        pending_run = materialize_lake(lake, ConsentPolicy.SINCE, instance)
        assert pending_run.success
        (receipt,) = (lake / RECEIPTS).glob("*.json")
        pending = json.loads(receipt.read_text())["raw_files_pending_blanking"]
        assert pending == sorted(where.split(": ")[0] for where in where_it_appears(readings, [email]))
        assert pending and where_it_appears(lake / CUSTOMER_LANDING.files_path, [email]) == []
        assert not request.exists()  # the receipt is written
        monkeypatch.undo()
        retried = materialize_lake(lake, ConsentPolicy.SINCE, instance)
    assert retried.success
    assert where_it_appears(lake, [email]) == []
    metadata = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in retried.get_asset_materialization_events()
    }
    assert metadata["accelerometer_landing"]["raw_files_pending_blanking"].value == 0
    assert metadata["accelerometer_landing"]["raw_lines_blanked"].value > 0
