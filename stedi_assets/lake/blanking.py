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
from itertools import zip_longest
from typing import IO

from stedi_assets.lake.codecs import Readable, codec_of, contents, decompressed
from stedi_assets.lake.storage import FileInfo, NotAFileError, Storage, SymlinkError

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


def blanked(previous: bytes, terminator: bytes) -> bytes:
    """A blank line in place of one: its terminator alone, or a space and its terminator where the terminator
    alone would not make a line of its own (an LF after a lone CR joins it as CRLF; a last line without a
    terminator would vanish). A space is a blank line to the parser, as an empty line is."""
    if (previous == b"\r" and terminator.startswith(b"\n")) or not terminator:
        return b" " + terminator
    return terminator


class BlankingError(RuntimeError):
    """A rewrite that would not keep every other line as it was: the original file is left untouched."""


def blank_lines(storage: Storage, uri: str, numbers: set[int]) -> FileInfo:
    """Rewrites the file with the given (1-based) lines emptied; returns the new file's listing.

    The rewrite is read back (decompressed) and compared with the original, line by line, before it replaces it:
    every other line byte for byte, the same number of lines. A file of a codec this project does not read has
    no lines it read, and is never rewritten."""
    if codec_of(uri) == "unsupported":
        raise BlankingError(f"{uri}: compressed with a codec this project does not read; not rewritten")
    compressed = codec_of(uri) == "gzip"
    with tempfile.TemporaryFile() as rewritten:
        sink = gzip.GzipFile(fileobj=rewritten, mode="wb") if compressed else rewritten
        with storage.open(uri) as raw:
            previous = b""
            for number, (line, terminator) in enumerate(_strict_lines(raw, uri), start=1):
                sink.write(blanked(previous, terminator) if number in numbers else line + terminator)
                previous = terminator
        if compressed:
            sink.close()
        rewritten.seek(0)
        _verify(storage, uri, rewritten, numbers)
        rewritten.seek(0)
        storage.replace(uri, rewritten)
    info = storage.stat(uri)
    assert info is not None, f"{uri} vanished while it was rewritten"
    return info


def _strict_lines(stream: Readable, uri: str) -> Iterator[tuple[bytes, bytes]]:
    """The file's (line, terminator) pairs; a compressed stream that breaks is a BlankingError, as every other
    reason not to rewrite a file is (callers tell a file they must leave from an I/O error by that alone)."""
    try:
        yield from split_lines(decompressed(stream, uri, strict=True))
    except (zlib.error, EOFError) as error:
        raise BlankingError(f"{uri}: its compressed stream breaks ({type(error).__name__}); not rewritten") from None


def _verify(storage: Storage, uri: str, rewritten: IO[bytes], numbers: set[int]) -> None:
    """Fails (BlankingError) unless the rewrite holds the original's lines, the given ones blank."""
    with storage.open(uri) as raw:
        before = _strict_lines(raw, uri)
        after = _strict_lines(rewritten, uri)
        for number, pair in enumerate(zip_longest(before, after), start=1):
            old, new = pair
            if old is None or new is None:
                raise BlankingError(
                    f"{uri}: the rewrite has another number of lines (from line {number}); not replaced"
                )
            if new != old and not (number in numbers and not new[0].strip(b" ") and new[1] == old[1]):
                raise BlankingError(f"{uri}: line {number} would change; not replaced")


# A line longer than this is searched in overlapping pieces: memory stays bounded whatever a file holds. The
# overlap is longer than any e-mail address, JSON-escaped six bytes a character (254 characters at most).
PIECE = 1 << 20
OVERLAP = 8 << 10


def readable_lines(storage: Storage, uri: str) -> Iterator[str]:
    """As much of a file as can be read, as lines of text, decompressed by what its bytes are rather than what its
    name says (every gzip member; bzip2 and deflate too, which the landing probe refuses; plain text named .gz as
    it is), up to where a broken stream breaks; streamed, a line longer than PIECE bytes in overlapping pieces.
    For files the pipeline cannot read (erasure still looks inside them). A symbolic link holds no text of its
    own (its target is never read), nor does a FIFO, socket or device (never opened for reading): nothing to
    search, rather than a file left unsearched (and pending) for ever."""
    try:
        with storage.open(uri) as raw:
            for line, _ in split_lines(_bounded(contents(raw, uri))):
                yield line.decode("utf-8", errors="replace")
    except (SymlinkError, NotAFileError):
        return


def _bounded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, with a line terminator put in wherever PIECE bytes pass without one, and the last OVERLAP
    bytes before it repeated after it: no line split_lines makes is longer than PIECE + OVERLAP, and no text
    shorter than OVERLAP is cut in two without also appearing whole."""
    run = 0  # bytes since the last terminator
    tail = b""
    for chunk in chunks:
        start = 0
        while start < len(chunk):
            piece = chunk[start : start + PIECE - run]
            ends = [piece.rfind(b"\n"), piece.rfind(b"\r")]
            last = max(ends)
            yield piece
            start += len(piece)
            if last >= 0:
                run = len(piece) - last - 1
                tail = piece[last + 1 :][-OVERLAP:]
            else:
                run += len(piece)
                tail = (tail + piece)[-OVERLAP:]
            if run >= PIECE:
                yield b"\n" + tail
                run = len(tail)
