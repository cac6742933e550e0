"""The sample generator: deterministic, and its report agrees with the files it wrote."""

from __future__ import annotations

import json
from pathlib import Path

from stedi_assets.cli.sample import EXPECTED_FILE, FEEDS, main
from stedi_assets_tests.lakes import generate_lake


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate_lake(tmp_path / "a", seed=3)
    generate_lake(tmp_path / "b", seed=3)
    generate_lake(tmp_path / "c", seed=4)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_reported_landing_lines_match_the_files(tmp_path: Path) -> None:
    report = generate_lake(tmp_path)
    for feed in FEEDS:
        lines = sum(len(p.read_text().splitlines()) for p in (tmp_path / feed / "landing").iterdir())
        reported = report["landing_rows"][f"{feed}_landing"] + report["quarantined_rows"][f"{feed}_landing_quarantine"]
        assert lines == reported, feed
    assert json.loads((tmp_path / EXPECTED_FILE).read_text()) == report


def test_command_line_writes_the_lake_and_prints_the_expectations(tmp_path: Path, capsys) -> None:
    assert main(["--customers", "5", "--seed", "1", "--out", str(tmp_path), "--rate", "duplicate_line=0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tables"] == json.loads((tmp_path / EXPECTED_FILE).read_text())["tables"]
    files = {p.name for p in (tmp_path / "customer" / "landing").iterdir()}
    assert files == {f"customer-000{i}.json" for i in range(4)} | {"customer-0000-resent.json"}
