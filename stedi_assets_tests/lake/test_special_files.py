"""FIFOs, sockets and devices in a local landing folder: listed, each one `not_a_file` quarantine row by its name,
never read and never given to Spark.

Opening a FIFO that has no writer blocks for ever (a hung run or sensor), and a device such as /dev/zero never
ends: each call here runs under a time limit (`promptly`), so such a regression fails instead of hanging the
suite. A device node cannot be made without root: the devices tested are /dev/null and /dev/zero themselves.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from pyspark.sql import SparkSession

from stedi_assets import reasons
from stedi_assets.assets.landing import unreadable_naming_erased
from stedi_assets.assets.landing_files import probe_file
from stedi_assets.assets.tombstones import IDENTITY, Tombstones
from stedi_assets.lake.blanking import readable_lines
from stedi_assets.lake.storage import LocalStorage, NotAFileError
from stedi_assets.resources.lake import Lake
from stedi_assets.transforms.pseudonyms import tombstone
from stedi_assets_tests.lake.test_names import land

Result = TypeVar("Result")

KEY = b"test-key"
# A line a writer has put into the FIFO `fed.json`: it names a customer whom the erasure test erases.
WAITING = b'{"email": "ann@example.com"}\n'
FIFO = "a named pipe (FIFO)"
# The special objects of the `landing` fixture, and what each is.
SPECIAL = {"pipe.json": FIFO, "fed.json": FIFO, "socket.json": "a socket"}


def promptly(call: Callable[[], Result], seconds: float = 10) -> Result:
    """What `call` returns (or raises), failing the test if it has not returned within `seconds`: the call runs in
    a daemon thread, which a blocked open cannot keep from ending the test run."""
    returned: list[Result] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            returned.append(call())
        except BaseException as error:  # handed to the test's thread as it is
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if raised:
        raise raised[0]
    return returned[0]


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A landing folder holding one file, a FIFO with no writer, a FIFO a writer holds open with a line waiting
    in it, a listening UNIX socket, and a hidden FIFO."""
    folder = tmp_path / "accelerometer" / "landing"
    folder.mkdir(parents=True)
    (folder / "fine.json").write_bytes(b'{"user": "bob@example.com"}\n')
    os.mkfifo(folder / "pipe.json")
    os.mkfifo(folder / ".staged.json")
    os.mkfifo(folder / "fed.json")
    # A writer's open needs a reader: one is opened for it and closed; the line stays in the pipe for the next one.
    reader = os.open(folder / "fed.json", os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(folder / "fed.json", os.O_WRONLY | os.O_NONBLOCK)
    os.write(writer, WAITING)
    os.close(reader)
    monkeypatch.chdir(folder)  # bound by its relative name: a socket's path may not exceed about 100 bytes
    listener = socket.socket(socket.AF_UNIX)
    listener.bind("socket.json")
    listener.listen()
    yield folder
    listener.close()
    os.close(writer)


def still_waiting(fifo: Path) -> bytes:
    """What the FIFO still holds: the line its writer wrote, unless something read it."""
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(reader, 1 << 16)
    finally:
        os.close(reader)


def test_each_special_object_is_listed_as_itself(landing: Path) -> None:
    storage = LocalStorage(str(landing.parent.parent))
    listed = {Path(info.uri).name: info for info in promptly(lambda: storage.list_files(str(landing)))}
    assert sorted(listed) == ["fed.json", "fine.json", "pipe.json", "socket.json"]  # the hidden FIFO is skipped
    for name in SPECIAL:
        assert promptly(lambda name=name: storage.stat(str(landing / name))) == listed[name]
    assert still_waiting(landing / "fed.json") == WAITING


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_a_special_object_is_refused_unread_without_blocking(landing: Path, name: str) -> None:
    storage = LocalStorage(str(landing.parent.parent))
    uri = str(landing / name)
    for read in (storage.open, storage.read_bytes, lambda u: storage.read_tail(u, 4)):
        with pytest.raises(NotAFileError) as refused:
            promptly(lambda read=read: read(uri))
        assert refused.value.description == SPECIAL[name]
    fault = promptly(lambda: probe_file(uri, storage.open))
    assert fault == (reasons.NOT_A_FILE, f"{SPECIAL[name]}: no file")  # its name is the row's; no content
    assert promptly(lambda: list(readable_lines(storage, uri))) == []  # erasure finds nothing stored in it
    assert still_waiting(landing / "fed.json") == WAITING


def test_a_fifo_replaced_after_the_type_check_is_still_refused_without_blocking(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The type can change between the listing (or `open`'s own lstat) and the open: what was opened decides."""
    storage = LocalStorage(str(landing.parent.parent))
    lstat = os.lstat
    regular = lstat(landing / "fine.json")
    monkeypatch.setattr(os, "lstat", lambda path: regular if str(path).endswith("pipe.json") else lstat(path))
    with pytest.raises(NotAFileError):
        promptly(lambda: storage.open(str(landing / "pipe.json")))


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_device_is_refused_unopened(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a device can act on it (a tape rewinds, a watchdog arms): its lstat refuses it before any open."""
    storage = LocalStorage("/")
    opened: list[str] = []
    open_descriptor = os.open

    def recorded(path: str, *args: int, **options: int) -> int:
        opened.append(path)
        return open_descriptor(path, *args, **options)

    monkeypatch.setattr(os, "open", recorded)
    with pytest.raises(NotAFileError) as refused:
        promptly(lambda: storage.open(device))
    assert refused.value.description == "a character device"
    assert promptly(lambda: probe_file(device, storage.open)) == (reasons.NOT_A_FILE, "a character device: no file")
    assert promptly(lambda: next(readable_lines(storage, device), None)) is None  # /dev/zero would never end
    assert opened == []


def test_erasure_has_nothing_to_search_in_a_special_object(landing: Path) -> None:
    """A FIFO's bytes are no stored lines (the lake never read them): even one whose waiting line names someone
    erased is neither deleted nor left unsearched (which would keep it pending blanking, retried by every run)."""
    lake = Lake(root=str(landing.parent.parent))
    tombstones = Tombstones(0, frozenset({tombstone("ann@example.com", KEY, IDENTITY)}))
    uris = {str(landing / name) for name in SPECIAL}
    assert promptly(lambda: unreadable_naming_erased(lake, tombstones, KEY, uris)) == (set(), set())
    assert still_waiting(landing / "fed.json") == WAITING


def test_a_landing_folder_with_special_objects_lands_its_file_and_one_fault_each(
    spark: SparkSession, landing: Path
) -> None:
    landed = promptly(lambda: land(spark, LocalStorage(str(landing.parent.parent)), str(landing), {}), seconds=300)
    assert landed.lines == {str(landing / "fine.json"): ['{"user": "bob@example.com"}']}
    assert landed.faults == {
        str(landing / name): (reasons.NOT_A_FILE, f"{description}: no file") for name, description in SPECIAL.items()
    }
    assert still_waiting(landing / "fed.json") == WAITING
