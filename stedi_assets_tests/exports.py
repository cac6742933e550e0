"""A small generated lake whose export defects are frequent enough that it has every kind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from stedi_assets.sample import generate
from stedi_assets_tests.lakes import DEFECTIVE

# The graph tests' defect rates, with descriptive defects and key spellings far more often than in real feeds.
EXPORTED = replace(
    DEFECTIVE,
    bad_birth_day=0.15,
    odd_phone=0.15,
    empty_name=0.1,
    numeric_name=0.1,
    bad_public_date=0.1,
    case_variant_key=0.05,
    duplicate_key=0.02,
)


def generate_exported_lake(root: Path, customers: int = 60, seed: int = 5) -> dict:
    return generate(root, customers=customers, seed=seed, readings=12, files=3, rates=EXPORTED)
