"""The tiers hold: a test is marked by the fixtures it uses, and one that runs what its markers do not say fails."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from stedi_assets_tests import conftest, tiers


def test_a_test_that_runs_the_graph_without_its_marker_fails_in_one_line() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"test_tiers\.py::.* needs .*'graph'.*: mark it graph$"):
        tiers.require("graph")
    with pytest.raises(pytest.fail.Exception, match=r"mark it services$"):
        tiers.require("services")


@pytest.mark.s3
def test_a_marked_test_may() -> None:
    assert tiers.current is not None and "s3" in tiers.current.markers
    tiers.require("s3")


def test_outside_a_test_nothing_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmarks start servers through servers.py, outside pytest."""
    monkeypatch.setattr(tiers, "current", None)
    tiers.require("services")


@dataclass
class Item:
    fixturenames: list[str]
    markers: list[str] = field(default_factory=list)

    def add_marker(self, marker: str) -> None:
        self.markers.append(marker)


def test_tests_are_marked_by_the_fixtures_they_use() -> None:
    items = [
        Item(["tmp_path"]),
        Item(["spark", "tmp_path"]),
        Item(["s3_bucket", "s3_server"]),  # through another fixture: fixturenames holds the closure
        Item(["lake", "materialized_lake", "spark", "tmp_path_factory"]),
    ]
    conftest.pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [item.markers for item in items] == [[], ["spark"], ["s3"], ["spark", "graph"]]
