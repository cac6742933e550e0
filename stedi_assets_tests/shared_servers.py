"""Servers that the tests of one pytest session share: a pytest plugin, named in `pytest_plugins` by each test
module that uses it (a fixture imported into two modules would be two fixtures, each started once).

`services_up` is `make up` on a lake of its own: a Spark Connect server as `up` starts it for a local lake, the
Dagster daemon and the webserver, each in its own process group. The first test that asks for it starts it;
`make down` stops it right after the last test of the session that asks for it (not at the end of the session:
the tests after it get the machine back), checked to leave no process of any of its groups behind
(`servers.dagster_servers`): a failure there is an error in the teardown of that last test.

Its sensor loads the lake as soon as the daemon runs (`Servers.initial_load`); its Connect server
(`Servers.connect`) also serves the tests that need only a Connect server as `make up` starts one.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack

import pytest

from stedi_assets_tests.lakes import generate_lake
from stedi_assets_tests.servers import UNRELATED_SECRET, Servers, dagster_servers

FIXTURE = "services_up"
# The sensor's lake: its initial load is read by the sensor test (counts) and the file-drop test (a curated
# customer whose device has trusted readings, to send new readings for).
LAKE_CUSTOMERS = 20

_running: list[ExitStack] = []  # the started stack, until it is stopped


@pytest.fixture(scope="session")
def services_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    work = tmp_path_factory.mktemp("services-up")
    lake = work / "lake"
    generate_lake(lake, customers=LAKE_CUSTOMERS)
    with ExitStack() as running:
        # In this process's environment while `up` starts the services: no process of theirs may hold it.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(*UNRELATED_SECRET)
            servers = running.enter_context(dagster_servers(work / "home", lake, work / "services", connect=True))
        _running.append(running)
        yield servers
        if _running:  # not stopped early (an interrupted session): stopped here
            _running.pop().close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Once the last test that uses `services_up` is torn down, `make down`."""
    result = yield
    if _running:
        items = item.session.items
        later = items[items.index(item) + 1 :] if item in items else []
        if not any(FIXTURE in getattr(other, "fixturenames", ()) for other in later):
            _running.pop().close()
    return result
