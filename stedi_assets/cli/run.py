"""Materialize every asset and its checks in one run, printing each asset as it finishes, then a summary.

Runs the project's Definitions object (the one `dagster dev` loads) on the lake of STEDI_LAKE_ROOT (unset: the
built-in sample lake, which `stedi sample` generates), recording the run in the Dagster instance of
DAGSTER_HOME (`make run` sets ./.dagster_home). Environment: STEDI_LAKE_ROOT, STEDI_CONSENT_POLICY,
STEDI_PSEUDONYM_KEY, STEDI_SPARK_MASTER, STEDI_SPARK_CONF, DAGSTER_HOME and the standard AWS variables.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult
from dagster._core.utils import make_new_run_id

from stedi_assets.cli import settings
from stedi_assets.cli.summary import summarize
from stedi_assets.definitions import defs


def execute(run_config: dict, instance: DagsterInstance, progress: bool = True) -> ExecuteInProcessResult:
    """Runs the whole graph in this process; with `progress`, prints each asset as it is committed."""
    job = defs().resolve_implicit_global_asset_job_def()
    run_id = make_new_run_id()
    outcome: dict[str, ExecuteInProcessResult] = {}

    def run() -> None:
        outcome["result"] = job.execute_in_process(
            run_config=run_config, instance=instance, run_id=run_id, raise_on_error=False
        )

    worker = threading.Thread(target=run, name="stedi-run")
    started = time.monotonic()
    worker.start()
    printed: set[int] = set()
    while worker.is_alive() or progress:
        worker.join(timeout=0.5)
        if progress:
            for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records:
                if record.storage_id not in printed:
                    printed.add(record.storage_id)
                    print(_progress_line(record.event_log_entry, started), flush=True)
        if not worker.is_alive():
            break
    return outcome["result"]


def _progress_line(entry, started: float) -> str:
    materialization = entry.dagster_event.step_materialization_data.materialization
    meta = {key: value.value for key, value in materialization.metadata.items()}
    name = materialization.asset_key.to_user_string()
    if "dagster/row_count" not in meta:  # not a table: the erasure receipts
        return f"  {time.monotonic() - started:6.1f}s  {name:<34} {meta.get('receipt', '')}"
    rows, total = meta.get("rows_out", 0), meta["dagster/row_count"]
    return f"  {time.monotonic() - started:6.1f}s  {name:<34} {rows:>10,} rows this run, {total:>10,} in the table"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="reread every landing file and rebuild every table from scratch"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-asset progress, only the summary")
    settings.add_debug_option(parser)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        settings.run_settings()  # every setting checked before a run starts
    except settings.SETTING_ERRORS as bad:
        return settings.report(prog or "stedi run", bad, args.debug)
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    # The progress lines replace Dagster's console log; warnings and errors still show.
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if args.rebuild:
        run_config["resources"] = {"lake": {"config": {"rebuild": True}}}
    result = execute(run_config, instance, progress=not args.quiet)
    print(summarize(result))
    if not result.success:
        for event in (e for e in result.all_events if e.is_step_failure):
            error = event.step_failure_data.error
            if error is None:  # Dagster's StepFailureData may carry no error info
                print(f"error: {event.step_key}: failed (Dagster recorded no error)", file=sys.stderr)
                continue
            while error.cause is not None and "executing op" in error.message:  # Dagster's wrapper: say the cause
                error = error.cause
            print(f"error: {event.step_key}: {error.message.strip().splitlines()[0]}", file=sys.stderr)
    print(f"run {result.run_id} {'succeeded' if result.success else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return 0 if result.success else 1
