"""Compressed landing files: the project reads a file the way Spark does (codec by the name's suffix, in any
case; every gzip member), refuses the codecs it does not read before Spark sees them, and a blanking rewrite
keeps every other line of every member, verified before it replaces the file."""

from __future__ import annotations

import bz2
import gzip
import zlib
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.assets.landing_files import probe_file
from stedi_assets.lake import blanking
from stedi_assets.lake.blanking import BlankingError, blank_lines, readable_lines, split_lines
from stedi_assets.lake.codecs import codec_of, decompressed
from stedi_assets.lake.storage import LocalStorage

ANN = b'{"email": "ann@example.com"}'
OTHERS = [b'{"email": "bob%d@example.com"}' % n for n in range(5)]
COMPRESS = {"gzip": gzip.compress, "bzip2": bz2.compress, "deflate": zlib.compress}


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("part.json.gz", "gzip"),
        ("part.json.GZ", "gzip"),
        ("part.Gz", "gzip"),
        ("part.bz2", "unsupported"),
        ("part.BZ2", "unsupported"),
        ("part.zst", "unsupported"),
        ("part.ZST", "unsupported"),
        ("part.deflate", "unsupported"),
        ("part.lz4", "unsupported"),
        ("part.Snappy", "unsupported"),
        ("part.json", "plain"),
        ("part.xz", "plain"),  # Spark has no xz codec: its bytes arrive as lines
        ("part.gz.part", "plain"),
        ("part.gzip", "plain"),
    ],
)
def test_the_codec_is_the_names_suffix_in_any_case(name: str, codec: str) -> None:
    assert codec_of(name) == codec


@pytest.mark.spark
def test_gzip_and_plain_files_read_as_spark_reads_them(spark: SparkSession, tmp_path: Path) -> None:
    """The rule above is Spark's: what `decompressed` yields for gzip and plain names is what Spark's text
    source reads, and Spark does decompress the names the project refuses (so reading them as plain is wrong)."""
    text = b"\n".join([ANN, *OTHERS]) + b"\n"
    files = {
        "a.GZ": gzip.compress(text),
        "b.json.gz": gzip.compress(text[:40]) + gzip.compress(text[40:]),  # two members, as `cat a.gz b.gz`
        "c.json": text,
        "d.Bz2": bz2.compress(text),
        "e.deflate": zlib.compress(text),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    read = spark.read.text(str(tmp_path)).withColumn("file", F.input_file_name()).collect()
    by_spark = {name: [row.value.encode() for row in read if row.file.endswith(name)] for name in files}
    storage = LocalStorage(str(tmp_path))
    for name in files:
        with storage.open(str(tmp_path / name)) as stream:
            ours = [line for line, _ in split_lines(decompressed(stream, name))]
        if codec_of(name) == "unsupported":
            assert by_spark[name] == text.splitlines() and ours == text.splitlines()  # Python reads bzip2/deflate too
        else:
            assert ours == by_spark[name] == text.splitlines(), name


def test_the_probe_refuses_other_codecs_and_checks_every_gzip_member(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    whole = gzip.compress(ANN + b"\n") + gzip.compress(b"\n".join(OTHERS) + b"\n")
    cases = {
        "ok.GZ": whole,
        "second-member-cut.json.gz": whole[:-7],
        "not-gzip.Gz": b"plain text named .gz\n",
        "plain.bz2": b"plain text named .bz2: Spark would read no line of it\n",
        "real.zst": b"(\xb5/\xfd" + b"\x00" * 8,
    }
    faults = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        faults[name] = probe_file(str(tmp_path / name), storage.open)
    assert faults["ok.GZ"] is None
    assert faults["second-member-cut.json.gz"] is not None
    assert faults["second-member-cut.json.gz"].reason == reasons.CORRUPT_FILE
    assert faults["not-gzip.Gz"] is not None and faults["not-gzip.Gz"].reason == reasons.CORRUPT_FILE
    for name, codec in (("plain.bz2", "bzip2"), ("real.zst", "zstd")):
        fault = faults[name]
        assert fault is not None and fault.reason == reasons.UNSUPPORTED_COMPRESSION
        assert fault.detail == f"{codec} by its name: only gzip (.gz) and plain text are read"


@pytest.mark.parametrize("name", ["part.json.GZ", "part.json.gz"])
def test_blanking_a_multi_member_gzip_keeps_every_other_line_of_every_member(tmp_path: Path, name: str) -> None:
    lines = [OTHERS[0], ANN, OTHERS[1], OTHERS[2], ANN, OTHERS[3]]
    members = [b"\n".join(lines[:3]) + b"\n", b"\n".join(lines[3:]) + b"\n"]
    path = tmp_path / name
    path.write_bytes(b"".join(gzip.compress(member) for member in members))
    blank_lines(LocalStorage(str(tmp_path)), str(path), {2, 5})
    after = gzip.decompress(path.read_bytes()).split(b"\n")
    assert after == [OTHERS[0], b"", OTHERS[1], OTHERS[2], b"", OTHERS[3], b""]


def test_a_file_of_a_codec_not_read_is_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "part.json.bz2"
    data = bz2.compress(ANN + b"\n" + OTHERS[0] + b"\n")
    path.write_bytes(data)
    with pytest.raises(BlankingError):
        blank_lines(LocalStorage(str(tmp_path)), str(path), {1})
    assert path.read_bytes() == data


def test_a_rewrite_that_would_change_another_line_does_not_replace_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "part.json.gz"
    data = gzip.compress(b"\n".join([ANN, *OTHERS]) + b"\n")
    path.write_bytes(data)
    monkeypatch.setattr(blanking, "blanked", lambda previous, terminator: b"")  # a bug: the terminator is lost
    with pytest.raises(BlankingError, match="not replaced"):
        blank_lines(LocalStorage(str(tmp_path)), str(path), {1})
    assert path.read_bytes() == data


@pytest.mark.parametrize("codec", COMPRESS)
def test_erasure_finds_text_in_every_member_and_codec(tmp_path: Path, codec: str) -> None:
    suffix = {"gzip": ".gz", "bzip2": ".bz2", "deflate": ".deflate"}[codec]
    compress = COMPRESS[codec]
    path = tmp_path / f"part.json{suffix.upper()}"
    path.write_bytes(compress(b"\n".join(OTHERS) + b"\n") + compress(ANN + b"\n"))
    assert "ann@example.com" in "\n".join(readable_lines(LocalStorage(str(tmp_path)), str(path)))


def test_erasure_looks_inside_gzip_that_spark_would_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "part.json.gz.part"  # an upload not yet renamed: Spark would read its bytes as lines
    path.write_bytes(gzip.compress(ANN + b"\n"))
    assert "ann@example.com" in "\n".join(readable_lines(LocalStorage(str(tmp_path)), str(path)))


@pytest.mark.parametrize("name", ["part.json.GZ", "part.json.bz2", "part.json.zst", "part.json.deflate"])
def test_erasure_reads_plain_text_whatever_codec_its_name_claims(tmp_path: Path, name: str) -> None:
    """A real feed's `.GZ` that was never compressed (Spark cannot read it: one corrupt_file row) still names the
    customer to a person who opens it, so the search reads its bytes as they are."""
    path = tmp_path / name
    path.write_bytes(b"\n".join([*OTHERS, ANN]) + b"\n")
    assert "ann@example.com" in "\n".join(readable_lines(LocalStorage(str(tmp_path)), str(path)))


def test_erasure_reads_a_truncated_gzip_up_to_where_it_breaks(tmp_path: Path) -> None:
    data = gzip.compress(b"\n".join([ANN, *OTHERS * 200]) + b"\n", compresslevel=1)
    path = tmp_path / "part.json.Gz"
    path.write_bytes(data[: len(data) // 2])
    text = "\n".join(readable_lines(LocalStorage(str(tmp_path)), str(path)))
    assert "ann@example.com" in text and "bob4@example.com" in text


def test_a_broken_compressed_stream_is_not_rewritten(tmp_path: Path) -> None:
    """A truncated .gz cannot be rewritten line for line: a BlankingError (what every caller leaves a file for),
    not a decompression error, and the file stays as it was."""
    whole = gzip.compress(b"\n".join([ANN, *OTHERS * 50]) + b"\n")
    path = tmp_path / "part.json.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BlankingError, match="compressed stream breaks"):
        blank_lines(LocalStorage(str(tmp_path)), str(path), {1})
    assert path.read_bytes() == whole[: len(whole) // 2]
