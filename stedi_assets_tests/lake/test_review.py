"""Quarantined lines an erasure cannot decide: found in the landing quarantines (delta-rs, no Spark), listed by
`stedi review` by file and line only, and blanked in their raw files with `--blank`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql.pandas.types import to_arrow_schema

from stedi_assets.cli import review
from stedi_assets.lake.review import UndecidableLine, undecidable, undecidable_lines
from stedi_assets.lake.store import LakeStore
from stedi_assets.tables import ACCELEROMETER_LANDING, CUSTOMER_LANDING, QUARANTINE_OF

DECIDABLE = [
    '{"email": "ann@example.com", "phone": "12',  # cut short: the address is readable
    '{"email": "ann\\u0040example.com"}',  # a JSON escape the search decodes
    "ann@example.com;bob@example.com",
    '{"customerName": "Ann"',  # no address at all
    "",
]
UNDECIDABLE = [
    '{"email": "ann\ufffd@example.com"}',  # a byte that was not UTF-8
    "\ufffd\ufffd\ufffd",
    "ann%40example.com",
    "ANN%40EXAMPLE.COM",
    "ann&#64;example.com",
    "ann&#x40;example.com",
    "ann&commat;example.com",
    '{"email": "ann\\x40example.com"}',
]


@pytest.mark.parametrize("raw", DECIDABLE)
def test_lines_the_search_reads_are_decidable(raw: str) -> None:
    assert not undecidable(raw)


@pytest.mark.parametrize("raw", UNDECIDABLE)
def test_undecoded_bytes_and_other_encodings_of_the_at_sign_are_undecidable(raw: str) -> None:
    assert undecidable(raw)


def quarantine(store: LakeStore, feed, rows: list[tuple[str | None, str, int | None]]) -> None:
    table = QUARANTINE_OF[feed.name]
    columns = {"raw": [], "source_file": [], "line_number": []}
    for raw, source, number in rows:
        columns["raw"].append(raw)
        columns["source_file"].append(source)
        columns["line_number"].append(number)
    n = len(rows)
    data = {**columns, "arrived_at": [1] * n, "reason": ["not_json"] * n, "detail": [None] * n}
    data |= {"rejected_by": [feed.name] * n, "run_id": ["r"] * n}
    write_deltalake(store.location(table), pa.table(data, schema=to_arrow_schema(table.schema)))


def test_review_lists_and_blanks_exactly_the_undecidable_lines(tmp_path: Path, capsys) -> None:
    store = LakeStore(str(tmp_path))
    lines = [*DECIDABLE[:3], *UNDECIDABLE]
    raw_file = tmp_path / CUSTOMER_LANDING.files_path / "part.json"
    raw_file.parent.mkdir(parents=True)
    raw_file.write_text("".join(f"{line}\n" for line in lines))
    (tmp_path / ACCELEROMETER_LANDING.files_path).mkdir(parents=True)
    (tmp_path / "step_trainer" / "landing").mkdir(parents=True)
    rows = [(line, str(raw_file), n) for n, line in enumerate(lines, start=1)]
    quarantine(store, CUSTOMER_LANDING, [*rows, (None, str(tmp_path / "broken.json.gz"), None)])
    expected = list(range(len(DECIDABLE[:3]) + 1, len(lines) + 1))
    table = QUARANTINE_OF[CUSTOMER_LANDING.name].name
    assert list(undecidable_lines(store)) == [UndecidableLine(table, str(raw_file), n) for n in expected]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STEDI_LAKE_ROOT", str(tmp_path))
        assert review.main([]) == 0
        listed = capsys.readouterr()
        assert listed.out.splitlines() == [f"{raw_file}:{n}\t{table}" for n in expected]
        assert "example" not in listed.out + listed.err  # locations, never content
        assert f"{len(expected)} quarantined lines" in listed.err
        assert raw_file.read_text().splitlines() == lines  # listing changes nothing
        assert review.main(["--blank"]) == 0
    assert raw_file.read_text().splitlines() == [*DECIDABLE[:3], *[""] * len(UNDECIDABLE)]


def test_review_of_a_missing_lake_names_it(tmp_path: Path, capsys) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STEDI_LAKE_ROOT", str(tmp_path / "nowhere"))
        assert review.main([]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
