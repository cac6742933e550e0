"""Storage: the S3 one on moto (listing, fingerprints, reads and writes) and the local one, directly."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from stedi_assets.lake.blanking import blank_lines
from stedi_assets.lake.storage import LakeRootError, LocalStorage, S3Storage, storage_for

KEYS = ["a.json", "a-b.json", "a/x.json", "a.b/y.json", "A.json", "é.json", "z/deeper/z.json", "b.json"]
HIDDEN = [
    "_SUCCESS",
    ".a.json.uploading",
    "_tmp/x.json",
    "sub/.hidden/y.json",
    "sub/_staging/part-0",
    "a.json._COPYING_",
    "sub/b._COPYING_/c.json",
    "_spark_metadata/0",
]


class Paging:
    """The boto3 client, listing two keys a page (S3 lists 1000): the listing must follow every page."""

    def __init__(self, client: Any) -> None:
        self.client, self.pages = client, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_paginator(self, operation: str) -> Any:
        paginator, outer = self.client.get_paginator(operation), self

        class Small:
            def paginate(self, **kwargs: Any):
                for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": 2}):
                    outer.pages += 1
                    yield page

        return Small()


def put(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


@pytest.mark.s3
def test_s3_lists_every_page_in_s3s_order_skipping_hidden_names(s3_bucket: str) -> None:
    for key in [*KEYS, *HIDDEN]:
        put(s3_bucket, f"lake/landing/{key}", b"{}\n")
    put(s3_bucket, "lake/landing-2/other.json", b"{}\n")  # another folder sharing the prefix
    put(s3_bucket, "lake/landing/", b"")  # a folder marker, as consoles create them
    storage = S3Storage(f"s3a://{s3_bucket}/lake")
    storage.__dict__["client"] = paging = Paging(boto3.client("s3"))
    listed = storage.list_files(f"s3://{s3_bucket}/lake/landing")
    assert paging.pages > 3
    s3_order = [  # S3 lists keys in the order of their UTF-8 bytes
        item["Key"]
        for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="lake/")
        for item in page["Contents"]
    ]
    expected = [f"s3://{s3_bucket}/{k}" for k in s3_order if k.removeprefix("lake/landing/") in KEYS]
    assert [f.uri for f in listed] == expected and len(expected) == len(KEYS)
    assert storage.list_files(f"s3://{s3_bucket}/lake/nothing") == []


@pytest.mark.s3
def test_s3_lists_a_folder_marker_only_when_it_holds_bytes(s3_bucket: str) -> None:
    put(s3_bucket, "lake/landing/", b"")
    put(s3_bucket, "lake/landing/empty/", b"")
    content = b"bytes a console would not write\n"
    put(s3_bucket, "lake/landing/full/", content)
    put(s3_bucket, "lake/landing/_hidden/", b"bytes\n")
    put(s3_bucket, "lake/landing/full/a.json", b"{}\n")
    listed = S3Storage(f"s3://{s3_bucket}/lake").list_files(f"s3://{s3_bucket}/lake/landing")
    assert [(f.uri, f.size) for f in listed] == [
        (f"s3://{s3_bucket}/lake/landing/full/", len(content)),
        (f"s3://{s3_bucket}/lake/landing/full/a.json", 3),
    ]


@pytest.mark.s3
@pytest.mark.parametrize("key", ["lake/landing/full/", "lake/landing/x//y.json", "lake/landing//lead.json", "lake/m//"])
def test_s3_reaches_an_object_by_its_exact_key(s3_bucket: str, key: str) -> None:
    # A marker's or a // key's trailing and doubled slashes are part of it: stripping them named another key.
    storage = S3Storage(f"s3://{s3_bucket}/lake")
    uri = f"s3://{s3_bucket}/{key}"
    storage.write_bytes(uri, b"held\n")
    assert [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]] == [key]
    assert storage.read_bytes(uri) == b"held\n" and storage.read_tail(uri, 2) == b"d\n"
    assert storage.stat(uri) is not None and storage.fingerprint(uri) == storage.stat(uri).fingerprint
    storage.replace(uri, io.BytesIO(b"new\n"))
    assert storage.read_bytes(uri) == b"new\n"
    storage.delete(uri)
    assert storage.stat(uri) is None and "Contents" not in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)


@pytest.mark.s3
def test_s3_fingerprint_is_size_and_etag(s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/lake")
    uri = f"s3://{s3_bucket}/lake/landing/a.json"
    before = time.time() * 1000
    body = b'{"a": 1}\n'
    storage.write_bytes(uri, body)
    info = storage.stat(uri)
    assert info.fingerprint == f"9:{hashlib.md5(body).hexdigest()}" == storage.fingerprint(uri)
    assert (info.uri, info.size) == (uri, 9) and before - 2_000 <= info.modified_ms <= time.time() * 1000 + 2_000
    assert storage.list_files(f"s3://{s3_bucket}/lake/landing") == [info]
    storage.write_bytes(uri, b'{"a": 2}\n')  # same size, other bytes: another ETag
    assert storage.fingerprint(uri) not in (None, info.fingerprint)
    storage.write_bytes(uri, b'{"a": 1}\n')  # the same bytes again: the same ETag, not a new delivery
    assert storage.fingerprint(uri) == info.fingerprint
    assert storage.stat(f"s3://{s3_bucket}/lake/landing/none.json") is None
    assert storage.fingerprint(f"s3://{s3_bucket}/lake/landing/none.json") is None


@pytest.mark.s3
def test_s3_writes_reads_and_deletes(s3_bucket: str) -> None:
    storage = storage_for(f"s3://{s3_bucket}/lake/")
    assert isinstance(storage, S3Storage) and storage.root == f"s3://{s3_bucket}/lake/"
    storage.check_root()
    uri = f"s3://{s3_bucket}/lake/customer/landing/part-0.json"
    assert not storage.exists(f"s3://{s3_bucket}/lake/customer/landing")
    storage.write_bytes(uri, b"line 1\nline 2\n")
    assert storage.exists(f"s3://{s3_bucket}/lake/customer/landing")
    assert not storage.exists(f"s3://{s3_bucket}/lake/customer/land")  # a prefix, not a folder
    assert storage.read_bytes(uri) == b"line 1\nline 2\n"
    assert storage.read_tail(uri, 7) == b"line 2\n"
    with storage.open(uri) as body:
        assert body.read(4) == b"line"
    storage.delete(uri)
    storage.delete(uri)  # deleting what is gone is not an error
    assert storage.stat(uri) is None
    with pytest.raises(FileNotFoundError):
        storage.open(uri)
    assert storage.spark_uri(uri) == f"s3a://{s3_bucket}/lake/customer/landing/part-0.json"
    assert storage.delta_options() == {"AWS_ALLOW_HTTP": "true", "conditional_put": "etag"}
    with pytest.raises(LakeRootError, match="is not readable"):
        S3Storage(f"s3://missing-{os.urandom(4).hex()}/lake").check_root()


class Failing(io.RawIOBase):
    """A stream that breaks after its first bytes, as a failing rewrite would."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent:
            raise OSError("connection reset")
        self.sent = True
        buffer[:4] = b"half"
        return 4


@pytest.mark.s3
def test_s3_replace_is_one_put_readers_see_old_or_new(s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/lake")
    uri = f"s3://{s3_bucket}/lake/landing/part.json"
    storage.write_bytes(uri, b"old 1\nold 2\n")
    with pytest.raises(OSError, match="connection reset"):
        storage.replace(uri, Failing())
    assert storage.read_bytes(uri) == b"old 1\nold 2\n"
    storage.replace(uri, io.BytesIO(b"new\n"))
    assert storage.read_bytes(uri) == b"new\n"
    storage.write_bytes(uri, b'{"email": "ann@example.com"}\n{"email": "bob@example.com"}\n')
    info = blank_lines(storage, uri, {1})
    assert storage.read_bytes(uri) == b'\n{"email": "bob@example.com"}\n'
    assert info == storage.stat(uri) and info.size == 30


def test_local_listing_enters_folders_but_not_hidden_ones(tmp_path: Path) -> None:
    for name in [*KEYS, *HIDDEN]:
        (tmp_path / "landing" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "landing" / name).write_bytes(b"{}\n")
    storage = storage_for(str(tmp_path))
    assert isinstance(storage, LocalStorage)
    listed = storage.list_files(f"{tmp_path}/landing/")
    assert [f.uri for f in listed] == sorted(f"{tmp_path}/landing/{k}" for k in KEYS)
    assert all(f.size == 3 for f in listed)
    assert storage.list_files(f"{tmp_path}/missing") == []
    assert storage.exists(f"{tmp_path}/landing") and not storage.exists(f"{tmp_path}/missing")


def test_local_fingerprint_changes_when_a_file_is_rewritten(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    uri = f"{tmp_path}/landing/a.json"
    storage.write_bytes(uri, b'{"a": 1}\n')  # creates the folder; atomic: staged under a hidden name, renamed
    first = storage.stat(uri)
    st = os.stat(uri)
    assert first.fingerprint == f"9:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}" == storage.fingerprint(uri)
    assert first.modified_ms == st.st_mtime_ns // 1_000_000
    time.sleep(0.02)
    storage.write_bytes(uri, b'{"a": 2}\n')  # same size, rewritten later
    assert storage.fingerprint(uri) != first.fingerprint
    assert storage.read_bytes(uri) == b'{"a": 2}\n' and storage.read_tail(uri, 2) == b"}\n"
    assert sorted(p.name for p in Path(uri).parent.iterdir()) == ["a.json"]  # no staged copy left
    storage.delete(uri)
    storage.delete(uri)
    assert storage.stat(uri) is None and storage.fingerprint(uri) is None
    storage.check_root()
    with pytest.raises(LakeRootError, match="does not exist"):
        LocalStorage(f"{tmp_path}/missing").check_root()
    assert storage.spark_uri(uri) == uri and storage.delta_options() == {}


@pytest.mark.parametrize("how", ["in place", "by rename"])
def test_a_rewrite_with_its_size_and_time_put_back_is_still_another_version(tmp_path: Path, how: str) -> None:
    """What `cp -p`, `rsync -t` or a restore leave: the same size and modification time, other content. The
    inode and the change time, which no user can set back, tell it apart."""
    storage = LocalStorage(str(tmp_path))
    path = tmp_path / "landing" / "a.json"
    path.parent.mkdir()
    path.write_bytes(b'{"a": 1}\n')
    before = storage.stat(str(path))
    time.sleep(0.02)
    if how == "in place":
        path.write_bytes(b'{"a": 2}\n')
    else:
        staged = path.with_name(".a.json.tmp")
        staged.write_bytes(b'{"a": 2}\n')
        staged.replace(path)
    os.utime(path, ns=(before.modified_ms * 1_000_000, int(before.version.split(":")[0])))
    after = storage.stat(str(path))
    assert (after.size, after.modified_ms) == (before.size, before.modified_ms)
    assert after.fingerprint != before.fingerprint
