"""Another team's job in the same Dagster instance as the lake (test_end_to_end): a long run that the lake's
sensor must not wait for. It runs until the file named by ANOTHER_TEAM_RELEASE exists (30 minutes at most)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import job, op

MAX_SECONDS = 1800


@op
def wait_for_release() -> None:
    release = Path(os.environ["ANOTHER_TEAM_RELEASE"])
    deadline = time.monotonic() + MAX_SECONDS
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.5)


@job
def nightly_report() -> None:
    wait_for_release()
