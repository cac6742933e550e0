"""`stedi sample`: generates a sample lake and prints the row counts the pipeline must produce from it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from stedi_assets.sample import generator
from stedi_assets.sample.world import PROGRESS_FROM, SAMPLE_CUSTOMERS, SAMPLE_SEED, Rates


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=generator.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=SAMPLE_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)
    parser.add_argument("--out", type=Path, help="default: the built-in sample lake ./sample_lake")
    parser.add_argument("--if-missing", action="store_true", help="do nothing if --out already exists")
    parser.add_argument("--readings", type=int, default=60, help="phone readings per customer")
    parser.add_argument("--files", type=int, default=4, help="files per feed")
    names = [f.name for f in fields(Rates)]
    parser.add_argument("--rate", action="append", default=[], metavar="NAME=VALUE", help=f"one of {names}")
    args = parser.parse_args(argv)
    if args.out is None:
        # Imported only for the default: the store module imports Spark, and generating does not need it.
        from stedi_assets.lake.store import SAMPLE_LAKE

        args.out = SAMPLE_LAKE
    if args.if_missing and args.out.exists():
        print(f"{args.out} exists: kept as it is")
        return 0
    overrides: dict[str, Any] = {}  # each an int or a float, as its field is
    for item in args.rate:
        name, _, value = item.partition("=")
        if name not in names:
            parser.error(f"unknown rate {name!r}; known: {', '.join(names)}")
        overrides[name] = int(value) if isinstance(getattr(Rates(), name), int) else float(value)
    started = time.monotonic()

    def progress(done: int) -> None:
        # Large lakes take minutes: say how far it is, on stderr (stdout is the report).
        elapsed = time.monotonic() - started
        percent = 100 * done // args.customers
        print(f"\r  {percent:3d}% {done:,} / {args.customers:,} customers, {elapsed:.0f} s", end="", file=sys.stderr)

    shown = progress if args.customers >= PROGRESS_FROM else None
    report = generator.generate(
        args.out, args.customers, args.seed, args.readings, args.files, Rates(**overrides), shown
    )
    if shown is not None:
        print(f"\r  {args.customers:,} customers written in {time.monotonic() - started:.0f} s", file=sys.stderr)
    json.dump({k: report[k] for k in ("landing_rows", "quarantined_rows", "tables")}, sys.stdout, indent=2)
    print()
    return 0
