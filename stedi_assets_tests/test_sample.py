"""The sample generator: deterministic, its report agrees with the files it wrote, and its feeds look like
real exports (descriptive defects, key spellings, BOM, CRLF, gzip, unusable files)."""

from __future__ import annotations

import bz2
import gzip
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from stedi_assets.sample import EXPECTED_FILE, FEEDS, SAMPLE_CUSTOMERS, SAMPLE_SEED, generate
from stedi_assets.sample.cli import main
from stedi_assets.sample.world import FUTURE_CONSENT_FROM
from stedi_assets_tests import reference
from stedi_assets_tests.exports import generate_exported_lake
from stedi_assets_tests.lakes import DEFECTIVE, generate_lake


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


def test_same_seed_same_bytes_in_another_process(tmp_path: Path) -> None:
    """Two processes, as two users' `stedi sample` runs: nothing may depend on the process (hash(None) did)."""
    for name in ("a", "b"):
        command = [sys.executable, "-m", "stedi_assets.sample", "--customers", "60", "--seed", "3"]
        subprocess.run([*command, "--out", str(tmp_path / name)], check=True, capture_output=True)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_reported_landing_lines_match_the_files(lake: tuple[Path, dict]) -> None:
    root, report = lake
    for feed in FEEDS:
        readable, unreadable = 0, 0
        for path in (root / feed / "landing").iterdir():
            lines = reference.file_lines(path.read_bytes(), path.name)
            readable += len(lines) if lines is not None else 0
            unreadable += lines is None
        quarantine = f"{feed}_landing_quarantine"
        assert unreadable == report["quarantined_files"][quarantine] == 3, feed
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
            gzip.decompress((folder / f"{feed}-truncated-0.json.Gz").read_bytes())
        assert not (folder / f"{feed}-fake-0.json.GZ").read_bytes().startswith(b"\x1f\x8b")
        assert bz2.decompress((folder / f"{feed}-bzip2-0.json.bz2").read_bytes()) == first.removeprefix(b"\xef\xbb\xbf")
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
    unusable = {"customer-truncated-0.json.Gz", "customer-fake-0.json.GZ", "customer-bzip2-0.json.bz2"}
    assert files == plain | unusable | {"customer-0000-resent.json"}


CASES = {
    "email_variant",  # records and readings spell the e-mail in other cases and surrounding spaces
    "email_variant_reading_resent",  # one reading delivered twice under two spellings
    "exact_tie_same_file",  # the later line wins
    "exact_tie_later_file",  # the file that arrived later wins
    "exact_tie_earlier_file",  # ... even when its name sorts first
    "exact_tie_same_arrival",  # the record without consent wins
    "malformed_consent",  # a newer record with a malformed consent date, quarantined
    "customer_out_by_quarantined_record",
    "future_consent",
    "device_move",  # readings before and after a hand-over; the earlier owner does not consent, the later does
    "reading_before_first_claim",  # a device read before its only holder registered it: theirs
    # ... before the first of its holders registered it (a device handed over, or shared): the first holder's
    "reading_before_first_claim_of_a_device_with_several_holders",
    "reading_before_simultaneous_first_claims",  # two customers registered the device at once: quarantined
    "reading_of_a_released_device",  # read after its holder put it away and before anyone took it: nobody's
}


def test_the_default_sample_has_every_identity_and_consent_case(tmp_path: Path) -> None:
    report = generate(tmp_path, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED)
    assert {case for case, n in report["cases"].items() if n > 0} >= CASES


def test_the_generators_bookkeeping_agrees_with_the_reference_on_every_case(tmp_path: Path) -> None:
    """Two independent computations of the expected tables (no Spark): the generator's own bookkeeping of what it
    wrote, and reference.py's reading of the files, on lakes where every case is frequent."""
    heavy = replace(
        DEFECTIVE,
        email_variant=0.4,
        exact_tie=0.2,
        malformed_consent=0.2,
        device_move=0.2,
        shared_device=0.2,
        early_readings=0.5,
    )
    cases: set[str] = set()
    for seed in range(4):
        report = generate(tmp_path / str(seed), customers=60, seed=seed, readings=12, files=4, rates=heavy)
        cases |= {case for case, n in report["cases"].items() if n > 0}
        for policy in ("since", "flag"):
            expected = {**report["landing_rows"], **report["quarantined_rows"], **report["tables"][policy]}
            assert reference.compute(tmp_path / str(seed), policy, b"key")["counts"] == expected, (seed, policy)
    assert cases >= CASES


def test_files_arrive_out_of_name_order_and_two_at_the_same_time(tmp_path: Path) -> None:
    generate_lake(tmp_path)
    folder = tmp_path / "customer" / "landing"
    arrival = {p.name.removesuffix(".gz"): p.stat().st_mtime_ns for p in folder.iterdir()}  # the last one is gzip
    assert arrival["customer-0001.json"] == arrival["customer-0002.json"] < arrival["customer-0000.json"]
    numbered = [t for name, t in arrival.items() if re.fullmatch(r"customer-\d{4}\.json", name)]
    assert arrival["customer-0000-resent.json"] > max(numbered)  # delivered again, after the numbered files


def test_the_sample_spells_emails_with_surrounding_spaces_and_dates_consent_in_the_future(tmp_path: Path) -> None:
    generate(tmp_path, customers=200, seed=SAMPLE_SEED)
    customers = [json.loads(line) for p in (tmp_path / "customer" / "landing").iterdir() for line in _json_lines(p)]
    readings = [json.loads(line) for p in (tmp_path / "accelerometer" / "landing").iterdir() for line in _json_lines(p)]
    assert any(
        r.get("email", "") != r.get("email", "").strip(" \t\u00a0\u200b\u200c\u200d\ufeff\u2060") for r in customers
    )
    assert any(
        r.get("user", "") != r.get("user", "").strip(" \t\u00a0\u200b\u200c\u200d\ufeff\u2060") for r in readings
    )
    consents = [r.get("shareWithResearchAsOfDate") for r in customers]
    assert any(isinstance(c, int) and c >= FUTURE_CONSENT_FROM for c in consents)
    assert any(isinstance(c, str) or (isinstance(c, int) and c < 946_684_800_000) for c in consents)  # malformed


def _json_lines(path: Path) -> list[str]:
    """The JSON objects a landing file holds, as delivered (a .gz decompressed; a broken file holds none)."""
    lines = []
    for line in reference.file_lines(path.read_bytes(), path.name) or []:
        try:
            if isinstance(json.loads(line), dict):
                lines.append(line)
        except json.JSONDecodeError:
            continue
    return lines


def test_file_shapes_can_be_turned_off(tmp_path: Path) -> None:
    rates = [
        "bom_files=0",
        "crlf_files=0",
        "gzip_files=0",
        "truncated_gzip_files=0",
        "fake_gzip_files=0",
        "bzip2_files=0",
    ]
    assert main(["--customers", "5", "--out", str(tmp_path), *(f"--rate={rate}" for rate in rates)]) == 0
    names = {p.name for p in (tmp_path / "customer" / "landing").iterdir()}
    assert names == {f"customer-000{i}.json" for i in range(4)} | {"customer-0000-resent.json"}
    report = json.loads((tmp_path / EXPECTED_FILE).read_text())
    assert report["quarantined_files"] == dict.fromkeys(report["quarantined_files"], 0)
