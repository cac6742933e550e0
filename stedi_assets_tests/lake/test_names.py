"""Every name and shape a landing folder can hold, local and on S3: each object the listing finds is either read
whole by the project's real read (`read_batch`, Spark) or exactly one fault whose reason says what it is; never
"vanished" (unreadable_file), and no line is lost.

The objects are generated from classes of names (colons, glob characters, percent signs, spaces, control
characters, Unicode, names Spark skips) and shapes (nested and oddly named folders, a `_spark_metadata/` folder,
zero-byte files, S3 folder markers empty and not, `//` keys). All of one storage's objects sit in one landing
folder and are read in one batch, as a run reads them: one odd name must not cost any other file its lines.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from pyspark.sql import SparkSession

from stedi_assets import reasons
from stedi_assets.assets.landing_files import changed_files, read_batch
from stedi_assets.lake.storage import LocalStorage, S3Storage, Storage
from stedi_assets.transforms.parsing import FileFault

READ = "read"  # every line read, no fault
SKIPPED = "skipped"  # not listed: a staging or marker name, as the README says the lake skips them
ABSENT = "absent"  # not made on this storage (S3 keys cannot hold it, or a local path cannot spell it)


@dataclass(frozen=True)
class Shape:
    """An object in a landing folder: its path under the folder (a trailing / is an S3 folder marker, or a local
    folder), what it holds, and what each storage must make of it."""

    path: str
    local: str
    s3: str
    body: bytes | None = None  # None: two lines naming the path

    def content(self) -> bytes:
        if self.body is not None:
            return self.body
        return f"first line of {self.path!r}\nsecond line of {self.path!r}\n".encode()

    def lines(self) -> list[str]:
        data = self.content()
        data = gzip.decompress(data) if self.path.lower().endswith(".gz") else data
        return data.decode().splitlines()


def named(names: list[str], local: str = READ, s3: str = READ) -> list[Shape]:
    return [Shape(name, local, s3) for name in names]


GLOB_CHARACTERS = "{}[]*?\\,"
# Classes of names, each with several members; a file of each in the folder itself and in a nested folder.
NAME_CLASSES: dict[str, list[Shape]] = {
    # Read everywhere: Hadoop's checksummed local file system would open `.a:b.json.crc` beside the file and take
    # `.a:` for a URI scheme; the raw one reads the file alone.
    "colon": named(["a:b.json", ":lead.json", "a::b.json", "s3:x.json", "file:x.json", "x.json:"]),
    "glob": named([f"a{c}b.json" for c in GLOB_CHARACTERS] + ["{a,b}.json", "[!a].json", "a**.json"]),
    "percent": named(["a%41.json", "a%.json", "%2F.json", "a%20b.json", "100%.json"]),
    "spaces": named([" lead.json", "trail.json ", "a  b.json", " ", "tab\tin.json"]),
    # moto's S3 server refuses keys with a line break (real S3 takes them): local only.
    "line breaks": named(["new\nline.json", "cr\rin.json", "end.json\n"], s3=ABSENT),
    "unicode": named(["caf\u00e9.json", "cafe\u0301.json", "\u65e5\u672c.json", "\U0001f600.json", "\u202egnp.json"]),
    "uri-like": named(["a#b.json", "a=b.json", "~x.json", "a+b.json", "a&b;c.json", "http%3A%2F%2Fx", "a'b\".json"]),
    # Names Spark skips even when given the file's own path: the listing skips them the same way.
    "hidden": named(
        ["_x.json", ".x.json", "x.json._COPYING_", "_SUCCESS", "_metadata.json", "_a=1.json", "_"],
        SKIPPED,
        SKIPPED,
    ),
    "codec in any case": [
        Shape(name, READ, READ, gzip.compress(f"packed {name}\n".encode()))
        for name in ["a b.json.gz", "a[1].GZ", "%.Gz"]
    ],
    "zero bytes": [Shape(name, READ, READ, b"") for name in ["empty.json", "empty [1].json", "empty%.json"]],
}


def nested(folder: str, shape: Shape) -> Shape:
    """`shape` in `folder`. A colon in a folder's name is read (only the file's own name names the local checksum
    file), unless the path also has a glob character: Hadoop then parses each folder on its own, `c:d` as a URI."""
    path = folder + shape.path
    if ":" in path and any(c in GLOB_CHARACTERS for c in path):
        return Shape(path, reasons.UNSUPPORTED_NAME, reasons.UNSUPPORTED_NAME, shape.body)
    return Shape(path, shape.local, shape.s3, shape.body)


NESTED = ["2026/", "a b/", "c:d/", "[x]/", "%41/", "caf\u00e9/", "deep/er/still/"]
SHAPES: list[Shape] = [
    *(shape for shapes in NAME_CLASSES.values() for shape in shapes),
    # The first member of each class one or more folders down, under folder names of several classes.
    *(nested(folder, shapes[0]) for folder in NESTED for shapes in NAME_CLASSES.values()),
    # A Spark streaming sink's log folder, empty and not: Spark given the landing folder read only this log.
    Shape("_spark_metadata/", SKIPPED, SKIPPED),
    Shape("sub/_spark_metadata/", SKIPPED, SKIPPED),
    Shape("sub/_spark_metadata/0", SKIPPED, SKIPPED, b'v1\n{"path":"x","size":1}\n'),
    Shape("sub/in.json", READ, READ),
    # A stale checksum file beside a local file (Hadoop verified the file against it and failed the read).
    Shape("checked.json", READ, READ),
    Shape(".checked.json.crc", SKIPPED, SKIPPED, b"crc\0" + (512).to_bytes(4, "big") + b"\xde\xad\xbe\xef"),
    # Hidden folders hide what they hold.
    Shape("_tmp/x.json", SKIPPED, SKIPPED),
    Shape(".git/x.json", SKIPPED, SKIPPED),
    Shape("x._COPYING_/y.json", SKIPPED, SKIPPED),
    # S3 folder markers: an empty one is how consoles make folders (skipped); one holding bytes is quarantined,
    # never lost. Locally a folder, empty or not, holds no lines of its own.
    Shape("empty-folder/", SKIPPED, SKIPPED, b""),
    Shape("marker/", SKIPPED, reasons.NOT_A_FILE, b"bytes in a marker\n"),
    Shape("marker/under.json", READ, READ),
    # An empty folder name: Hadoop's paths collapse a//b to a/b, another key (a local path cannot spell it).
    Shape("x//y.json", ABSENT, reasons.UNSUPPORTED_NAME),
    Shape("/lead.json", ABSENT, reasons.UNSUPPORTED_NAME),
    Shape("deep//", ABSENT, reasons.NOT_A_FILE, b"a marker of an empty name\n"),
    Shape("x.json", READ, READ),  # the files beside the empty name are read as themselves
    Shape("y.json", READ, READ),
]


def test_the_generated_set_has_every_class_and_no_path_twice() -> None:
    paths = [shape.path for shape in SHAPES]
    assert len(paths) == len(set(paths))
    outcomes = {(shape.local, shape.s3) for shape in SHAPES}
    assert {(READ, READ), (SKIPPED, SKIPPED), (reasons.UNSUPPORTED_NAME, reasons.UNSUPPORTED_NAME)} <= outcomes
    assert {(SKIPPED, reasons.NOT_A_FILE), (ABSENT, reasons.UNSUPPORTED_NAME)} <= outcomes


@dataclass(frozen=True)
class Landed:
    """A landing folder's objects after one listing and one read: what each URI became."""

    storage: Storage
    uris: dict[str, str]  # shape path -> the URI the listing spells it with
    listed: set[str]
    lines: dict[str, list[str]]  # URI -> lines read, in order
    faults: dict[str, FileFault]


def land(spark: SparkSession, storage: Storage, folder: str, uris: dict[str, str]) -> Landed:
    """Lists the folder, then reads it as a landing run does: probe, read, fingerprint again."""
    listing = storage.list_files(folder)
    spelled = {storage.spark_uri(f.uri): f.uri for f in listing}
    lines, faults = read_batch(spark, {uri: 0 for uri in spelled}, storage)
    read: dict[str, list[str]] = {}
    for row in lines.orderBy("source_file", "line_number").collect():
        read.setdefault(spelled[row.source_file], []).append(row.raw)
    faults = {spelled[uri]: fault for uri, fault in faults.items()}
    faults |= changed_files({f.uri: f.fingerprint for f in listing if f.uri not in faults}, storage.fingerprint)
    return Landed(storage, uris, {f.uri for f in listing}, read, faults)


@pytest.fixture(scope="module")
def local_landed(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    folder = tmp_path_factory.mktemp("names") / "accelerometer" / "landing"
    uris = {}
    for shape in SHAPES:
        if shape.local == ABSENT:
            continue
        path = folder / shape.path
        if shape.path.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(shape.content())
        uris[shape.path] = str(path)
    return land(spark, LocalStorage(str(folder.parent.parent)), str(folder), uris)


@pytest.fixture(scope="module")
def s3_landed(spark: SparkSession, s3_server: str) -> Landed:
    bucket = f"names-{os.urandom(4).hex()}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="lake/accelerometer/landing/", Body=b"")  # the folder's own marker
    uris = {}
    for shape in SHAPES:
        if shape.s3 == ABSENT:
            continue
        key = f"lake/accelerometer/landing/{shape.path}"
        client.put_object(Bucket=bucket, Key=key, Body=shape.content())
        uris[shape.path] = f"s3://{bucket}/{key}"
    return land(spark, S3Storage(f"s3://{bucket}/lake"), f"s3://{bucket}/lake/accelerometer/landing", uris)


def check(landed: Landed, shape: Shape, expected: str) -> None:
    uri = landed.uris[shape.path]
    if expected == SKIPPED:
        assert uri not in landed.listed and uri not in landed.faults and uri not in landed.lines
    elif expected == READ:
        assert uri in landed.listed and uri not in landed.faults
        assert landed.lines.get(uri, []) == shape.lines()
    else:
        assert uri in landed.listed and uri not in landed.lines
        assert landed.faults[uri].reason == expected, landed.faults[uri]
        # Erasure looks inside quarantined objects and may delete them: each is reached by its exact name.
        assert landed.storage.read_bytes(uri) == shape.content()
        assert landed.storage.stat(uri) is not None


def shapes_on(storage: str) -> list[Shape]:
    return [shape for shape in SHAPES if getattr(shape, storage) != ABSENT]


@pytest.mark.parametrize("shape", shapes_on("local"), ids=lambda shape: repr(shape.path))
def test_a_local_object_is_read_or_quarantined_once_for_what_it_is(local_landed: Landed, shape: Shape) -> None:
    check(local_landed, shape, shape.local)


@pytest.mark.parametrize("shape", shapes_on("s3"), ids=lambda shape: repr(shape.path))
def test_an_s3_object_is_read_or_quarantined_once_for_what_it_is(s3_landed: Landed, shape: Shape) -> None:
    check(s3_landed, shape, shape.s3)


def check_nothing_vanished_and_nothing_else_was_read(landed: Landed, storage: str) -> None:
    made = set(landed.uris.values())
    assert landed.listed <= made  # the landing folder's own marker, empty, is not listed either
    assert set(landed.lines) <= landed.listed and set(landed.faults) <= landed.listed
    assert all(fault.reason not in (reasons.UNREADABLE_FILE, reasons.CHANGED_FILE) for fault in landed.faults.values())
    expected_lines = sum(len(shape.lines()) for shape in SHAPES if getattr(shape, storage) == READ)
    assert sum(len(lines) for lines in landed.lines.values()) == expected_lines > 100


def test_nothing_vanished_and_nothing_else_was_read_locally(local_landed: Landed) -> None:
    check_nothing_vanished_and_nothing_else_was_read(local_landed, "local")


def test_nothing_vanished_and_nothing_else_was_read_on_s3(s3_landed: Landed) -> None:
    check_nothing_vanished_and_nothing_else_was_read(s3_landed, "s3")


def test_a_local_name_that_is_not_utf8_is_one_fault_and_the_rest_is_read(spark: SparkSession, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "fine.json").write_bytes(b"fine\n")
    with open(os.fsencode(folder) + b"/latin-1 caf\xe9.json", "wb") as odd:  # a name written by a Latin-1 system
        odd.write(b"odd\n")
    odd_uri = os.fsdecode(os.fsencode(folder) + b"/latin-1 caf\xe9.json")
    landed = land(spark, LocalStorage(str(tmp_path)), str(folder), {})
    assert landed.lines == {str(folder / "fine.json"): ["fine"]}
    detail = "its name (latin-1 caf\\xe9.json) is not UTF-8: Spark cannot be given it"
    assert landed.faults == {odd_uri: (reasons.UNSUPPORTED_NAME, detail)}
