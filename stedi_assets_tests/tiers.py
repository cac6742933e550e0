"""The test tiers, held to what the tests do: `require` fails a test that does what its markers do not say.

The markers (pyproject.toml) name what a test needs; `make check` deselects `graph`, `services` and `browser`, so a
test that runs the whole graph or starts a server without saying so would slip into the fast tier. conftest.py
marks tests by the fixtures they use (`spark`, `s3_server` -> s3, `materialized_lake` -> graph) and records the
running test here before any of its fixtures is set up; the helpers that do the expensive things call `require`:

    tiers.require("graph")     # lakes.materialize_lake: a real run of the asset graph
    tiers.require("services")  # servers.dagster_servers, spark_standalone, spark_connect, run_graph

Outside a pytest test (the benchmarks use servers.py) nothing is recorded and `require` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Running:
    """The test being run: its node id and the names of its markers (its own, its class's and module's)."""

    nodeid: str
    markers: frozenset[str]


current: Running | None = None  # set by conftest.py around each test's setup, call and teardown


def require(marker: str) -> None:
    """Fails the running test, in one line, unless it is marked `marker`; does nothing outside a test."""
    if current is not None and marker not in current.markers:
        import pytest  # only here: servers.py is also imported by the benchmarks, outside pytest

        pytest.fail(f"{current.nodeid} needs what the {marker!r} tier has: mark it {marker}", pytrace=False)
