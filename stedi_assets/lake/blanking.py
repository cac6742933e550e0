"""Rewriting a landing file with some of its lines blanked: how erasure removes a customer's raw lines.

A blanked line keeps its terminator, so every other line keeps its number (quarantine rows and lineage stay
true), and a reread of the file finds a blank line (filtered) where the customer was. Lines are split as
Hadoop's line reader splits them (LF, CRLF or a lone CR), streaming, so a file of any size needs a chunk of
memory; a .gz file is written back as gzip. The new file replaces the old one atomically (a local rename, or
one S3 PUT).
"""

from __future__ import annotations

import gzip
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator

from stedi_assets.lake.storage import FileInfo, ReadStream, Storage, SymlinkError

CHUNK = 1 << 20
TERMINATOR = re.compile(rb"\r\n|\r|\n")


def split_lines(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(line, terminator) pairs of a byte stream, as Hadoop's LineRecordReader splits it; a last line without a
    terminator has b"" as its terminator, and a final terminator does not start another line."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        start = 0
        # Only the new bytes are searched (and a CR left at the end of the last chunk, which its next byte decides).
        for match in TERMINATOR.finditer(data, max(0, len(pending) - 1)):
            if match.group() == b"\r" and match.end() == len(data):
                break  # CR, or the first half of a CRLF: the next chunk says
            yield data[start : match.start()], match.group()
            start = match.end()
        pending = data[start:]
    if pending.endswith(b"\r"):
        yield pending[:-1], b"\r"
    elif pending:
        yield pending, b""


def _chunks(stream: ReadStream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def blanked(previous: bytes, terminator: bytes) -> bytes:
    """A blank line in place of one: its terminator alone, or a space and its terminator where the terminator
    alone would not make a line of its own (an LF after a lone CR joins it as CRLF; a last line without a
    terminator would vanish). A space is a blank line to the parser, as an empty line is."""
    if (previous == b"\r" and terminator.startswith(b"\n")) or not terminator:
        return b" " + terminator
    return terminator


def blank_lines(storage: Storage, uri: str, numbers: set[int]) -> FileInfo:
    """Rewrites the file with the given (1-based) lines emptied; returns the new file's listing."""
    compressed = uri.endswith(".gz")
    with tempfile.TemporaryFile() as rewritten:
        sink = gzip.GzipFile(fileobj=rewritten, mode="wb") if compressed else rewritten
        with storage.open(uri) as raw:
            source = gzip.GzipFile(fileobj=raw) if compressed else raw
            previous = b""
            for number, (line, terminator) in enumerate(split_lines(_chunks(source)), start=1):
                sink.write(blanked(previous, terminator) if number in numbers else line + terminator)
                previous = terminator
        if compressed:
            sink.close()
        rewritten.seek(0)
        storage.replace(uri, rewritten)
    info = storage.stat(uri)
    assert info is not None, f"{uri} vanished while it was rewritten"
    return info


def readable_text(storage: Storage, uri: str) -> str:
    """As much of a file as can be read, as text: a broken .gz decompressed up to where it breaks, a file that
    is not gzip at all taken as it is. For files the pipeline cannot read (erasure still looks inside them); a
    symbolic link holds no text of its own (its target is never read)."""
    try:
        with storage.open(uri) as raw:
            data = raw.read()
    except SymlinkError:
        return ""
    if data[:2] != b"\x1f\x8b":
        return data.decode("utf-8", errors="replace")
    inflater, parts = zlib.decompressobj(wbits=31), []
    for start in range(0, len(data), 4096):  # a little at a time: what precedes a break is kept
        try:
            parts.append(inflater.decompress(data[start : start + 4096]))
        except zlib.error:
            break
    return b"".join(parts).decode("utf-8", errors="replace")
