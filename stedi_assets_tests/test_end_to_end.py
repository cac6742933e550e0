"""End to end with the real daemon and webserver: a dropped landing file is picked up by the sensor and its
rows reach the curated tables; the UI, in headless Chromium, shows every zone asset and materializes them."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterRunStatus

from stedi_assets.tables import ALL_TABLES, CUSTOMER_CURATED, MACHINE_LEARNING_CURATED, STEP_TRAINER_TRUSTED, Zone
from stedi_assets_tests.lakes import duckdb_source, generate_lake
from stedi_assets_tests.servers import Servers, dagster_servers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NEW_READING_TIME = 1_800_000_000_000  # 2027-01-15: later than every generated reading and consent


def _expand_all_groups(page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    """Groups start collapsed; "Expand all groups" is in the graph's settings menu, behind one of the
    unlabelled icon buttons in the bottom-right corner (the others zoom, which does no harm)."""
    width = page.viewport_size["width"]
    for button in page.locator("button").all():
        box = button.bounding_box()
        if box is None or box["x"] < width - 100 or box["y"] < 500:
            continue
        button.click()
        item = page.get_by_text("Expand all groups").locator("visible=true")
        try:
            item.first.click(timeout=2_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("the asset graph has no 'Expand all groups' menu item")


def _shown_as(name: str) -> re.Pattern:
    """The name as a graph node shows it: whole, or with its middle replaced by an ellipsis."""
    shortened = "|".join(
        f"{re.escape(name[:i])}…{re.escape(name[j:])}" for i in range(3, len(name)) for j in range(i + 1, len(name))
    )
    return re.compile(f"^({re.escape(name)}|{shortened})$")


def _sql(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Servers:
    work = tmp_path_factory.mktemp("e2e")
    lake = work / "lake"
    generate_lake(lake, customers=20)
    with dagster_servers(work / "home", lake, work / "services") as running:
        yield running


def test_a_dropped_landing_file_reaches_the_curated_tables(servers: Servers) -> None:
    # The sensor's first tick sees every file of the new lake and loads it.
    servers.wait_for(lambda: next(iter(servers.runs(DagsterRunStatus.SUCCESS)), None), 300, "the initial load")
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

    run = servers.wait_for(run_for_new_files, 300, "the run of the dropped files")
    print(f"file drop -> run SUCCESS: {time.monotonic() - dropped:.1f}s")
    assert run.tags["stedi/landing_feeds"] == "accelerometer_landing,step_trainer_landing"
    ml = duckdb_source(servers.lake, MACHINE_LEARNING_CURATED)
    rows = _sql(f"select distanceFromObject, x, y, z from {ml} where sensorReadingTime = {NEW_READING_TIME}")
    assert rows == [(42, 0.5, -0.25, 1.0)]
    assert _sql(f"select count(*) from {ml}")[0][0] == before + 1


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="LOUD: Debian's chromium is not installed (make setup installs it as root)"
)
def test_the_ui_shows_every_zone_asset_and_materializes_them(servers: Servers, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("STEDI_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    before = {run.run_id for run in servers.runs()}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # Each zone group's lineage shows its assets by name (Dagster shortens long names in the middle).
        for zone in Zone:
            page.goto(f"{servers.url}/locations/stedi_assets/asset-groups/{zone.value}/lineage")
            expect(page.get_by_text("Materialize", exact=False).first).to_be_visible(timeout=60_000)
            for table in (t for t in ALL_TABLES.values() if t.zone is zone):
                expect(page.get_by_text(_shown_as(table.name)).first).to_be_visible(timeout=30_000)

        page.goto(f"{servers.url}/asset-groups")
        expect(page.get_by_text("quarantine", exact=True).last).to_be_visible(timeout=60_000)
        _expand_all_groups(page)
        page.keyboard.press("Escape")
        page.screenshot(path=str(shots / "asset-graph.png"))

        page.get_by_role("button", name="Materialize all").click()
        expect(page.get_by_text("Launched run").first).to_be_visible(timeout=60_000)
        run = servers.wait_for(
            lambda: next((r for r in servers.runs(DagsterRunStatus.SUCCESS) if r.run_id not in before), None),
            300,
            "the run launched from the UI",
        )
        assert "stedi/landing_files" not in run.tags

        page.goto(f"{servers.url}/assets/machine_learning_curated")
        expect(page.get_by_text("rows_quarantined").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(shots / "asset-page.png"), full_page=True)
        browser.close()
    assert (shots / "asset-graph.png").stat().st_size > 10_000
