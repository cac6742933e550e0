"""How a landing file is compressed, decided from its name the way Spark decides it, and read without Spark.

Spark's text source (Hadoop's codec factory) picks a codec by the file name's suffix, in any case: `part.GZ` is
gzip to Spark, `part.bz2` is bzip2 even when it holds plain text (then Spark reads no line). So the probe, the
erasure's search and the blanking decide the same way, here: gzip (every member of a concatenated file) is read;
the other codecs Spark would pick are refused before Spark reads anything (one quarantine row per file,
`unsupported_compression`); any other name is plain text.
"""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Iterator
from typing import Literal, Protocol


class Readable(Protocol):
    """All that decompressing needs of a stream: reading forward."""

    def read(self, size: int = -1, /) -> bytes: ...


CHUNK = 1 << 20
GZIP_SUFFIX = ".gz"
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
# The other codecs Spark's default codec factory picks by suffix (Hadoop 3: bzip2, deflate, zstd, lz4, snappy).
UNSUPPORTED = {".bz2": "bzip2", ".deflate": "deflate", ".zst": "zstd", ".lz4": "lz4", ".snappy": "snappy"}

Codec = Literal["gzip", "plain", "unsupported"]


def codec_of(name: str) -> Codec:
    """The codec Spark would read a file of this name with, as far as this project is concerned."""
    lower = name.lower()
    if lower.endswith(GZIP_SUFFIX):
        return "gzip"
    if lower.endswith(tuple(UNSUPPORTED)):
        return "unsupported"
    return "plain"


def unsupported_codec(name: str) -> str | None:
    """The codec's name for a file this project refuses ("bzip2", ...); None for gzip and plain files."""
    lower = name.lower()
    return next((codec for suffix, codec in UNSUPPORTED.items() if lower.endswith(suffix)), None)


def decompressed(stream: Readable, name: str, strict: bool = False) -> Iterator[bytes]:
    """The file's bytes as Spark would read them, a chunk at a time (memory stays bounded whatever its size or
    compression ratio). gzip: every member of a concatenated file. A file of another codec Spark would pick is
    decompressed where Python can (bzip2, deflate) so that erasure can still look inside it; zstd, lz4 and
    snappy yield nothing. A broken stream ends where it breaks, or, with `strict`, raises (zlib.error, EOFError,
    OSError)."""
    codec = codec_of(name)
    if codec == "plain":
        while chunk := stream.read(CHUNK):
            yield chunk
        return
    kind = "gzip" if codec == "gzip" else unsupported_codec(name)
    if kind not in ("gzip", "bzip2", "deflate"):
        return
    try:
        yield from _members(stream, kind)
    except (zlib.error, EOFError, OSError):
        if strict:
            raise


def contents(stream: Readable, name: str) -> Iterator[bytes]:
    """What a file holds, for erasure's search, whatever its name claims: gzip and bzip2 decompressed when their
    first bytes say so (a `.gz.part` upload too), deflate when its name and zlib header say so, and any other
    bytes as they are: plain text named `.GZ`, or a zstd, lz4 or snappy file, whose literal runs may hold text."""
    head = stream.read(4)
    whole = Prefixed(head, stream)
    if head.startswith(GZIP_MAGIC):
        return decompressed(whole, GZIP_SUFFIX)
    if head.startswith(BZIP2_MAGIC):
        return decompressed(whole, ".bz2")
    if unsupported_codec(name) == "deflate" and _zlib_header(head):
        return decompressed(whole, name)
    return decompressed(whole, "plain")


def _zlib_header(head: bytes) -> bool:
    """Whether the bytes start as a zlib stream does (method 8, header check a multiple of 31)."""
    return len(head) >= 2 and head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0


class Prefixed:
    """A read-only stream of `head`, then the rest of `stream` (whose first bytes were `head`)."""

    def __init__(self, head: bytes, stream: Readable) -> None:
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        data, self.head = (
            (self.head, b"") if size < 0 or size >= len(self.head) else (self.head[:size], self.head[size:])
        )
        wanted = -1 if size < 0 else size - len(data)
        return data + (self.stream.read(wanted) if wanted else b"")


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor:
    return bz2.BZ2Decompressor() if kind == "bzip2" else zlib.decompressobj(wbits=31 if kind == "gzip" else 15)


def _members(stream: Readable, kind: str) -> Iterator[bytes]:
    """Decompresses member after member (`cat a.gz b.gz` is one gzip file of two members, and Spark reads both),
    at most CHUNK bytes at a time however well the input compresses; raises EOFError when the last member is
    cut short."""
    inflater = _decompressor(kind)
    pending = b""
    while True:
        data = pending or stream.read(CHUNK)
        pending = b""
        if not data:
            if not inflater.eof:
                raise EOFError(f"the {kind} stream ends before its end marker")
            return
        yield from _inflated(inflater, data)
        if inflater.eof:
            pending = inflater.unused_data
            if not pending and not (pending := stream.read(CHUNK)):
                return
            inflater = _decompressor(kind)


def _inflated(inflater: zlib._Decompress | bz2.BZ2Decompressor, data: bytes) -> Iterator[bytes]:
    """What `data` decompresses to, in pieces of at most CHUNK bytes: a small input may inflate a thousandfold."""
    if isinstance(inflater, bz2.BZ2Decompressor):
        yield inflater.decompress(data, CHUNK)
        while not inflater.eof and not inflater.needs_input:
            yield inflater.decompress(b"", CHUNK)
        return
    yield inflater.decompress(data, CHUNK)
    while inflater.unconsumed_tail and not inflater.eof:
        yield inflater.decompress(inflater.unconsumed_tail, CHUNK)
