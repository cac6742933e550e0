"""`make run`: materialize every asset and its checks in one run, then print what each asset did with its rows.

python -m stedi_assets.cli.run
"""

from __future__ import annotations

import sys
import time

from dagster import DagsterInstance, materialize

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.checks import contract_checks
from stedi_assets.cli.summary import summarize
from stedi_assets.definitions import build_resources
from stedi_assets.settings import from_env


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    started = time.monotonic()
    result = materialize(
        [*ZONE_ASSETS, *contract_checks],
        resources=build_resources(from_env()),
        instance=DagsterInstance.get(),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    print(summarize(result))
    print(f"run {result.run_id} {'succeeded' if result.success else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
