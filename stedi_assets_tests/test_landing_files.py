"""Landing files: read line by line with exact numbers (also split across tasks), probed, fingerprinted."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.assets.landing_files import (
    FilesNotListedError,
    changed_files,
    probe_file,
    probe_files,
    read_batch,
    read_lines,
)
from stedi_assets.checks import descriptive_failures
from stedi_assets.lake.names import listed_name
from stedi_assets.lake.storage import LocalStorage, S3Storage
from stedi_assets.reasons import QUARANTINE_REASONS
from stedi_assets.sample import FEEDS
from stedi_assets.tables import CUSTOMER_LANDING, LANDING_TABLES, QUARANTINE_OF
from stedi_assets.transforms.parsing import LINES_SCHEMA, parse_landing, with_file_faults
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests.builders import customer
from stedi_assets_tests.exports import generate_exported_lake
from stedi_assets_tests.lakes import empty_lake, materialize_lake, table_frame

BUCKET = "stedi-landing-files"


@contextmanager
def spark_conf(spark: SparkSession, **keys: str) -> Iterator[None]:
    """Session settings for the duration of a block (the test session is shared)."""
    previous = {key: spark.conf.get(key, None) for key in keys}
    for key, value in keys.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def listed_files(folder: str) -> dict[str, str]:
    """A local folder's files as a run lists them: URI -> fingerprint."""
    return {f.uri: f.fingerprint for f in LocalStorage("").list_files(folder)}


def write(path: Path, data: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def rows(lines: DataFrame) -> list[tuple[str, int, int, str]]:
    return sorted((r.source_file, r.line_number, r.arrived_at, r.raw) for r in lines.collect())


def numbered(count: int) -> str:
    return "".join(f"line {n:05d}\n" for n in range(1, count + 1))


def test_the_frame_has_the_lines_schema(spark: SparkSession, tmp_path: Path) -> None:
    lines = read_lines(spark, {write(tmp_path / "a.json", "x\n"): 5})
    assert lines.schema.simpleString() == LINES_SCHEMA.simpleString()
    assert rows(read_lines(spark, {})) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("one\ntwo\nthree", ["one", "two", "three"]),
        ("one\ntwo\n", ["one", "two"]),
        ("one\r\ntwo\r\n", ["one", "two"]),
        ("one\n\nthree\n", ["one", "", "three"]),
        ("one\n\n", ["one", ""]),
        ("one\r\n\r\n", ["one", ""]),
        ("one\rtwo\r", ["one", "two"]),
        ("\n", [""]),
        ("", []),
    ],
    ids=[
        "no-final-newline",
        "lf",
        "crlf",
        "blank-inside",
        "blank-last-lf",
        "blank-last-crlf",
        "lone-cr",
        "one-blank",
        "empty",
    ],
)
def test_lines_are_numbered_from_1_in_each_file(
    spark: SparkSession, tmp_path: Path, content: str, expected: list[str]
) -> None:
    path = write(tmp_path / "a.json", content)
    other = write(tmp_path / "b.json", "only\n")
    assert rows(read_lines(spark, {path: 7, other: 8})) == sorted(
        [(path, n, 7, raw) for n, raw in enumerate(expected, start=1)] + [(other, 1, 8, "only")]
    )


def test_a_file_split_across_tasks_keeps_exact_line_numbers(spark: SparkSession, tmp_path: Path) -> None:
    # Mixed line endings, lines of varied length, and a blank last line: splits fall anywhere in a line.
    endings = ("\n", "\r\n", "\r\n")
    text = "".join(f"line {n}{'x' * (n % 17)}{endings[n % 3]}" for n in range(1, 3001)) + "\n"
    big = write(tmp_path / "big.json", text)
    small = write(tmp_path / "small.json", "a\nb\n")
    with spark_conf(spark, **{"spark.sql.files.maxPartitionBytes": "4096"}):
        lines = read_lines(spark, {big: 1, small: 2}).withColumn("task", F.spark_partition_id()).cache()
        found = {(r.source_file, r.line_number): r.raw for r in lines.collect()}
        tasks = lines.where(F.col("source_file") == big).select("task").distinct().count()
        lines.unpersist()
    assert tasks > 10  # the file was read in many splits, by many tasks
    expected = {(big, n): f"line {n}{'x' * (n % 17)}" for n in range(1, 3001)}
    expected |= {(big, 3001): "", (small, 1): "a", (small, 2): "b"}
    assert found == expected


def test_files_packed_into_one_task_keep_their_own_numbers(spark: SparkSession, tmp_path: Path) -> None:
    files = {write(tmp_path / f"f{i}.json", numbered(i + 3)): i for i in range(12)}
    packed = {"spark.sql.files.openCostInBytes": "0", "spark.sql.files.minPartitionNum": "1"}
    with spark_conf(spark, **packed):
        lines = read_lines(spark, files)
        assert lines.select(F.spark_partition_id()).distinct().count() <= 2  # 12 files in one or two tasks
        found = rows(lines)
    assert found == sorted((f, n, i, f"line {n:05d}") for f, i in files.items() for n in range(1, i + 4))


def test_many_local_files_are_listed_on_the_driver_and_the_session_keeps_its_setting(
    spark: SparkSession, tmp_path: Path
) -> None:
    threshold = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    files = {write(tmp_path / f"{i % 3}" / f"f{i}.json", f"{i}\n"): i for i in range(40)}  # more than 32 paths
    jobs = spark.sparkContext.statusTracker()
    before = set(jobs.getJobIdsForGroup(None))
    with spark_conf(spark, **{threshold: "32"}):
        lines = read_lines(spark, files)
        assert set(jobs.getJobIdsForGroup(None)) == before  # no listing job: a task per path cost 8 ms each
        assert spark.conf.get(threshold) == "32"
    assert rows(lines) == sorted((f, 1, i, str(i)) for f, i in files.items())


def test_a_gzip_file_is_read_whole_by_one_task(spark: SparkSession, tmp_path: Path) -> None:
    path = write(tmp_path / "a.json.gz", gzip.compress(numbered(500).encode()))
    with spark_conf(spark, **{"spark.sql.files.maxPartitionBytes": "256"}):
        found = rows(read_lines(spark, {path: 3}))
    assert found == [(path, n, 3, f"line {n:05d}") for n in range(1, 501)]


@pytest.mark.parametrize(
    "name", ["a b.json", "a+b.json", "a%20b.json", "caf\u00e9.json", "a#b.json", "a[1].json", "{a,b}.json", "a?.json"]
)
def test_the_source_file_is_the_uri_as_given(spark: SparkSession, tmp_path: Path, name: str) -> None:
    # Spark names files percent-encoded, and reads paths as globs: neither may change or lose a file.
    folder = tmp_path / "odd [dir]"
    path = write(folder / name, "one\n")
    neighbour = write(folder / "plain.json", "two\n")
    assert rows(read_lines(spark, {path: 1, neighbour: 2})) == sorted([(path, 1, 1, "one"), (neighbour, 1, 2, "two")])


def test_a_file_uri_is_read_and_named_as_given(spark: SparkSession, tmp_path: Path) -> None:
    path = write(tmp_path / "a[1] b.json", "a\n")  # file: is a scheme, not a colon in the path
    assert rows(read_lines(spark, {f"file:{path}": 4})) == [(f"file:{path}", 1, 4, "a")]


def test_only_the_files_of_the_batch_are_read(spark: SparkSession, tmp_path: Path) -> None:
    wanted = write(tmp_path / "feed" / "a.json", "a\n")
    nested = write(tmp_path / "feed" / "2024" / "b.json", "b\n")
    write(tmp_path / "feed" / "not-in-batch.json", "c\n")
    write(tmp_path / "feed" / "2024" / "later.json", "d\n")
    assert rows(read_lines(spark, {wanted: 1, nested: 2})) == [(nested, 1, 2, "b"), (wanted, 1, 1, "a")]


def test_a_relative_path_is_read_and_named_as_given(spark: SparkSession, tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "feed" / "a.json", "a\n")
    monkeypatch.chdir(tmp_path)
    assert rows(read_lines(spark, {"feed/a.json": 1})) == [("feed/a.json", 1, 1, "a")]


def test_a_file_gone_before_the_read_is_named(spark: SparkSession, tmp_path: Path) -> None:
    here = write(tmp_path / "a.json", "a\n")
    with pytest.raises(FilesNotListedError) as raised:
        read_lines(spark, {here: 1, str(tmp_path / "gone.json"): 2})
    assert raised.value.uris == [str(tmp_path / "gone.json")]


def test_a_file_gone_during_the_read_does_not_fail_it(spark: SparkSession, tmp_path: Path) -> None:
    stays = write(tmp_path / "a.json", "a\n")
    goes = write(tmp_path / "b.json", "b\n")
    listed = listed_files(str(tmp_path))
    lines = read_lines(spark, {stays: 1, goes: 2})  # listed by Spark, not read yet
    os.remove(goes)
    assert rows(lines) == [(stays, 1, 1, "a")]
    assert set(changed_files(listed, LocalStorage("").fingerprint)) == {goes}


def test_a_batch_reads_what_it_can_and_names_the_rest(spark: SparkSession, tmp_path: Path) -> None:
    good = write(tmp_path / "a.json", "a\n")
    packed = write(tmp_path / "b.json.gz", gzip.compress(b"b\n"))
    cut = write(tmp_path / "c.json.gz", truncated_gzip(b"c\n" * 1000))
    gone = str(tmp_path / "gone.json")

    class VanishesAfterTheProbe(LocalStorage):
        def open(self, uri: str):
            stream = super().open(uri)
            if uri == good:
                os.remove(good)  # gone before Spark lists the folder
            return stream

    lines, faults = read_batch(spark, {good: 1, packed: 2, cut: 3, gone: 4}, VanishesAfterTheProbe(""))
    assert rows(lines) == [(packed, 1, 2, "b")]
    assert {uri: fault.reason for uri, fault in faults.items()} == {
        good: "unreadable_file",
        cut: "corrupt_file",
        gone: "unreadable_file",
    }


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("_part.json", r"leading _ or \."),
        (".part.json", r"leading _ or \."),
        ("part.json._COPYING_", r"ending \._COPYING_"),
        ("c:d/[1].json", "a colon and a glob character"),
    ],
)
def test_a_name_spark_would_skip_or_misread_is_refused(
    spark: SparkSession, tmp_path: Path, name: str, refusal: str
) -> None:
    # The listing and the probe keep these from the read; given anyway, they fail loudly instead of losing lines.
    with pytest.raises(ValueError, match=refusal):
        read_lines(spark, {write(tmp_path / name, "a\n"): 1, write(tmp_path / "fine.json", "b\n"): 2})


def test_an_s3_file_is_read_and_named_as_given(spark: SparkSession, s3_server: str) -> None:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="feed/a b+c.json", Body=b"one\r\ntwo\n")
    client.put_object(Bucket=BUCKET, Key="feed/z.json.gz", Body=gzip.compress(b"z\n"))
    client.put_object(Bucket=BUCKET, Key="feed/other.json", Body=b"not in the batch\n")
    files = {f"s3a://{BUCKET}/feed/a b+c.json": 1, f"s3a://{BUCKET}/feed/z.json.gz": 2}
    assert rows(read_lines(spark, files)) == [
        (f"s3a://{BUCKET}/feed/a b+c.json", 1, 1, "one"),
        (f"s3a://{BUCKET}/feed/a b+c.json", 2, 1, "two"),
        (f"s3a://{BUCKET}/feed/z.json.gz", 1, 2, "z"),
    ]
    s3 = S3Storage(f"s3://{BUCKET}")
    assert probe_files([*files, f"s3a://{BUCKET}/feed/gone.json"], s3.open) == {
        f"s3a://{BUCKET}/feed/gone.json": ("unreadable_file", "not found: it vanished after it was listed")
    }
    listed = {f.uri: f.fingerprint for f in s3.list_files(f"s3://{BUCKET}/feed")}
    assert s3.fingerprint(f"s3://{BUCKET}/feed/a b+c.json") == listed[f"s3://{BUCKET}/feed/a b+c.json"]
    assert s3.fingerprint(f"s3a://{BUCKET}/feed/gone.json") is None


def test_a_generated_lake_lands_as_its_report_says(spark: SparkSession, tmp_path: Path) -> None:
    """Listing, probe, read, parse and file faults over the generator's lake (BOM, CRLF, gzip, broken files,
    key spellings, descriptive defects): kept and quarantined rows and descriptive failures are its figures."""
    report = generate_exported_lake(tmp_path, customers=30)
    for feed, table in zip(FEEDS, LANDING_TABLES, strict=True):
        listed = listed_files(str(tmp_path / table.files_path))
        arrivals = dict.fromkeys(listed, 0)
        lines, faults = read_batch(spark, arrivals, LocalStorage(""))
        parsed = parse_landing(lines, table).cache()
        by_reason = {row.reason: row["count"] for row in parsed.groupBy("reason").count().collect()}
        faults |= changed_files({uri: listed[uri] for uri in listed if uri not in faults}, LocalStorage("").fingerprint)
        landed = with_file_faults(parsed, table, faults, arrivals)
        quarantined = landed.where(landed.reason.isin(*QUARANTINE_REASONS)).count()
        found = descriptive_failures(table, parsed)
        parsed.unpersist()
        assert by_reason.get(None, 0) == report["landing_rows"][table.name], feed
        assert quarantined == report["quarantined_rows"][f"{table.name}_quarantine"], feed
        assert len(faults) == report["quarantined_files"][f"{table.name}_quarantine"], feed
        expected = report["descriptive_failures"][table.name]
        assert expected or feed != "customer"
        assert {rule: f["rows"] for rule, f in found.items() if f["rows"]} == expected, feed


# ------------------------------------------------------------------------------------------- probing


def truncated_gzip(data: bytes) -> bytes:
    whole = gzip.compress(data, mtime=0)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("name", "data", "fault"),
    [
        ("a.json", b"plain\n", None),
        ("empty.json", b"", None),
        ("a.json.gz", gzip.compress(b"a\n" * 10_000, mtime=0), None),
        ("two-members.json.gz", gzip.compress(b"a\n", mtime=0) + gzip.compress(b"b\n", mtime=0), None),
        ("cut.json.gz", truncated_gzip(os.urandom(50_000)), ("corrupt_file", "truncated gzip")),
        ("fake.json.gz", b'{"not": "gzip"}\n', ("corrupt_file", "not gzip")),
        ("crc.json.gz", gzip.compress(b"a\n" * 100, mtime=0)[:-8] + b"\0" * 8, ("corrupt_file", "corrupt gzip")),
        ("magic-only.json.gz", b"\x1f\x8b", ("corrupt_file", "truncated gzip")),
    ],
)
def test_probe_finds_what_spark_could_not_read(
    tmp_path: Path, name: str, data: bytes, fault: tuple[str, str] | None
) -> None:
    path = write(tmp_path / name, data)
    found = probe_file(path, LocalStorage("").open)
    if fault is None:
        assert found is None
    else:
        assert found is not None and found.reason == fault[0] and found.detail.startswith(fault[1]), found


def test_probe_reports_a_file_it_may_not_open_or_that_vanished(tmp_path: Path) -> None:
    # Root reads any file whatever its mode bits, so the storage is a callable that fails as S3 or a
    # non-root user would.
    def forbidden(uri: str):
        raise PermissionError(13, "Permission denied", uri)

    assert probe_files(["a.json"], forbidden) == {"a.json": ("unreadable_file", "permission denied: Permission denied")}
    gone = probe_files([str(tmp_path / "gone.json")], LocalStorage("").open)
    assert gone == {str(tmp_path / "gone.json"): ("unreadable_file", "not found: it vanished after it was listed")}


def test_probe_reads_a_gzip_file_as_a_stream(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to 64 KiB: the probe must not hold the decompressed file.
    reads: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            reads.append(len(data))
            return data

    bomb = gzip.compress(bytes(64 << 20))
    assert probe_file("bomb.json.gz", lambda uri: Counting(bomb)) is None
    assert max(reads) <= 1 << 20 and sum(reads) == len(bomb)


def test_changed_files_compares_fingerprints_from_before_and_after(tmp_path: Path) -> None:
    same = write(tmp_path / "same.json", "a\n")
    grows = write(tmp_path / "grows.json", "a\n")
    goes = write(tmp_path / "goes.json", "a\n")
    listed = listed_files(str(tmp_path))
    assert {LocalStorage("").fingerprint(p) for p in listed} == set(listed.values())  # the listing's fingerprint
    with open(grows, "a") as still_uploading:
        still_uploading.write("b\n")
    os.remove(goes)
    faults = changed_files(listed, LocalStorage("").fingerprint)
    assert set(faults) == {grows, goes} and same not in faults
    assert {fault.reason for fault in faults.values()} == {"changed_during_read"}
    assert faults[goes].detail == "changed while it was read: it was deleted"


@pytest.mark.graph
def test_a_name_that_is_not_utf8_is_one_quarantine_row_naming_that_file_until_it_is_gone(
    spark: SparkSession, tmp_path: Path
) -> None:
    quarantine = QUARANTINE_OF[CUSTOMER_LANDING.name]
    selection = [CUSTOMER_LANDING.name, quarantine.name]
    empty_lake(tmp_path)
    landing = tmp_path / CUSTOMER_LANDING.files_path
    write(landing / "fine.json", json.dumps(customer()) + "\n")
    # Two Latin-1 names that one replacement character would make the same text.
    odd = [os.fsencode(landing) + b"/caf\xe9.json", os.fsencode(landing) + b"/caf\xe8.json"]
    for name in odd:
        Path(os.fsdecode(name)).write_bytes(b"{}\n")
    with DagsterInstance.ephemeral() as instance:
        assert materialize_lake(tmp_path, ConsentPolicy.SINCE, instance, selection=selection).success
        rows = table_frame(tmp_path, quarantine).sort_values("source_file")
        assert sorted(listed_name(name) for name in rows["source_file"]) == sorted(map(os.fsdecode, odd))
        assert all(name.isascii() for name in rows["source_file"])  # exact, not U+FFFD
        assert list(rows["reason"]) == [reasons.UNSUPPORTED_NAME] * 2
        os.remove(odd[0])
        assert materialize_lake(tmp_path, ConsentPolicy.SINCE, instance, selection=selection).success
    (left,) = table_frame(tmp_path, quarantine)["source_file"]
    assert listed_name(left) == os.fsdecode(odd[1])
    assert len(table_frame(tmp_path, CUSTOMER_LANDING)) == 1
