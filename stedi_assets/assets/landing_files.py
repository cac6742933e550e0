"""Landing files: read line by line with exact line numbers, probed before the read, fingerprinted around it.

Reading. `read_lines` reads a batch of files with Spark's text source, given each file's own path (a name
Spark cannot be given is quarantined by the probe instead, see `name_fault`). The source splits a file across
tasks (an uncompressed file at `spark.sql.files.maxPartitionBytes`; a .gz file is one task), so no file is ever
held whole in memory. Line numbers stay exact: `monotonically_increasing_id()` is contiguous and in order
within a task, and a task reads each of its splits in order, so a line's number is its offset from the
first id of its split plus the lines of the file's earlier splits (a small aggregate per file and split
start, `_metadata.file_block_start`, with a running sum). That costs a second scan of the files, but no
shuffle of the lines and no state beyond one row per split.

A line is what Hadoop's line reader returns: lines end at LF, CRLF or a lone CR, the terminator is not part
of the line, a final terminator does not start another line (so "a\\n\\n" is two lines, "a" and ""), and a
last line without one counts. Line numbers are 1-based and count every line, blank ones included: for LF
or CRLF files, the number `sed -n 'Np'` (or `zcat | sed -n 'Np'`) shows.

Faults. A file Spark cannot read at all would fail the whole job (a truncated or fake .gz), and Spark's
`ignoreCorruptFiles` would silently keep the part read before the fault. So `probe_files` tries each file
first, without Spark (open it, which refuses a link, FIFO, socket or device unread; for .gz, check the magic
bytes and decompress it to the end as a stream), and `changed_files` compares each file's fingerprint (size
and modification time, or size and ETag) taken at listing with one taken after the read: a file still being
uploaded, rewritten or deleted meanwhile is quarantined whole instead of being half read. Both take plain
callables (`FileAccess`), so the same code serves a local folder and S3 and is tested with faults that root
cannot make (permissions).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol
from urllib.parse import unquote

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.lake.codecs import GZIP_MAGIC, Prefixed, codec_of, unsupported_codec
from stedi_assets.lake.names import readable_name
from stedi_assets.lake.storage import NotAFileError, ReadStream, SymlinkError, hidden
from stedi_assets.transforms.parsing import LINES_SCHEMA, RAW, FileFault

CHUNK = 1 << 20
_GLOB_CHARS = "\\{}[]*?"
# Landing files are read as they are. Hadoop's default local file system checks a file against a `.name.crc`
# beside it (a stale one, copied from Hadoop or left by a rewrite, fails the read) and opens that companion by a
# path built from the name (`.a:b.json.crc`: the colon reads as a URI scheme). Its raw file system reads the file
# alone; not cached, since the cached one is the checksummed one.
RAW_LOCAL_FILES = {"fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem", "fs.file.impl.disable.cache": "true"}

# Spark lists more than 32 given paths with a job of one task per path: 3,000 local files took 24 s to list that
# way and 0.3 s on the driver. (S3 paths keep the job: each is a request, which a cluster's tasks share out.)
SERIAL_LISTING = {"spark.sql.sources.parallelPartitionDiscovery.threshold": str(1 << 30)}


@contextmanager
def _session_conf(session: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Session settings for the duration of a block, then as they were."""
    previous = {key: session.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        session.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in previous.items():
            if before is None:
                session.conf.unset(key)
            else:
                session.conf.set(key, before)


class FilesNotListedError(RuntimeError):
    """Files of the batch that Spark's listing did not find (they vanished since they were probed)."""

    def __init__(self, uris: list[str]) -> None:
        super().__init__(f"{len(uris)} landing file(s) not found by Spark's listing: {', '.join(uris[:5])}")
        self.uris = uris


class FileAccess(Protocol):
    """What the probe and the change check need of a storage: open a file for reading, and fingerprint it."""

    def open(self, uri: str) -> ReadStream: ...

    def fingerprint(self, uri: str) -> str | None:
        """Size and modification time (or ETag), as the listing spells it; None when the file is gone."""
        ...


# ---------------------------------------------------------------------------------------------- reading


def _is_uri(path: str) -> bool:
    return "://" in path or path.startswith("file:")


def _local_path(uri: str) -> str:
    """The absolute local path of a plain path or a file: URI."""
    if uri.startswith("file:"):
        uri = "/" + uri.removeprefix("file:").lstrip("/")
    return os.path.abspath(uri)


def spark_file_key(uri: str) -> str:
    """A file's URI as Spark's `_metadata.file_path` names it, percent-decoded: file:/abs/path or s3a://..."""
    return uri if _is_uri(uri) and not uri.startswith("file:") else "file:" + _local_path(uri)


def _listed_key(listed: str) -> str:
    """A path from Spark's listing (`inputFiles`, percent-encoded, file:/// or file:/) as `spark_file_key`."""
    decoded = unquote(listed)
    return "file:/" + decoded.removeprefix("file:").lstrip("/") if decoded.startswith("file:") else decoded


def _decoded_file_path() -> F.Column:
    # _metadata.file_path is percent-encoded (a space is %20, a literal + stays +): url_decode would read
    # + as a space, so it is escaped first.
    return F.url_decode(F.replace(F.col("_metadata.file_path"), F.lit("+"), F.lit("%2B")))


def _escape_glob(path: str) -> str:
    """Spark reads a path as a Hadoop glob: a file named a[1] must be written a\\[1\\]."""
    return "".join("\\" + c if c in _GLOB_CHARS else c for c in path)


def _is_s3(uri: str) -> bool:
    return _is_uri(uri) and not uri.startswith("file:")


def name_fault(uri: str) -> FileFault | None:
    """Why Spark cannot read the object by this name (a local path or s3a:// URI, as Spark is given it), or None.

    Spark is given each file's own path, glob characters escaped: that reads names with colons, spaces, `%`,
    `#`, glob characters, control characters and any Unicode. It cannot read a path with both a colon and a glob
    character (Hadoop then parses each folder of the path on its own, and `c:d` is a URI scheme), an S3 key with
    an empty folder name (Hadoop's paths collapse `a//b` to `a/b`, another key), or a name that is not UTF-8 (the
    JVM cannot be given it). An S3 key ending in / is a folder marker, no file."""
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        shown = readable_name(uri.rsplit("/", 1)[-1])
        return FileFault(reasons.UNSUPPORTED_NAME, f"its name ({shown}) is not UTF-8: Spark cannot be given it")
    path = uri.split("://", 1)[1] if _is_s3(uri) else _local_path(uri)  # as Spark is given it
    if _is_s3(uri) and uri.endswith("/"):
        return FileFault(reasons.NOT_A_FILE, "a folder marker (its key ends with /) that holds bytes: no file")
    if _is_s3(uri) and "//" in path:
        return FileFault(reasons.UNSUPPORTED_NAME, "an empty folder name (//): Hadoop's paths cannot name it")
    if ":" in path and any(c in _GLOB_CHARS for c in path):
        return FileFault(
            reasons.UNSUPPORTED_NAME, "a colon and a glob character in its path: Hadoop takes the colon for a scheme"
        )
    return None


def _check_readable_name(uri: str) -> None:
    if (fault := name_fault(uri)) is not None:
        raise ValueError(f"{uri}: {fault.detail}")
    # Given a file's own path, Spark still skips it by its name (its folders' names do not matter then).
    if hidden(uri.rsplit("/", 1)[-1]):
        raise ValueError(f"{uri}: Spark skips files named with a leading _ or . (or ending ._COPYING_)")


def read_lines(session: SparkSession, files: Mapping[str, int]) -> DataFrame:
    """Every line of `files` (URI as Spark reads it: a local path or s3a:// -> arrival, epoch ms), as
    `LINES_SCHEMA`: source_file (the URI as given), line_number (1-based), arrived_at, raw.

    Spark is given exactly these files, each by its own path (never their folder: a `_spark_metadata` folder
    there would make Spark read its log instead, and one name Hadoop cannot parse would fail the listing of every
    file). A file that vanishes after this call is skipped (`ignoreMissingFiles`) instead of failing the job:
    `changed_files` then quarantines it. Raises FilesNotListedError, naming them, when files of the batch are
    gone before Spark lists them (deleted since they were probed); call again without them. Raises ValueError
    for a name `name_fault` refuses or Spark skips (probe the batch first).
    """
    if not files:
        return session.createDataFrame([], LINES_SCHEMA)
    keys = {spark_file_key(uri): uri for uri in files}
    if len(keys) != len(files):
        raise ValueError("two URIs of the batch name the same file")
    for uri in files:
        _check_readable_name(uri)
    try:
        # Local paths absolute: the JVM's working folder need not be this process's.
        paths = [_escape_glob(uri if _is_s3(uri) else _local_path(uri)) for uri in files]
        local = not any(_is_s3(uri) for uri in files)
        with _session_conf(session, SERIAL_LISTING if local else {}):  # Spark lists the paths as it is given them
            # Local files only: on a read of S3 files, the raw local file system would reach s3a's disk buffer of
            # the write that follows, which needs the checksummed one (a ClassCastException on a first write).
            raw = RAW_LOCAL_FILES if local else {}
            text = session.read.options(ignoreMissingFiles="true", **raw).text(paths)
    except AnalysisException as error:
        # Spark checks that each path exists, and names the first it misses (as spark_file_key spells it).
        named = (error.getMessageParameters() or {}).get("path", "") if error.getCondition() == "PATH_NOT_FOUND" else ""
        if (gone := keys.get(named)) is None:
            raise
        raise FilesNotListedError([gone]) from None
    listed = {_listed_key(path) for path in text.inputFiles()}
    missing = sorted(uri for key, uri in keys.items() if key not in listed)
    if missing:
        raise FilesNotListedError(missing)

    lines = text.select(
        _decoded_file_path().alias("_key"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_id"),
        F.col("value").alias(RAW),
    )
    batch = session.createDataFrame(
        [(key, uri, int(files[uri])) for key, uri in keys.items()], "_key string, source_file string, arrived_at long"
    )
    splits = (
        lines.groupBy("_key", "_block")
        .agg(F.min("_id").alias("_first"), F.count(F.lit(1)).alias("_lines"))
        .withColumn("_before", F.sum("_lines").over(Window.partitionBy("_key").orderBy("_block")) - F.col("_lines"))
        .join(batch, "_key")
    )
    return lines.join(F.broadcast(splits), ["_key", "_block"]).select(
        F.col("source_file"),
        (F.col("_id") - F.col("_first") + F.col("_before") + 1).alias("line_number"),
        F.col("arrived_at"),
        F.col(RAW),
    )


# ---------------------------------------------------------------------------------------------- faults


def _gzip_fault(stream: ReadStream) -> str | None:
    """What is wrong with a gzip stream, decompressed to its end a chunk at a time (memory stays bounded,
    whatever the ratio); None when every member is whole."""
    head = stream.read(len(GZIP_MAGIC))
    if head != GZIP_MAGIC:
        return "not gzip: the file does not start with gzip's magic bytes"
    try:
        # typeshed asks fileobj for seek(), which GzipFile calls only to rewind: a forward read never does.
        with gzip.GzipFile(fileobj=Prefixed(head, stream)) as unzipped:  # type: ignore[call-overload]
            while unzipped.read(CHUNK):
                pass
    except EOFError:
        return "truncated gzip: the compressed stream ends before its end marker"
    except (OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError: a bad header, CRC or length
        return f"corrupt gzip: {error}"
    return None


def probe_file(uri: str, open_file: Callable[[str], ReadStream]) -> FileFault | None:
    """Whether Spark will be able to read the file: Spark can be given its name (`name_fault`), it is not
    compressed with a codec this project refuses, it opens as a regular file (a symbolic link, FIFO, socket or
    device is refused by the storage's `open` without being read), and a gzip file (by its name, in any case:
    Spark's rule) decompresses to its end, every member. The name is judged first: it needs no access."""
    if (fault := name_fault(uri)) is not None:
        return fault
    if (codec := unsupported_codec(uri)) is not None:
        return FileFault(
            reasons.UNSUPPORTED_COMPRESSION, f"{codec} by its name: only gzip (.gz) and plain text are read"
        )
    try:
        with open_file(uri) as stream:
            if codec_of(uri) == "plain":
                stream.read(1)
                return None
            problem = _gzip_fault(stream)
    except FileNotFoundError:
        return FileFault(reasons.UNREADABLE_FILE, "not found: it vanished after it was listed")
    except SymlinkError:
        return FileFault(reasons.SYMLINK, "a symbolic link: links are not followed")
    except NotAFileError as error:
        return FileFault(reasons.NOT_A_FILE, f"{error.description}: no file")
    except PermissionError as error:
        return FileFault(reasons.UNREADABLE_FILE, f"permission denied: {error.strerror or error}")
    except OSError as error:
        return FileFault(reasons.UNREADABLE_FILE, f"cannot be read: {type(error).__name__}: {error}")
    return FileFault(reasons.CORRUPT_FILE, problem) if problem else None


def probe_files(uris: Iterable[str], open_file: Callable[[str], ReadStream]) -> dict[str, FileFault]:
    """The files of a batch that Spark could not read, with the reason: probe them before the read."""
    return {uri: fault for uri in uris if (fault := probe_file(uri, open_file)) is not None}


def read_batch(
    session: SparkSession, files: Mapping[str, int], access: FileAccess
) -> tuple[DataFrame, dict[str, FileFault]]:
    """Probes a batch (URI -> arrival ms), then reads the files that passed: (lines, faults by URI).

    A file that vanishes between the probe and Spark's listing is a fault too. After an action has read the
    lines, add `changed_files(listing's fingerprints, access.fingerprint)` to the faults, and give them to
    `with_file_faults` with the parse.
    """
    faults = probe_files(files, access.open)
    while True:
        readable = {uri: arrival for uri, arrival in files.items() if uri not in faults}
        try:
            return read_lines(session, readable), faults
        except FilesNotListedError as gone:  # each round quarantines at least one more file: it ends
            faults |= {
                uri: FileFault(reasons.UNREADABLE_FILE, "not found: it vanished after it was listed")
                for uri in gone.uris
            }


def changed_files(listed: Mapping[str, str], fingerprint: Callable[[str], str | None]) -> dict[str, FileFault]:
    """The files whose fingerprint now differs from the one taken at listing: call after the read."""
    faults = {}
    for uri, before in listed.items():
        now = fingerprint(uri)
        if now != before:
            what = "it was deleted" if now is None else f"fingerprint {before} became {now}"
            faults[uri] = FileFault(reasons.CHANGED_FILE, f"changed while it was read: {what}")
    return faults
