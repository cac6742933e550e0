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

from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult, JobDefinition
from dagster._core.utils import make_new_run_id

from stedi_assets.cli import settings
from stedi_assets.cli.summary import summarize
from stedi_assets.definitions import defs
from stedi_assets.progress import Reporter, SparkWatch, seconds


def execute(run_config: dict, instance: DagsterInstance, progress: bool = True) -> ExecuteInProcessResult:
    """Runs the whole graph in this process; with `progress`, prints each asset as it starts and as it is
    committed, and while it runs, how far Spark is (see `run_job`)."""
    job = defs().resolve_implicit_global_asset_job_def()
    return run_job(job, run_config, instance, Reporter(sys.stdout) if progress else None)


# What the progress follows in the run's event log: a step (one per asset or multi-asset, named after its op)
# starts, commits its assets, ends.
WATCHED = {
    DagsterEventType.STEP_START,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
}
POLL_SECONDS = 0.5


def run_job(
    job: JobDefinition, run_config: dict, instance: DagsterInstance, reporter: Reporter | None
) -> ExecuteInProcessResult:
    """Runs `job` in a thread of this process. With a `reporter`, a line when a step starts, one per asset it
    commits, one if it fails; while a step runs, a status: its seconds so far and Spark's stages, tasks done of
    total and rows read since the step started (on a terminal rewritten in place, in a log every 15 s)."""
    run_id = make_new_run_id()
    outcome: dict[str, ExecuteInProcessResult] = {}

    def run() -> None:
        outcome["result"] = job.execute_in_process(
            run_config=run_config, instance=instance, run_id=run_id, raise_on_error=False
        )

    worker = threading.Thread(target=run, name="stedi-run")
    started = time.monotonic()
    worker.start()
    watch = _RunProgress(reporter, started) if reporter is not None else None
    cursor: str | None = None
    try:
        while True:
            worker.join(timeout=POLL_SECONDS)
            alive = worker.is_alive()
            if watch is not None:  # after the run ends too: its last events
                try:
                    connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=WATCHED)
                    cursor = connection.cursor
                    for record in connection.records:
                        watch.event(record.event_log_entry)
                    if alive:
                        watch.status()
                except Exception as error:  # progress must never stop the run it shows
                    watch.close()
                    watch = None
                    print(f"  (progress lines stopped: {type(error).__name__}: {error})", file=sys.stderr, flush=True)
            if not alive:
                break
    finally:
        if watch is not None:
            watch.close()
        worker.join()  # whatever happened here (Ctrl-C too), the run's thread ends before the process does
    return outcome["result"]


class _RunProgress:
    """The progress of one run: its steps' lines and the running step's status (steps run one at a time)."""

    def __init__(self, reporter: Reporter, started: float) -> None:
        self.reporter, self.started = reporter, started
        self.spark = SparkWatch()
        self.running: dict[str, float] = {}  # step -> when it started (monotonic)

    def event(self, entry) -> None:
        event = entry.dagster_event
        step = entry.step_key or ""
        if event.event_type == DagsterEventType.STEP_START:
            self.running[step] = time.monotonic()
            self.spark.mark(entry.timestamp)  # Spark's rows count from the step's start
            self.reporter.line(f"  {self._elapsed()}  {step:<34} started")
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            self.reporter.line(_progress_line(entry, self.started))
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            began = self.running.pop(step, None)
            if event.event_type == DagsterEventType.STEP_FAILURE:
                took = f" after {seconds(time.monotonic() - began)}" if began is not None else ""
                self.reporter.line(f"  {self._elapsed()}  {step:<34} FAILED{took} (the error follows the summary)")

    def status(self) -> None:
        if not self.running:
            return
        step, began = next(iter(self.running.items()))
        spark = self.spark.sample()
        detail = f"running {seconds(time.monotonic() - began)}"
        self.reporter.status(f"  {self._elapsed()}  {step:<34} {detail}" + (f": {spark.describe()}" if spark else ""))

    def close(self) -> None:
        self.spark.close()
        self.reporter.clear()

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"


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
