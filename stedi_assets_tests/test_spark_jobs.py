"""Spark jobs per asset (benchmarks/spark_jobs.py), and their budget: a change that makes an asset run more Spark
jobs than recorded here fails, so the cost of a run cannot creep up unseen. Lower a budget when a change saves
jobs; raise one only with the reason in the commit."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from benchmarks.spark_jobs import Job, markdown, per_step, run_profile, short_site
from stedi_assets_tests import lakes

# Jobs per step of `lakes.cli_run` (6 customers, the `flag` policy, a first run: every table written whole).
SPARK_JOB_BUDGET = {
    "customer_erasure": 4,
    "customer_landing": 13,
    "accelerometer_landing": 11,
    "step_trainer_landing": 11,
    "customer_trusted": 10,
    "accelerometer_trusted": 9,
    "customer_curated": 7,
    "step_trainer_trusted": 22,
    "machine_learning_curated": 20,
    "erasure_receipts": 0,
    "customer_curated_fresh_after_landing": 0,
    "machine_learning_curated_fresh_after_landing": 0,
}


def test_each_job_counts_for_the_step_running_when_it_was_submitted() -> None:
    jobs = [Job(0.5, 1.0, 1), Job(1.0, 4.0, 3), Job(2.5, 2.75, 2), Job(5.0, 5.5, 1), Job(9.0, 9.5, 1)]
    windows = {"second": (2.0, 6.0), "first": (1.0, 2.0)}
    profiles = per_step(jobs, windows)
    assert [(p.step, p.jobs, p.stages, p.spark_seconds, p.step_seconds) for p in profiles] == [
        ("first", 1, 3, 3.0, 1.0),  # the job before every step (Spark's start) and the one after count for none
        ("second", 2, 3, 0.75, 4.0),
    ]


def test_a_steps_jobs_are_told_apart_by_the_line_of_code_that_started_them() -> None:
    count = short_site("count at /work/x/.venv/lib/python3.11/site-packages/stedi_assets/assets/landing.py:250")
    write = short_site("parquet at /tmp/clone/stedi_assets/lake/store.py:205")
    assert (count, write) == (
        "count at stedi_assets/assets/landing.py:250",
        "parquet at stedi_assets/lake/store.py:205",
    )
    jobs = [
        Job(1.0, 2.0, 1, count, cpu=0.5),
        Job(2.0, 5.0, 2, write, cpu=4.0),
        Job(3.0, 3.5, 1, count, cpu=0.25),
        Job(7.0, 8.0, 1, write, cpu=9.0),
    ]
    (profile,) = per_step(jobs, {"landing": (1.0, 6.0)})
    assert profile.sites == ((count, 2, 1.5, 0.75), (write, 1, 3.0, 4.0))
    assert profile.cpu_seconds == 4.75
    assert f"| landing | `{write}` | 1 | 3.0 | 4.0 |\n| landing | `{count}` | 2 | 1.5 | 0.8 |" in markdown([profile])


@pytest.mark.graph
def test_no_asset_runs_more_spark_jobs_than_its_budget(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = lakes.cli_run(tmp_path_factory)
    assert run.done.returncode == 0
    with DagsterInstance.from_config(str(run.home)) as instance:
        (record,) = instance.get_run_records()
        jobs = {p.step: p.jobs for p in run_profile(run.events, instance, record.dagster_run.run_id)}
    assert set(jobs) == set(SPARK_JOB_BUDGET), "every step has a budget"
    assert sum(jobs.values()) > 0, "the event log holds the run's jobs"
    over = {step: f"{count} jobs, budget {SPARK_JOB_BUDGET[step]}" for step, count in jobs.items()}
    assert {step: text for step, text in over.items() if jobs[step] > SPARK_JOB_BUDGET[step]} == {}, jobs
