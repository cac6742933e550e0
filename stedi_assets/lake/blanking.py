"""Rewriting a landing file with some of its lines blanked: how erasure removes a customer's raw lines.

A blanked line keeps its terminator, so every other line keeps its number (quarantine rows and lineage stay
true), and a reread of the file finds a blank line (filtered) where the customer was. Lines are split as
Hadoop's line reader splits them (LF, CRLF or a lone CR), streaming, so a file of any size needs a chunk of
memory; a .gz file is written back as gzip. The new file replaces the old one atomically (a local rename, or
one S3 PUT).
"""

from __future__ import annotations

import gzip
import tempfile
import zlib
from collections.abc import Iterable, Iterator

from stedi_assets.lake.storage import FileInfo, ReadStream, Storage

CHUNK = 1 << 20


def split_lines(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(line, terminator) pairs of a byte stream, as Hadoop's LineRecordReader splits it; a last line without a
    terminator has b"" as its terminator, and a final terminator does not start another line."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        start = 0
        index = 0
        while index < len(data):
            byte = data[index]
            if byte == 0x0A:  # LF
                yield data[start:index], b"\n"
                start = index = index + 1
            elif byte == 0x0D:  # CR, or CRLF: needs the next byte, which may be in the next chunk
                if index + 1 == len(data):
                    break
                terminator = b"\r\n" if data[index + 1] == 0x0A else b"\r"
                yield data[start:index], terminator
                start = index = index + len(terminator)
            else:
                index += 1
        pending = data[start:]
    if pending == b"\r":
        yield b"", b"\r"
    elif pending:
        yield pending, b""


def _chunks(stream: ReadStream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def blank_lines(storage: Storage, uri: str, numbers: set[int]) -> FileInfo:
    """Rewrites the file with the given (1-based) lines emptied; returns the new file's listing."""
    compressed = uri.endswith(".gz")
    with tempfile.TemporaryFile() as rewritten:
        sink = gzip.GzipFile(fileobj=rewritten, mode="wb") if compressed else rewritten
        with storage.open(uri) as raw:
            source = gzip.GzipFile(fileobj=raw) if compressed else raw
            for number, (line, terminator) in enumerate(split_lines(_chunks(source)), start=1):
                sink.write(terminator if number in numbers else line + terminator)
        if compressed:
            sink.close()
        rewritten.seek(0)
        storage.replace(uri, rewritten)
    info = storage.stat(uri)
    assert info is not None, f"{uri} vanished while it was rewritten"
    return info


def readable_text(storage: Storage, uri: str) -> str:
    """As much of a file as can be read, as text: a broken .gz decompressed up to where it breaks, a file that
    is not gzip at all taken as it is. For files the pipeline cannot read (erasure still looks inside them)."""
    with storage.open(uri) as raw:
        data = raw.read()
    if data[:2] != b"\x1f\x8b":
        return data.decode("utf-8", errors="replace")
    inflater, parts = zlib.decompressobj(wbits=31), []
    for start in range(0, len(data), 4096):  # a little at a time: what precedes a break is kept
        try:
            parts.append(inflater.decompress(data[start : start + 4096]))
        except zlib.error:
            break
    return b"".join(parts).decode("utf-8", errors="replace")
