"""The one place where local files and S3 differ: listing, reading, writing and deleting files under a root.

The lake, the sensor, the SQL command and the catalog all go through `storage_for(root)`; nothing else asks
whether a path is on S3. No Dagster and no Spark here, so the sensor and the SQL command stay light.
Credentials are never arguments: boto3 (and s3a, and delta-rs) read them from the standard AWS environment.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class LakeRootError(RuntimeError):
    """The lake root is missing or unreadable."""


class SymlinkError(OSError):
    """A symbolic link where a file was expected: the lake never follows one (it could point anywhere)."""


class NotAFileError(OSError):
    """A named pipe (FIFO), a socket, a device or a folder where a file was expected: the lake never reads one (a
    FIFO blocks its reader until a writer comes, a device such as /dev/zero never ends)."""

    def __init__(self, description: str, uri: str) -> None:
        super().__init__(f"{uri}: {description}, not a regular file")
        self.description = description


def _file_type(mode: int) -> str:
    """What an object that is not a regular file is, by its `st_mode`, in words for a quarantine row."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return f"an object of file type {stat.S_IFMT(mode):#o}"


@dataclass(frozen=True)
class FileInfo:
    """A file as listed: its URI as the lake spells it, size, modification time and (on S3) ETag."""

    uri: str
    size: int
    modified_ms: int
    # What changes when the file is rewritten: the ETag on S3; locally the modification time, inode and change time.
    version: str

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.version}"


# What `hadoop fs -put` and `-cp` name a file while they copy it; Spark skips it, as it skips `_x` and `.x`.
COPYING_SUFFIX = "._COPYING_"


def hidden(name: str) -> bool:
    """Names the lake skips, in a file's name or any folder's: staging files (`.x`, `_x`, `x._COPYING_`) and
    markers (`_SUCCESS`, `_spark_metadata`). Spark skips each of them too (it reads `_metadata*` and `_a=b`
    names, which the lake skips all the same)."""
    return name.startswith(("_", ".")) or name.endswith(COPYING_SUFFIX)


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


class ReadStream(Protocol):
    """A file opened for reading: a local file, or an S3 object's body (botocore's StreamingBody, which cannot
    seek: its seek raises io.UnsupportedOperation)."""

    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None, /
    ) -> object: ...


class Storage(Protocol):
    root: str

    def check_root(self) -> None: ...
    def list_files(self, folder: str) -> list[FileInfo]: ...
    def exists(self, folder: str) -> bool: ...
    def stat(self, uri: str) -> FileInfo | None: ...
    def open(self, uri: str) -> ReadStream: ...
    def read_bytes(self, uri: str) -> bytes: ...
    def read_tail(self, uri: str, length: int) -> bytes: ...
    def write_bytes(self, uri: str, data: bytes) -> None: ...
    def replace(self, uri: str, stream: IO[bytes]) -> None: ...
    def fingerprint(self, uri: str) -> str | None: ...
    def delete(self, uri: str) -> None: ...
    def spark_uri(self, uri: str) -> str: ...
    def delta_options(self) -> dict[str, str]: ...


class LocalStorage:
    def __init__(self, root: str) -> None:
        self.root = root

    def check_root(self) -> None:
        if not Path(self.root).is_dir():
            raise LakeRootError(f"lake root {self.root} does not exist or is not a directory (STEDI_LAKE_ROOT)")

    def list_files(self, folder: str) -> list[FileInfo]:
        # One scandir per folder and one stat per file (a sensor tick lists every landing file); hidden folders
        # are not entered. Paths are spelled as pathlib spells them (ledger keys depend on it). Everything that is
        # not a folder is listed, so that the landing probe quarantines what is no file rather than lose it: a
        # symbolic link is listed as itself and never entered or followed (a link loop cannot stop the listing,
        # and a link cannot bring a file from outside the lake in); a FIFO, socket or device is listed by a stat
        # that does not open it. `open` refuses them all.
        base = str(Path(folder))
        pending = [base] if os.path.isdir(base) else []
        found = []
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except FileNotFoundError:  # deleted since its parent was listed
                continue
            for entry in entries:
                if hidden(entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif (info := self.stat(entry.path)) is not None:  # None: deleted meanwhile
                    found.append(info)
        return sorted(found, key=lambda f: f.uri)

    def exists(self, folder: str) -> bool:
        return Path(folder).is_dir()

    def stat(self, uri: str) -> FileInfo | None:
        try:
            st = os.stat(uri, follow_symlinks=False)  # a link's own, not its target's
        except FileNotFoundError:
            return None
        # The modification time can be put back (`cp -p`, `rsync -t`, a restore); the inode and the change time
        # cannot: a file rewritten in place at the same size with its old time is still another version.
        return FileInfo(uri, st.st_size, st.st_mtime_ns // 1_000_000, f"{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}")

    def open(self, uri: str) -> IO[bytes]:
        """The regular file for reading. A symbolic link is refused (SymlinkError), whatever it points at, and so
        is every other object that is no regular file (NotAFileError: a FIFO, a socket, a device), without
        blocking and without reading it."""
        # Refused by its lstat first, so that such an object is not even opened (opening a device can act on it).
        _refuse_unless_regular(os.lstat(uri).st_mode, uri)
        try:
            # Non-blocking: it may have been replaced since the lstat, and opening a FIFO with no writer blocks.
            descriptor = os.open(uri, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ELOOP and os.path.islink(uri):
                raise _link_refused(uri) from None
            raise
        try:
            _refuse_unless_regular(os.fstat(descriptor).st_mode, uri)  # what was opened, whatever the lstat saw
            os.set_blocking(descriptor, True)
        except OSError:
            os.close(descriptor)
            raise
        return os.fdopen(descriptor, "rb")

    def read_bytes(self, uri: str) -> bytes:
        with self.open(uri) as file:
            return file.read()

    def read_tail(self, uri: str, length: int) -> bytes:
        with self.open(uri) as file:
            file.seek(-length, os.SEEK_END)
            return file.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Atomic: written beside the target under a hidden name, then renamed over it."""
        target = Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        staged.write_bytes(data)
        os.replace(staged, target)

    def replace(self, uri: str, stream: IO[bytes]) -> None:
        """Atomic, keeping the file's permissions and modification time (its arrival, should the lake be copied
        and rebuilt): written beside it under a hidden name, then renamed over it."""
        target = Path(uri)
        staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        with staged.open("wb") as out:
            shutil.copyfileobj(stream, out)
        shutil.copystat(target, staged)
        os.replace(staged, target)

    def fingerprint(self, uri: str) -> str | None:
        info = self.stat(uri)
        return None if info is None else info.fingerprint

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(uri)

    def spark_uri(self, uri: str) -> str:
        return uri

    def delta_options(self) -> dict[str, str]:
        return {}


def _link_refused(uri: str) -> SymlinkError:
    return SymlinkError(errno.ELOOP, "a symbolic link: the lake does not follow links", uri)


def _refuse_unless_regular(mode: int, uri: str) -> None:
    if stat.S_ISLNK(mode):
        raise _link_refused(uri)
    if not stat.S_ISREG(mode):
        raise NotAFileError(_file_type(mode), uri)


def split_s3(uri: str) -> tuple[str, str]:
    """A folder: s3://bucket/some/prefix/ -> ("bucket", "some/prefix")."""
    bucket, key = object_key(uri)
    return bucket, key.strip("/")


def object_key(uri: str) -> tuple[str, str]:
    """An object: s3://bucket/a//b/ -> ("bucket", "a//b/"), its key exactly (a folder marker ends with /)."""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


class S3Storage:
    """An s3://bucket/prefix root through boto3, configured from the standard AWS environment."""

    def __init__(self, root: str) -> None:
        self.root = "s3://" + root.split("://", 1)[1]

    @cached_property
    def client(self) -> S3Client:
        import boto3

        return boto3.client("s3")

    def check_root(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=split_s3(self.root)[0])
        except (BotoCoreError, ClientError) as error:
            raise LakeRootError(f"lake root {self.root} is not readable (STEDI_LAKE_ROOT): {error}") from None

    def list_files(self, folder: str) -> list[FileInfo]:
        bucket, prefix = split_s3(folder)
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                # A key ending in / is a folder marker (consoles make them, empty): skipped when empty, listed when
                # it holds bytes, which the landing probe then quarantines rather than lose. An empty folder name
                # (`a//b`) is listed, and refused there by name.
                marker = key.endswith("/")
                if marker and obj["Size"] == 0:
                    continue
                relative = key[len(prefix) + 1 :].removesuffix("/") if marker else key[len(prefix) + 1 :]
                if not any(hidden(part) for part in relative.split("/")):
                    found.append(self._info(bucket, key, obj["Size"], obj["LastModified"], obj["ETag"]))
        return sorted(found, key=lambda f: f.uri)

    @staticmethod
    def _info(bucket: str, key: str, size: int, modified: datetime, etag: str) -> FileInfo:
        return FileInfo(f"s3://{bucket}/{key}", size, int(modified.timestamp() * 1000), etag.strip('"'))

    def exists(self, folder: str) -> bool:
        bucket, prefix = split_s3(folder)
        return self.client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1).get("KeyCount", 0) > 0

    def stat(self, uri: str) -> FileInfo | None:
        bucket, key = object_key(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError:
            return None
        return self._info(bucket, key, head["ContentLength"], head["LastModified"], head["ETag"])

    def open(self, uri: str) -> ReadStream:
        """The object's body, with S3's errors as the OSErrors a local file gives."""
        from botocore.exceptions import ClientError

        bucket, key = object_key(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise FileNotFoundError(uri) from error
            if code in ("AccessDenied", "403"):
                raise PermissionError(13, "access denied", uri) from error
            raise OSError(f"{code}: {error}") from error

    def read_bytes(self, uri: str) -> bytes:
        with contextlib.closing(self.open(uri)) as body:
            return body.read()

    def read_tail(self, uri: str, length: int) -> bytes:
        bucket, key = object_key(uri)
        with contextlib.closing(self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{length}")["Body"]) as b:
            return b.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Atomic by S3's own rule: an object appears whole or not at all."""
        bucket, key = object_key(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def replace(self, uri: str, stream: IO[bytes]) -> None:
        """One PUT: readers see the old object or the new one."""
        bucket, key = object_key(uri)
        self.client.upload_fileobj(stream, bucket, key)

    def fingerprint(self, uri: str) -> str | None:
        info = self.stat(uri)
        return None if info is None else info.fingerprint

    def delete(self, uri: str) -> None:
        bucket, key = object_key(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def spark_uri(self, uri: str) -> str:
        """Hadoop's S3 filesystem is s3a://."""
        return "s3a://" + uri.split("://", 1)[1]

    def delta_options(self) -> dict[str, str]:
        """delta-rs reads credentials from the environment itself; only an S3-compatible server needs saying."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        options = {"AWS_ALLOW_HTTP": "true"} if endpoint.startswith("http://") else {}
        # delta-rs needs a lock or conditional writes for concurrent writers on S3; S3 (since 2024) and moto
        # support conditional PUTs, which make a commit fail cleanly when another writer took the version.
        return {**options, "conditional_put": "etag"}


def storage_for(root: str) -> Storage:
    return S3Storage(root) if is_s3(root) else LocalStorage(root)
