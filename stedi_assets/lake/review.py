"""Quarantined raw lines an erasure cannot read well enough to tell whether they name a customer.

The erasure's search (transforms/erased_rows.py) finds an address in any spelling a JSON line or plain text can
hold. What it cannot decode it cannot match: bytes that were not UTF-8 (read as U+FFFD), or an `@` spelled in an
encoding other than JSON's (`%40`, `&#64;`, `\\x40`). Such lines are counted in every erasure receipt (never
shown) and listed, by file and line, by `stedi review`, which can also blank them. No Spark and no Dagster here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from stedi_assets.lake.store import LakeStore
from stedi_assets.tables import LANDING_TABLES, QUARANTINE_OF

# An `@` in an encoding the search does not decode: URL, HTML/XML entities, C-like and octal escapes.
UNDECODED_AT = re.compile(r"%40|&#0*64;|&#x0*40;|&commat;|\\x40|\\100|\\u\{40\}", re.IGNORECASE)
REPLACEMENT = "\ufffd"  # what a byte that was not UTF-8 became when the line was read


def undecidable(raw: str) -> bool:
    """Whether a raw line may name someone in a way the erasure's search cannot read."""
    return REPLACEMENT in raw or UNDECODED_AT.search(raw) is not None


@dataclass(frozen=True)
class UndecidableLine:
    table: str  # the landing quarantine that holds it
    source_file: str
    line_number: int


def undecidable_lines(store: LakeStore) -> Iterator[UndecidableLine]:
    """The landing quarantines' lines an erasure cannot decide, read in batches (never a whole table at once)."""
    for landing in LANDING_TABLES:
        quarantine = QUARANTINE_OF[landing.name]
        table = store.delta(quarantine).open()
        if table is None:
            continue
        for batch in table.to_pyarrow_dataset().to_batches(columns=["source_file", "line_number", "raw"]):
            rows = zip(*(batch.column(name).to_pylist() for name in ("source_file", "line_number", "raw")), strict=True)
            for source, number, raw in rows:
                if raw is not None and number is not None and undecidable(raw):
                    yield UndecidableLine(quarantine.name, source, number)
