"""Erasure request files, read and deleted without Spark: a request is never lost, whatever its encoding and
whatever happens to its file while a run reads it."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest

from stedi_assets.assets.erasure import (
    RequestError,
    delete_requests,
    honoured_request_files,
    parse_requests,
    request_lines,
)
from stedi_assets.assets.landing import unreadable_naming_erased
from stedi_assets.assets.tombstones import IDENTITY, Tombstones
from stedi_assets.lake.storage import LocalStorage
from stedi_assets.resources.lake import Lake
from stedi_assets.transforms.pseudonyms import tombstone

ANN = '{"email": "ann@example.com", "requestedAt": 1700000000000}\n'
BOB = '{"email": "bob@example.com"}\n'
KEY = b"test-key"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    (tmp_path / "customer" / "erasure").mkdir(parents=True)
    return Lake(root=str(tmp_path))


def deliver(lake: Lake, name: str, data: bytes) -> Path:
    path = Path(lake.root) / "customer" / "erasure" / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ((ANN + "caf\xe9@example.com\n").encode("latin-1"), 2),  # a Latin-1 export
        (ANN.encode() + b'{"email": "\xff\xfe@example.com"}\n', 2),  # bytes no UTF-8 text holds
        (BOB.encode("utf-16"), 1),  # UTF-16 with its byte-order mark
        (ANN.encode() + "zoë".encode()[:-1] + b"@example.com\n", 2),  # a multi-byte character cut short
    ],
    ids=["latin-1", "invalid bytes", "utf-16", "truncated character"],
)
def test_a_line_that_is_not_utf8_fails_naming_file_and_line(lake: Lake, data: bytes, line: int) -> None:
    path = deliver(lake, "requests.json", data)
    with pytest.raises(RequestError) as error:
        request_lines(lake)
    assert str(error.value).startswith(f"{path} line {line} is not UTF-8 text; nothing was erased")
    assert "example.com" not in str(error.value)  # the content stays out of logs
    assert path.read_bytes() == data


def test_utf8_with_a_byte_order_mark_and_crlf_is_read(lake: Lake) -> None:
    deliver(lake, "a.json", ("\ufeff" + ANN + "\r\n" + BOB.replace("\n", "\r\n")).encode())
    files, lines = request_lines(lake)
    assert [f.uri.rsplit("/", 1)[1] for f in files] == ["a.json"]
    assert parse_requests(lines) == {"ann@example.com": 1700000000000, "bob@example.com": None}


def test_a_file_changed_after_it_was_read_is_kept_for_the_next_run(lake: Lake) -> None:
    kept = deliver(lake, "appended.json", ANN.encode())
    rewritten = deliver(lake, "rewritten.json", BOB.encode())
    done = deliver(lake, "done.json", BOB.encode())
    files, _ = request_lines(lake)
    with kept.open("a") as out:  # another request arrives while the run works
        out.write('{"email": "carol@example.com"}\n')
    rewritten.write_text(BOB.replace("bob", "dan"))  # same size, new content
    os.utime(rewritten, ns=(1, 1))  # and a modification time that differs
    assert delete_requests(lake, files) == 1
    assert not done.exists() and kept.exists() and rewritten.exists()
    files, lines = request_lines(lake)
    assert set(parse_requests(lines)) == {"ann@example.com", "carol@example.com", "dan@example.com"}
    assert delete_requests(lake, files) == 2
    assert request_lines(lake) == ([], [])


def test_only_files_whose_every_request_is_honoured_may_be_deleted(lake: Lake) -> None:
    """Requests go once their tombstones are committed and the receipt written (erasure_receipts): a file with a
    request the tombstones do not hold yet (it arrived after they were made) or that is not all requests stays."""
    key = KEY
    honoured = deliver(lake, "honoured.json", (ANN + ANN.replace("ann@", " ANN@")).encode())
    deliver(lake, "newer.json", (ANN + BOB).encode())
    deliver(lake, "broken.json", (ANN + "ann@example.com\n").encode())
    tombstones = Tombstones(0, frozenset({tombstone("ann@example.com", key, IDENTITY)}))
    assert [f.uri for f in honoured_request_files(lake, tombstones, key)] == [str(honoured)]
    assert honoured_request_files(lake, Tombstones(-1), key) == []
    everyone = Tombstones(0, frozenset(tombstone(i, key, IDENTITY) for i in ("ann@example.com", "bob@example.com")))
    assert {Path(f.uri).name for f in honoured_request_files(lake, everyone, key)} == {"honoured.json", "newer.json"}


def test_an_unreadable_file_that_cannot_be_searched_is_retried_not_fatal(tmp_path: Path, monkeypatch) -> None:
    """During an erasure, the files no parser could read are searched for the erased: one that names them is
    deleted; one that cannot be opened (no permission) is left for a later run; one gone since is nothing."""
    lake = Lake(root=str(tmp_path))
    named = tmp_path / "a.json.gz"  # plain text named .gz: Spark cannot read it, a person can
    named.write_bytes(b'{"email": " ANN@example.com"}\n')
    other = tmp_path / "b.json.gz"
    other.write_bytes(b'{"email": "bob@example.com"}\n')
    locked = tmp_path / "c.json.gz"
    locked.write_bytes(b'{"email": "ann@example.com"}\n')
    gone = str(tmp_path / "d.json.gz")
    opened = LocalStorage.open

    def refusing(self: LocalStorage, uri: str):
        if uri == str(locked):
            raise PermissionError(13, "Permission denied", uri)
        return opened(self, uri)

    monkeypatch.setattr(LocalStorage, "open", refusing)
    tombstones = Tombstones(0, frozenset({tombstone("ann@example.com", KEY, IDENTITY)}))
    found = unreadable_naming_erased(lake, tombstones, KEY, {str(named), str(other), str(locked), gone})
    assert found == ({str(named)}, {str(locked)})
    assert unreadable_naming_erased(lake, Tombstones(-1), KEY, {str(named)}) == (set(), set())


@pytest.mark.parametrize("kind", ["fifo", "socket", "symlink"])
def test_an_object_that_is_no_request_file_fails_naming_it_without_waiting_or_following(
    lake: Lake, tmp_path: Path, kind: str
) -> None:
    deliver(lake, "requests.json", ANN.encode())
    path = Path(lake.root) / "customer" / "erasure" / "odd.json"
    outside = tmp_path / "outside.json"
    outside.write_text(BOB)
    with contextlib.ExitStack() as stack:
        if kind == "fifo":
            os.mkfifo(path)  # no writer: opening it to read would block for ever
        elif kind == "socket":
            server = stack.enter_context(socket.socket(socket.AF_UNIX))
            server.bind(str(path))
        else:
            path.symlink_to(outside)
        with pytest.raises(RequestError) as error:
            request_lines(lake)
    expected = {"fifo": "a named pipe (FIFO)", "socket": "a socket", "symlink": "a symbolic link"}[kind]
    assert str(error.value).startswith(f"{path} is {expected}")
    assert "nothing was erased" in str(error.value)
    assert "bob@example.com" not in str(error.value)
