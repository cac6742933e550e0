"""Lists the quarantined raw lines an erasure cannot read well enough to tell whether they name a customer.

    stedi review            # file:line and quarantine of each such line (never its content)
    stedi review --blank    # blanks those lines in their raw files

Every erasure receipt counts them (`undecidable_lines`). Review each line in its file: fix or delete the file, or
blank the lines with `--blank`; the next run reads a changed file again, as any rewritten delivery (its rows are
replaced; a blank line is filtered). Environment: STEDI_LAKE_ROOT (unset: the built-in sample lake), and the AWS
variables for an s3:// lake. No Spark and no Dagster: it reads the quarantine tables with delta-rs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict

from stedi_assets.lake.blanking import BlankingError, blank_lines
from stedi_assets.lake.review import undecidable_lines
from stedi_assets.lake.storage import LakeRootError
from stedi_assets.lake.store import LakeStore


def main(argv: list[str], prog: str = "stedi review") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--blank", action="store_true", help="blank the listed lines in their raw files")
    args = parser.parse_args(argv)
    store = LakeStore(os.environ.get("STEDI_LAKE_ROOT", ""))
    try:
        store.check_root()
    except LakeRootError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    by_file: dict[str, set[int]] = defaultdict(set)
    for line in undecidable_lines(store):
        print(f"{line.source_file}:{line.line_number}\t{line.table}")
        by_file[line.source_file].add(line.line_number)
    count = sum(map(len, by_file.values()))
    print(f"{count} quarantined lines an erasure cannot decide, in {len(by_file)} files", file=sys.stderr)
    if not args.blank:
        return 0
    failed = 0
    for uri, numbers in sorted(by_file.items()):
        try:
            blank_lines(store.storage, uri, numbers)
        except (OSError, BlankingError) as error:  # named, not fatal: the other files are still blanked
            print(f"{uri}: not blanked ({error})", file=sys.stderr)
            failed += 1
    print(f"blanked {count} lines in {len(by_file) - failed} files; the next run reads them again", file=sys.stderr)
    return 1 if failed else 0
