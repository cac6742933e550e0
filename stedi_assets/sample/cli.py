"""`stedi sample`: generates a sample lake and prints the row counts the pipeline must produce from it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path
from typing import Any

from stedi_assets.progress import Reporter, seconds
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
    # Large lakes take minutes: say how far it is, on stderr (stdout is the report). On a terminal one line
    # rewritten each 1%; in a log a line each 10% and, while the files are finished, one every 15 s at least.
    reporter = Reporter(sys.stderr)
    written = 0

    def status() -> str:
        elapsed = seconds(time.monotonic() - started)
        if written < args.customers:
            percent = 100 * written // args.customers
            return f"  {percent:3d}% {written:,} / {args.customers:,} customers, {elapsed}"
        return f"  {args.customers:,} customers written, finishing the files, {elapsed}"

    def progress(done: int) -> None:
        nonlocal written
        before, written = written, done
        reporter.status(status(), keep=10 * done // args.customers > 10 * before // args.customers)

    shown = args.customers >= PROGRESS_FROM
    with reporter.waiting(status) if shown else nullcontext():
        report = generator.generate(
            args.out, args.customers, args.seed, args.readings, args.files, Rates(**overrides),
            progress if shown else None,
        )  # fmt: skip
    if shown:
        reporter.line(f"  {args.customers:,} customers written in {seconds(time.monotonic() - started)}")
    json.dump({k: report[k] for k in ("landing_rows", "quarantined_rows", "tables")}, sys.stdout, indent=2)
    print()
    return 0
