"""Spark jobs per asset of a run, from Spark's event log and the Dagster run's step events.

Nothing in the pipeline counts: the run is started with `spark.eventLog.enabled`, and each job is given to the
step that was running when Spark submitted it (steps of an in-process run follow one another). Reported per step:
jobs, their stages (skipped ones included: each is planned), the jobs' seconds summed (submission to completion;
jobs of one query run side by side, so the sum can pass the step's time) and the step's wall time; then, for each
step, its jobs by the line of code that started them (PySpark names the caller's file and line in each job's call
site), which says where a step's time goes: the read, the counts, the writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from dagster import DagsterEventType, DagsterInstance

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Job:
    submitted: float  # epoch seconds
    completed: float
    stages: int
    site: str = ""  # the code that started it: "collect at stedi_assets/assets/accounting.py:97"
    cpu: float = 0.0  # its tasks' executor CPU seconds: unlike wall time, barely moved by other work on the machine


@dataclass(frozen=True)
class StepProfile:
    step: str
    jobs: int
    stages: int
    spark_seconds: float
    step_seconds: float
    sites: tuple[tuple[str, int, float, float], ...] = ()  # (call site, jobs, seconds, CPU seconds), first seen first
    cpu_seconds: float = 0.0


def _event_lines(path: Path) -> Iterator[str]:
    data = path.read_bytes()
    if data[:4] == ZSTD_MAGIC:  # Spark 4 compresses event logs with zstd by default
        with pa.CompressedInputStream(pa.BufferReader(data), "zstd") as stream:
            data = stream.read()
    yield from data.decode("utf-8").splitlines()


def short_site(site: str) -> str:
    """A call site with the file named from the package down ("count at stedi_assets/assets/landing.py:250")."""
    action, _, where = site.partition(" at ")
    for root in ("stedi_assets/", "benchmarks/"):
        if root in where:
            where = root + where.rsplit(root, 1)[1]
            break
    else:
        where = where.rsplit("site-packages/", 1)[-1]
    return f"{action} at {where}" if where else action


def read_jobs(event_logs: Path) -> list[Job]:
    """Every job in the Spark event logs under a folder (`spark.eventLog.dir`), in submission order."""
    started: dict[int, tuple[float, int, str]] = {}
    queries: dict[str, str] = {}  # SQL execution id -> its description (a write's jobs carry no call site)
    job_of_stage: dict[int, int] = {}  # the latest job to list the stage: its tasks run for that one
    cpu: dict[int, float] = {}
    jobs = []
    for path in sorted(event_logs.rglob("events_*")):  # rolling event logs: events_1_app, events_2_app, ...
        if not path.is_file():
            continue
        for line in _event_lines(path):
            event = json.loads(line)
            kind = event["Event"]
            if kind.endswith("SparkListenerSQLExecutionStart"):
                queries[str(event["executionId"])] = event.get("description", "")
            elif kind == "SparkListenerJobStart":
                properties = event.get("Properties") or {}
                site = properties.get("callSite.short") or queries.get(properties.get("spark.sql.execution.id", ""), "")
                started[event["Job ID"]] = (event["Submission Time"] / 1000, len(event["Stage IDs"]), short_site(site))
                job_of_stage |= dict.fromkeys(event["Stage IDs"], event["Job ID"])
            elif kind == "SparkListenerTaskEnd" and event["Stage ID"] in job_of_stage:
                metrics = event.get("Task Metrics") or {}
                nanos = metrics.get("Executor CPU Time", 0) + metrics.get("Executor Deserialize CPU Time", 0)
                job = job_of_stage[event["Stage ID"]]
                cpu[job] = cpu.get(job, 0.0) + nanos / 1e9
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in started:
                submitted, stages, site = started.pop(event["Job ID"])
                jobs.append(
                    Job(submitted, event["Completion Time"] / 1000, stages, site, cpu.get(event["Job ID"], 0.0))
                )
    return sorted(jobs, key=lambda job: job.submitted)


def step_windows(instance: DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step of a run: (start, end) in epoch seconds."""
    starts: dict[str, float] = {}
    windows = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            windows[entry.step_key] = (starts[entry.step_key], entry.timestamp)
    return windows


def per_step(jobs: Iterable[Job], windows: dict[str, tuple[float, float]]) -> list[StepProfile]:
    """The jobs of each step (submitted while it ran), steps in the order they started. Spark's and Dagster's
    clocks are the machine's; a job outside every step (Spark's start) counts for none."""
    jobs = list(jobs)
    profiles = []
    for step, (start, end) in sorted(windows.items(), key=lambda item: item[1][0]):
        mine = [job for job in jobs if start <= job.submitted <= end]
        spark_seconds = sum(job.completed - job.submitted for job in mine)
        sites: dict[str, tuple[int, float, float]] = {}
        for job in mine:
            count, seconds, cpu = sites.get(job.site, (0, 0.0, 0.0))
            sites[job.site] = (count + 1, seconds + job.completed - job.submitted, cpu + job.cpu)
        profiles.append(
            StepProfile(
                step,
                len(mine),
                sum(j.stages for j in mine),
                spark_seconds,
                end - start,
                tuple((site, *counts) for site, counts in sites.items()),
                sum(job.cpu for job in mine),
            )
        )
    return profiles


def run_profile(event_logs: Path, instance: DagsterInstance, run_id: str) -> list[StepProfile]:
    return per_step(read_jobs(event_logs), step_windows(instance, run_id))


def markdown(profiles: list[StepProfile]) -> str:
    """The profile as a Markdown table, with a total row."""
    lines = [
        "| step | Spark jobs | stages | job seconds, summed | executor CPU seconds | step (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in profiles:
        lines.append(
            f"| {p.step} | {p.jobs} | {p.stages} | {p.spark_seconds:.1f} | {p.cpu_seconds:.1f} | {p.step_seconds:.1f} |"
        )
    jobs, stages = sum(p.jobs for p in profiles), sum(p.stages for p in profiles)
    spark, wall = sum(p.spark_seconds for p in profiles), sum(p.step_seconds for p in profiles)
    cpu = sum(p.cpu_seconds for p in profiles)
    lines.append(f"| **all steps** | {jobs} | {stages} | {spark:.1f} | {cpu:.1f} | {wall:.1f} |")
    lines += ["", "Where each step's jobs come from (the line of code that started them):", ""]
    lines += ["| step | started by | jobs | job seconds | executor CPU seconds |", "|---|---|---:|---:|---:|"]
    for p in profiles:
        for site, count, seconds, cpu in sorted(p.sites, key=lambda item: -item[3]):
            lines.append(f"| {p.step} | `{site}` | {count} | {seconds:.1f} | {cpu:.1f} |")
    return "\n".join(lines) + "\n"
