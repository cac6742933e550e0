"""The sample generator: deterministic, its report agrees with the files it wrote, and its feeds look like
real exports (descriptive defects, key spellings, BOM, CRLF, gzip, unusable files)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from stedi_assets.cli.sample import EXPECTED_FILE, FEEDS, main
from stedi_assets_tests import reference
from stedi_assets_tests.exports import generate_exported_lake
from stedi_assets_tests.lakes import generate_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sample")
    return root, generate_exported_lake(root)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _keys(line: str) -> list[str]:
    try:
        return list(json.loads(line))
    except (ValueError, TypeError):
        return []


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate_lake(tmp_path / "a", seed=3)
    generate_lake(tmp_path / "b", seed=3)
    generate_lake(tmp_path / "c", seed=4)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_reported_landing_lines_match_the_files(lake: tuple[Path, dict]) -> None:
    root, report = lake
    for feed in FEEDS:
        readable, unreadable = 0, 0
        for path in (root / feed / "landing").iterdir():
            lines = reference.file_lines(path.read_bytes(), path.name)
            readable += len(lines) if lines is not None else 0
            unreadable += lines is None
        quarantine = f"{feed}_landing_quarantine"
        assert unreadable == report["quarantined_files"][quarantine] == 2, feed
        lines_reported = report["landing_rows"][f"{feed}_landing"] + report["quarantined_rows"][quarantine]
        assert readable == lines_reported - unreadable, feed
    assert json.loads((root / EXPECTED_FILE).read_text()) == report


def test_the_independent_parse_agrees_with_the_report(lake: tuple[Path, dict]) -> None:
    """The reference reads the files by the README's rules alone: kept rows, quarantined rows (lines and
    files) and descriptive failures are what the generator says it wrote."""
    root, report = lake
    for feed in FEEDS:
        records, rejected = reference._parse(root, feed)
        assert len(records) == report["landing_rows"][f"{feed}_landing"], feed
        assert rejected == report["quarantined_rows"][f"{feed}_landing_quarantine"], feed
        found = reference.descriptive_failures(root, feed)
        assert dict(found) == report["descriptive_failures"][f"{feed}_landing"], feed


def test_the_feeds_have_the_shapes_of_real_exports(lake: tuple[Path, dict]) -> None:
    root, report = lake
    for feed in FEEDS:
        folder = root / feed / "landing"
        first, second = (folder / f"{feed}-0000.json").read_bytes(), (folder / f"{feed}-0001.json").read_bytes()
        assert first.startswith(b"\xef\xbb\xbf") and b"\r" not in first
        assert second.count(b"\r\n") == second.count(b"\n") > 0
        compressed = (folder / f"{feed}-0002.json.gz").read_bytes()
        assert gzip.decompress(compressed).count(b"\n") > 0
        assert not (folder / f"{feed}-0002.json").exists()
        with pytest.raises(EOFError):
            gzip.decompress((folder / f"{feed}-truncated-0.json.gz").read_bytes())
        assert not (folder / f"{feed}-fake-0.json.gz").read_bytes().startswith(b"\x1f\x8b")
    reasons = Counter(
        reference.classify(line, feed)[0]
        for feed in ("accelerometer", "step_trainer")
        for line in reference._lines(root, feed)
    )
    assert reasons["duplicate_key"] > 0
    keys = {key for line in reference._lines(root, "accelerometer") for key in _keys(line)}
    assert keys - {"user", "timestamp", "timeStamp", "x", "y", "z"}  # keys in another case
    failures = report["descriptive_failures"]["customer_landing"]
    assert set(failures) == {
        "birthDay:str_matches",
        "phone:str_matches",
        "customerName:str_matches",
        "customerName:wrong_type",
        "shareWithPublicAsOfDate:wrong_type",
    }


def test_command_line_writes_the_lake_and_prints_the_expectations(tmp_path: Path, capsys) -> None:
    assert main(["--customers", "5", "--seed", "1", "--out", str(tmp_path), "--rate", "duplicate_line=0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tables"] == json.loads((tmp_path / EXPECTED_FILE).read_text())["tables"]
    files = {p.name for p in (tmp_path / "customer" / "landing").iterdir()}
    plain = {"customer-0000.json", "customer-0001.json", "customer-0002.json", "customer-0003.json.gz"}
    unusable = {"customer-truncated-0.json.gz", "customer-fake-0.json.gz"}
    assert files == plain | unusable | {"customer-0000-resent.json"}


def test_file_shapes_can_be_turned_off(tmp_path: Path) -> None:
    rates = ["bom_files=0", "crlf_files=0", "gzip_files=0", "truncated_gzip_files=0", "fake_gzip_files=0"]
    assert main(["--customers", "5", "--out", str(tmp_path), *(f"--rate={rate}" for rate in rates)]) == 0
    names = {p.name for p in (tmp_path / "customer" / "landing").iterdir()}
    assert names == {f"customer-000{i}.json" for i in range(4)} | {"customer-0000-resent.json"}
    report = json.loads((tmp_path / EXPECTED_FILE).read_text())
    assert report["quarantined_files"] == dict.fromkeys(report["quarantined_files"], 0)
