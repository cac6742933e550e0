"""End to end with the real daemon and webserver (the session's `make up`, its runs on its Connect server:
shared_servers): a dropped landing file is picked up by the sensor and its rows reach the curated tables, while
another team's long run in the same instance goes on (the lake does not wait for it); the UI,
in headless Chromium, shows every asset in its zone group, and a run launched from its launchpad with per-run
settings (another lake root, the `flag` consent policy) uses them.

The UI is driven the way a user reads it: by roles and accessible names (Dagster's icon-only buttons are named
after their icon), the menu items' text and the URL the UI writes. Dagster strips its test ids from production
builds, so there are none to use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterRun, DagsterRunStatus

from stedi_assets.definitions import defs
from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.tables import (
    ACCELEROMETER_TRUSTED,
    ALL_TABLES,
    CUSTOMER_CURATED,
    MACHINE_LEARNING_CURATED,
    STEP_TRAINER_TRUSTED,
)
from stedi_assets_tests.lakes import DAGSTER, duckdb_source, generate_lake, table_frame
from stedi_assets_tests.servers import Servers

pytest_plugins = ["stedi_assets_tests.shared_servers"]
pytestmark = [pytest.mark.services, pytest.mark.graph]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NEW_READING_TIME = 1_800_000_000_000  # 2027-01-15: later than every generated reading and consent
# Runs share the machine's 2 cores with the test session, the servers and the browser.
RUN_TIMEOUT_SECONDS = 900
UI_TIMEOUT_MS = 60_000
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# Wide enough for the whole graph, its groups expanded, at a scale where the node names can be read.
GRAPH_VIEWPORT = {"width": 2400, "height": 1500}
LAUNCHPAD_VIEWPORT = {"width": 1600, "height": 1000}
ASSET_PAGE_VIEWPORT = {"width": 1600, "height": 2200}  # the page scrolls inside itself: tall enough for all of it


def _shown_as(name: str) -> re.Pattern:
    """The name as a zoomed-out graph node shows it: whole, or with its middle replaced by an ellipsis."""
    shortened = "|".join(
        f"{re.escape(name[:i])}…{re.escape(name[j:])}" for i in range(3, len(name)) for j in range(i + 1, len(name))
    )
    return re.compile(f"^({re.escape(name)}|{shortened})$")


def _expect_nodes(page, names: list[str]) -> None:
    """The graph shows one node per name, each labelled with its name (possibly shortened). Shortened labels
    can be ambiguous (two quarantine tables both show "step_t…_quarantine" when zoomed out): the count of
    labels is what tells that neither is missing."""
    from playwright.sync_api import expect

    labels = page.get_by_text(re.compile("|".join(_shown_as(name).pattern for name in names))).locator("visible=true")
    expect(labels).to_have_count(len(names), timeout=UI_TIMEOUT_MS)
    shown = labels.all_inner_texts()
    for name in names:
        assert any(_shown_as(name).match(label) for label in shown), f"{name} is not in the graph: {shown}"


def _choose(page, menu: object, item: str) -> None:
    """Opens a menu and chooses an item by its text. The graph re-renders as live data arrives (each sensor tick,
    every second here), which can detach an open menu before the click lands: then the menu is opened again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for _ in range(5):
        menu.click()  # type: ignore[attr-defined]
        try:
            page.get_by_role("menuitem", name=item).click(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"the menu item {item!r} could not be chosen in five tries")


def _sql(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


def _groups() -> dict[str, str]:
    """Every asset the code location defines (the registry's zone tables and erasure_receipts), by group."""
    graph = defs().resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}


def _row_counts(servers: Servers, run: DagsterRun) -> dict[str, int]:
    """The row count each materialization of the run reports."""
    events = servers.instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    counts = {}
    for event in events:
        materialization = event.asset_materialization
        if "dagster/row_count" in materialization.metadata:
            counts[materialization.asset_key.to_user_string()] = materialization.metadata["dagster/row_count"].value
    return counts


@pytest.fixture
def servers(services_up: Servers) -> Servers:
    """`make up` on a lake of its own, shared with the other tests of the session that need it (shared_servers)."""
    return services_up


@contextmanager
def another_teams_long_run(servers: Servers, work: Path) -> Iterator[DagsterRun]:
    """A run of another team's job (another_team.py) in the lake's instance, unfinished until the block ends."""
    release = work / "release"
    env = {**os.environ, "DAGSTER_HOME": servers.instance.root_directory, "ANOTHER_TEAM_RELEASE": str(release)}
    command = [str(DAGSTER), "job", "execute", "-f", str(Path(__file__).with_name("another_team.py")), "-j"]
    process = subprocess.Popen(
        [*command, "nightly_report"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def started() -> DagsterRun | None:
            return next(
                (run for run in servers.runs(DagsterRunStatus.STARTED) if run.job_name == "nightly_report"), None
            )

        yield servers.wait_for(started, RUN_TIMEOUT_SECONDS, "another team's run to start")
        release.touch()
        assert process.wait(timeout=RUN_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_dropped_landing_file_reaches_the_curated_tables(servers: Servers, tmp_path: Path) -> None:
    # The sensor's first tick sees every file of the new lake and loads it.
    servers.initial_load(RUN_TIMEOUT_SECONDS)
    # Another team's run is going on in the same instance all along: the lake's sensor does not wait for it.
    with another_teams_long_run(servers, tmp_path) as other:
        before = _sql(f"select count(*) from {duckdb_source(servers.lake, MACHINE_LEARNING_CURATED)}")[0][0]
        # A curated customer whose device has trusted readings: one owner, so new readings are not quarantined.
        email, serial = _sql(
            f"select email, serialNumber from {duckdb_source(servers.lake, CUSTOMER_CURATED)} where serialNumber in"
            f" (select serialNumber from {duckdb_source(servers.lake, STEP_TRAINER_TRUSTED)}) order by email limit 1"
        )[0]

        dropped = time.monotonic()
        phone = {"user": email, "timestamp": NEW_READING_TIME, "x": 0.5, "y": -0.25, "z": 1.0}
        device = {"sensorReadingTime": NEW_READING_TIME, "serialNumber": serial, "distanceFromObject": 42}
        # Written whole under a hidden name, then renamed, as a feed delivering files should.
        for feed, record in (("accelerometer", phone), ("step_trainer", device)):
            staged = servers.lake / feed / "landing" / f".new-{feed}.json"
            staged.write_text(json.dumps(record) + "\n")
            os.rename(staged, staged.with_name(f"new-{feed}.json"))

        def run_for_new_files():
            for run in servers.runs(DagsterRunStatus.SUCCESS):
                if "new-step_trainer.json" in run.tags.get("stedi/landing_files", ""):
                    return run
            return None

        run = servers.wait_for(run_for_new_files, RUN_TIMEOUT_SECONDS, "the run of the dropped files")
        print(f"file drop -> run SUCCESS: {time.monotonic() - dropped:.1f}s")
        assert run.tags["stedi/landing_feeds"] == "accelerometer_landing,step_trainer_landing"
        ml = duckdb_source(servers.lake, MACHINE_LEARNING_CURATED)
        rows = _sql(f"select distanceFromObject, x, y, z from {ml} where sensorReadingTime = {NEW_READING_TIME}")
        assert rows == [(42, 0.5, -0.25, 1.0)]
        assert _sql(f"select count(*) from {ml}")[0][0] == before + 1
        assert servers.instance.get_run_by_id(other.run_id).status == DagsterRunStatus.STARTED  # unfinished all along
    assert servers.instance.get_run_by_id(other.run_id).status == DagsterRunStatus.SUCCESS


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="LOUD: Debian's chromium is not installed (make setup installs it as root)"
)
def test_the_ui_shows_every_asset_and_launches_a_run_with_per_run_settings(servers: Servers, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("STEDI_SCREENSHOT_DIR", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    # The sensor's first run done, whichever test comes first: the UI re-renders its pages while a run goes on.
    servers.initial_load(RUN_TIMEOUT_SECONDS)
    # The launchpad run goes to another lake (the fixture's lake is the sensor's): its expected counts are exact.
    other_lake = tmp_path / "other-lake"
    generate_lake(other_lake, customers=12)
    expected = json.loads((other_lake / EXPECTED_FILE).read_text())["tables"]
    assert expected["flag"][ACCELEROMETER_TRUSTED.name] != expected["since"][ACCELEROMETER_TRUSTED.name]
    groups = _groups()
    # What the UI must show: every registered table and the erasure receipts, in the three groups of the data's
    # path (test_definitions says which asset is in which).
    assert set(groups) == {*ALL_TABLES, "erasure_receipts"}
    assert set(groups.values()) == {"landing", "trusted", "curated"}

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        page = browser.new_page(viewport=GRAPH_VIEWPORT)

        # Each group's lineage page shows its own assets (others only as links).
        for group in sorted(set(groups.values())):
            page.goto(f"{servers.url}/locations/stedi_assets/asset-groups/{group}/lineage")
            expect(page.get_by_role("button", name="Materialize all")).to_be_visible(timeout=UI_TIMEOUT_MS)
            _expect_nodes(page, [name for name, g in groups.items() if g == group])

        # The global lineage with every group expanded. "settings" (exact) is the graph's icon-only settings
        # button (the navigation's is "settings Settings"); its menu items are named by their text.
        page.goto(f"{servers.url}/asset-groups")
        expect(page.get_by_role("button", name="Materialize all")).to_be_visible(timeout=UI_TIMEOUT_MS)
        graph_settings = page.get_by_role("button", name="settings", exact=True)
        _choose(page, graph_settings, "Change graph to vertical orientation")  # the compact layout
        _choose(page, graph_settings, "Expand all groups")
        expect(page).to_have_url(re.compile(r"[?&]expanded="))  # the UI writes the expanded groups in the URL
        page.reload()  # and a page loaded at that URL fits the whole expanded graph in view
        expect(page.get_by_role("button", name="Materialize all")).to_be_visible(timeout=UI_TIMEOUT_MS)
        _expect_nodes(page, list(groups))
        page.screenshot(path=str(shots / "asset-graph.png"))

        # The launchpad for every asset (shift-click on "Materialize all" opens it), with per-run settings. The
        # editor's text is replaced whole: typing line by line would be re-indented by the editor.
        page.set_viewport_size(LAUNCHPAD_VIEWPORT)
        before = {run.run_id for run in servers.runs()}
        page.get_by_role("button", name="Materialize all").click(modifiers=["Shift"])
        launchpad = page.get_by_role("dialog")
        expect(launchpad.get_by_text("Launchpad (configure assets)")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(launchpad.get_by_text("consent_policy")).to_be_visible(timeout=UI_TIMEOUT_MS)
        config = (
            "resources:\n"
            "  lake:\n"
            "    config:\n"
            f"      root: {other_lake}\n"
            "  privacy:\n"
            "    config:\n"
            "      consent_policy: flag\n"
            "      pseudonym_key:\n"
            "        env: STEDI_PSEUDONYM_KEY\n"
        )
        launchpad.get_by_role("textbox").last.focus()  # the config editor's input
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.insert_text(config)
        expect(launchpad.get_by_text("consent_policy: flag")).to_be_visible()
        expect(launchpad.get_by_text("No errors")).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=str(shots / "launchpad.png"))
        launched = time.monotonic()
        launchpad.get_by_role("button", name="Materialize", exact=False).last.click()
        # Once launched, the UI opens the run's page.
        run_page = re.compile(rf"{re.escape(servers.url)}/runs/([0-9a-f-]{{36}})")
        expect(page).to_have_url(run_page, timeout=UI_TIMEOUT_MS)
        run_id = run_page.match(page.url).group(1)
        assert run_id not in before

        def launched_run_finished():
            run = servers.instance.get_run_by_id(run_id)
            return run if run is not None and run.status in FINISHED else None

        run = servers.wait_for(launched_run_finished, RUN_TIMEOUT_SECONDS, "the run launched from the launchpad")
        print(f"launchpad click -> run SUCCESS (every asset, another lake, flag): {time.monotonic() - launched:.1f}s")
        assert run.status == DagsterRunStatus.SUCCESS, f"the launchpad's run {run.run_id} ended {run.status}"
        assert "stedi/landing_files" not in run.tags
        assert run.run_config["resources"]["privacy"]["config"]["consent_policy"] == "flag"
        assert run.run_config["resources"]["lake"]["config"]["root"] == str(other_lake)
        counts = _row_counts(servers, run)
        assert {name: counts[name] for name in expected["flag"]} == expected["flag"]
        assert len(table_frame(other_lake, ACCELEROMETER_TRUSTED)) == expected["flag"][ACCELEROMETER_TRUSTED.name]

        # An asset's page: its latest materialization's metadata, its checks (the badge's pop-over names them)
        # and its column schema.
        page.set_viewport_size(ASSET_PAGE_VIEWPORT)
        page.goto(f"{servers.url}/assets/{MACHINE_LEARNING_CURATED.name}")
        expect(page.get_by_text("rows_quarantined").first).to_be_visible(timeout=UI_TIMEOUT_MS)
        for column in MACHINE_LEARNING_CURATED.columns:
            expect(page.get_by_role("cell", name=column, exact=True)).to_be_visible()
        latest_checks = page.get_by_text("Latest check results", exact=True).locator("..")
        latest_checks.get_by_role("img", name="check_circle").hover()
        expect(page.get_by_text("Succeeded checks")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_role("link", name="contract")).to_be_visible()
        page.screenshot(path=str(shots / "asset-page.png"))
        browser.close()
    for name in ("asset-graph.png", "launchpad.png", "asset-page.png"):
        assert (shots / name).stat().st_size > 10_000, name
