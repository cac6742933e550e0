"""Blanking lines of a landing file (erasure's rewrite): every other byte and every line number stays."""

from __future__ import annotations

import bz2
import gzip
import os
import re
import stat
import tracemalloc
from pathlib import Path

import pytest

from stedi_assets.lake import blanking, codecs, storage
from stedi_assets.lake.blanking import blank_lines, readable_lines, split_lines
from stedi_assets.lake.storage import LocalStorage

ANN = b'{"email": "ann@example.com", "phone": "8015550100"}'
BOB = b'{"email": "bob@example.com"}'
LINES = [BOB, ANN, b"", b"not json", ANN, BOB]


def joined(lines: list[bytes], endings: list[bytes]) -> bytes:
    return b"".join(line + end for line, end in zip(lines, endings, strict=True))


def blanked(lines: list[bytes], endings: list[bytes], numbers: set[int]) -> list[bytes]:
    """The lines with `numbers` emptied: to nothing, or to a space where an empty line would not be a line of its
    own (an LF right after a lone CR joins it as CRLF; a last line without a terminator would vanish)."""
    previous = [b"", *endings[:-1]]
    return [
        line if n not in numbers else b" " if (before == b"\r" and end.startswith(b"\n")) or not end else b""
        for n, (line, end, before) in enumerate(zip(lines, endings, previous, strict=True), start=1)
    ]


def hadoop_lines(data: bytes) -> list[bytes]:
    """An independent split, as Hadoop's line reader reads a file: each line with its terminator."""
    return re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", data)


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


ENDINGS = {
    "lf": [b"\n"] * 6,
    "crlf": [b"\r\n"] * 6,
    "cr": [b"\r"] * 6,
    "mixed": [b"\r\n", b"\r", b"\r", b"\n", b"\r\n", b"\n"],  # no lone CR before an empty LF line: a CRLF
    "no final newline": [b"\n"] * 5 + [b""],
    "final lone cr": [b"\n"] * 5 + [b"\r"],
    "lf after a lone cr": [b"\r", b"\n", b"\r", b"\r\n", b"\r", b"\n"],
    "a blanked last line without a terminator": [b"\r"] * 5 + [b""],
}


@pytest.mark.parametrize("name", ENDINGS)
@pytest.mark.parametrize("chunk", [codecs.CHUNK, 3], ids=["1MiB", "3 bytes"])
def test_blanked_lines_keep_their_terminators_and_others_every_byte(tmp_path, monkeypatch, name, chunk) -> None:
    monkeypatch.setattr(codecs, "CHUNK", chunk)  # 3 bytes: a CR and its LF fall into different chunks
    endings = ENDINGS[name]
    uri = write(tmp_path / "landing" / "part.json", joined(LINES, endings))
    numbers = {2, 5, 6} if name == "a blanked last line without a terminator" else {2, 5}
    info = blank_lines(LocalStorage(str(tmp_path)), uri, numbers)
    after = Path(uri).read_bytes()
    assert after == joined(blanked(LINES, endings, numbers), endings)
    lines_after = hadoop_lines(after)
    assert len(lines_after) == len(LINES)  # every line keeps its number
    for number, (line, end) in enumerate(zip(LINES, endings, strict=True), start=1):
        kept = lines_after[number - 1]
        assert kept.strip(b" \r\n") == b"" if number in numbers else kept == line + end
    assert b"ann@" not in after
    assert (info.uri, info.size) == (uri, len(after))


@pytest.mark.parametrize("chunk", [1, 2, 5, 1 << 20])
def test_lines_split_as_hadoop_reads_them_at_any_chunk_boundary(chunk) -> None:
    data = b"a\r\nbb\rc\n\r\n\rdd\n\ne"
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    pairs = list(split_lines(pieces))
    assert [line + end for line, end in pairs] == hadoop_lines(data)
    assert pairs[:3] == [(b"a", b"\r\n"), (b"bb", b"\r"), (b"c", b"\n")] and pairs[-1] == (b"e", b"")
    assert list(split_lines([b"a\n"])) == [(b"a", b"\n")]  # a final terminator starts no other line
    ends_in_cr = [b"a\rb\r"[i : i + chunk] for i in range(0, 4, chunk)]
    assert list(split_lines(ends_in_cr)) == [(b"a", b"\r"), (b"b", b"\r")]  # a last line ending in a lone CR
    assert list(split_lines([])) == []


def test_the_last_line_without_a_terminator_stays_a_line_and_no_other_moves(tmp_path) -> None:
    uri = write(tmp_path / "part.json", BOB + b"\n" + ANN)
    blank_lines(LocalStorage(str(tmp_path)), uri, {2})
    assert Path(uri).read_bytes() == BOB + b"\n "  # a blank line still: a reread counts the same lines
    blank_lines(LocalStorage(str(tmp_path)), uri, {9})  # a number past the end changes nothing
    assert Path(uri).read_bytes() == BOB + b"\n "


def test_a_byte_order_mark_stays_with_the_first_line(tmp_path) -> None:
    bom = b"\xef\xbb\xbf"
    uri = write(tmp_path / "part.json", bom + BOB + b"\r\n" + ANN + b"\r\n" + BOB + b"\r\n")
    blank_lines(LocalStorage(str(tmp_path)), uri, {2})
    assert Path(uri).read_bytes() == bom + BOB + b"\r\n\r\n" + BOB + b"\r\n"
    uri = write(tmp_path / "first.json", bom + ANN + b"\n" + BOB + b"\n")
    blank_lines(LocalStorage(str(tmp_path)), uri, {1})
    assert Path(uri).read_bytes() == b"\n" + BOB + b"\n"  # the mark was part of line 1: the line is empty


def test_a_gzip_file_is_written_back_as_gzip(tmp_path) -> None:
    endings = ENDINGS["crlf"]
    uri = write(tmp_path / "landing" / "part.json.gz", joined(LINES, endings))
    store = LocalStorage(str(tmp_path))
    before = store.stat(uri)
    info = blank_lines(store, uri, {2, 5})
    raw = Path(uri).read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == joined(blanked(LINES, endings, {2, 5}), endings)
    assert info == store.stat(uri) and info.fingerprint != before.fingerprint
    assert list(readable_lines(store, uri)) == [line.decode() for line in blanked(LINES, endings, {2, 5})]


def test_a_large_file_streams_through_in_chunks_and_no_line_moves(tmp_path, monkeypatch) -> None:
    lines = [b'{"n": %d, "email": "user%d@example.com"}' % (n, n) for n in range(80_000)]  # ~3.4 MB
    data = b"\r\n".join(lines) + b"\r\n"
    uri = write(tmp_path / "big.json", data)
    reads: list[int] = []
    local = LocalStorage(str(tmp_path))
    real_open = local.open

    class Recording:
        def __init__(self, file) -> None:
            self.file = file

        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            return self.file.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.close()

    monkeypatch.setattr(local, "open", lambda u: Recording(real_open(u)))
    doomed = {1, 40_000, 80_000}
    blank_lines(local, uri, doomed)
    assert len(reads) > 3 and all(0 < size <= codecs.CHUNK for size in reads)  # never the whole file at once
    after = list(split_lines([Path(uri).read_bytes()]))
    assert len(after) == len(lines)
    assert after == [(b"" if n in doomed else line, b"\r\n") for n, line in enumerate(lines, start=1)]


def test_a_failed_write_leaves_the_original_intact(tmp_path, monkeypatch) -> None:
    original = joined(LINES, ENDINGS["lf"])
    uri = write(tmp_path / "landing" / "part.json", original)
    os.chmod(uri, 0o640)
    store = LocalStorage(str(tmp_path))
    before = store.list_files(str(tmp_path / "landing"))

    def disk_full(source, target) -> None:
        target.write(source.read(5))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.shutil, "copyfileobj", disk_full)
    with pytest.raises(OSError, match="No space left"):
        blank_lines(store, uri, {2})
    assert Path(uri).read_bytes() == original
    assert store.list_files(str(tmp_path / "landing")) == before  # a half-written copy is never listed
    monkeypatch.undo()
    os.utime(uri, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))  # delivered long ago
    blank_lines(store, uri, {2})
    assert Path(uri).read_bytes() == joined(blanked(LINES, ENDINGS["lf"], {2}), ENDINGS["lf"])
    assert stat.S_IMODE(os.stat(uri).st_mode) == 0o640  # the rewrite keeps the file's permissions
    # and its modification time (its arrival to a rebuild of a copied lake), while the fingerprint changes
    assert os.stat(uri).st_mtime_ns == 1_600_000_000_123_456_789
    assert store.stat(uri).fingerprint not in {info.fingerprint for info in before}


def test_readable_lines_of_a_truncated_or_broken_gzip_keep_what_precedes_the_break(tmp_path) -> None:
    text = b"".join(b'{"email": "user%d@example.com"}\n' % n for n in range(5_000))
    whole = gzip.compress(text)
    store = LocalStorage(str(tmp_path))

    def read(path: Path, data: bytes) -> str:
        return "\n".join(readable_lines(store, write(path, data)))

    cut = read(tmp_path / "cut.json.gz.part", whole[: len(whole) // 2])
    assert 0 < len(cut) < len(text) and text.decode().startswith(cut)
    assert '"user0@example.com"' in cut and "user4999@" not in cut
    half = len(whole) // 2
    broken = whole[:half] + bytes(b ^ 0xFF for b in whole[half:])  # what the break yields may be garbage
    assert read(tmp_path / "broken.bin", broken).startswith(cut[:1_000])
    assert read(tmp_path / "plain.json", b"ann@example.com \xff\n") == "ann@example.com \ufffd"


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lambda data: data], ids=["gzip", "bzip2", "plain"])
def test_erasures_search_reads_any_file_in_bounded_memory(tmp_path, compress) -> None:
    """A file of one 48 MiB line (a few hundred kilobytes as gzip) with addresses at piece boundaries: every
    address is found, no line read is longer than a piece and its overlap, and memory stays a few pieces."""
    filler = b"x" * (blanking.PIECE - 7)
    data = b"".join(filler + b" ann%d@example.com " % n for n in range(48))
    path = tmp_path / f"bomb.json{'.gz' if compress is gzip.compress else ''}"
    path.write_bytes(compress(data))
    tracemalloc.start()
    try:
        found, longest = set(), 0
        for line in readable_lines(LocalStorage(str(tmp_path)), str(path)):
            longest = max(longest, len(line))
            found |= set(re.findall(r"ann\d+@example\.com", line))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == {f"ann{n}@example.com" for n in range(48)}
    assert longest <= blanking.PIECE + blanking.OVERLAP
    assert peak < 16 * blanking.PIECE, f"{peak / 2**20:.0f} MiB"
