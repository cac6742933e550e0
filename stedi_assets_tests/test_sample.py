"""The sample generator: deterministic, and its report agrees with the files it wrote."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from stedi_assets.cli.sample import (
    EXPECTED_FILE,
    FEEDS,
    FUTURE_CONSENT_FROM,
    SAMPLE_CUSTOMERS,
    SAMPLE_SEED,
    generate,
    main,
)
from stedi_assets_tests import reference
from stedi_assets_tests.lakes import DEFECTIVE, generate_lake


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
}


def test_the_default_sample_has_every_identity_and_consent_case(tmp_path: Path) -> None:
    report = generate(tmp_path, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED)
    assert {case for case, n in report["cases"].items() if n > 0} >= CASES


def test_the_generators_bookkeeping_agrees_with_the_reference_on_every_case(tmp_path: Path) -> None:
    """Two independent computations of the expected tables (no Spark): the generator's own bookkeeping of what it
    wrote, and reference.py's reading of the files, on lakes where every case is frequent."""
    heavy = replace(DEFECTIVE, email_variant=0.4, exact_tie=0.2, malformed_consent=0.2, device_move=0.2)
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
    arrival = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert arrival["customer-0001.json"] == arrival["customer-0002.json"] < arrival["customer-0000.json"]
    assert arrival["customer-0000-resent.json"] > max(t for name, t in arrival.items() if "resent" not in name)


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
    lines = []
    for line in path.read_text().splitlines():
        try:
            if isinstance(json.loads(line), dict):
                lines.append(line)
        except json.JSONDecodeError:
            continue
    return lines
