"""Symbolic links in a local landing folder: listed as what they are, never followed, never read.

A link could bring any file the process can read into the lake (a secret into a quarantine table's raw column,
readable through `stedi sql`), and a link loop made the listing raise, stopping the sensor and every run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stedi_assets import reasons
from stedi_assets.assets.landing_files import probe_file
from stedi_assets.lake.blanking import readable_lines
from stedi_assets.lake.storage import LocalStorage, SymlinkError

SECRET = b"AWS_SECRET_ACCESS_KEY=not-for-the-lake\n"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """A landing folder holding one real file and every kind of link: to a file and a folder outside the lake,
    to nothing, to itself, and a folder loop."""
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.env").write_bytes(SECRET)
    (outside / "folder" / "more.json").write_bytes(SECRET)
    folder = tmp_path / "lake" / "accelerometer" / "landing"
    (folder / "2026").mkdir(parents=True)
    (folder / "2026" / "part-1.json").write_bytes(b'{"user": "a@b.com"}\n')
    (folder / "secret.json").symlink_to(outside / "secret.env")
    (folder / "folder").symlink_to(outside / "folder", target_is_directory=True)
    (folder / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (folder / "self.json").symlink_to(folder / "self.json")
    (folder / "2026" / "up").symlink_to(folder, target_is_directory=True)  # a loop
    return folder


def test_links_are_listed_as_themselves_and_never_entered(landing: Path) -> None:
    storage = LocalStorage(str(landing.parent.parent))
    listed = {Path(info.uri).relative_to(landing).as_posix(): info for info in storage.list_files(str(landing))}
    assert sorted(listed) == ["2026/part-1.json", "2026/up", "dangling.json", "folder", "secret.json", "self.json"]
    link = listed["secret.json"]
    assert link.size == len(os.readlink(landing / "secret.json"))  # the link's own size, not the secret's
    assert storage.stat(link.uri) == link


@pytest.mark.parametrize("name", ["secret.json", "folder", "dangling.json", "self.json", "2026/up"])
def test_a_link_is_never_read(landing: Path, name: str) -> None:
    storage = LocalStorage(str(landing.parent.parent))
    uri = str(landing / name)
    for read in (storage.open, storage.read_bytes, lambda u: storage.read_tail(u, 4)):
        with pytest.raises(SymlinkError):
            read(uri)
    fault = probe_file(uri, storage.open)
    assert fault is not None and fault.reason == reasons.SYMLINK
    assert fault.detail == "a symbolic link: links are not followed"  # its name is the row's; no content
    assert list(readable_lines(storage, uri)) == []  # erasure finds nothing to match in a link


def test_regular_files_still_read(landing: Path) -> None:
    storage = LocalStorage(str(landing.parent.parent))
    uri = str(landing / "2026" / "part-1.json")
    assert storage.read_bytes(uri) == b'{"user": "a@b.com"}\n'
    assert probe_file(uri, storage.open) is None
    assert storage.read_tail(uri, 3) == b'"}\n'
