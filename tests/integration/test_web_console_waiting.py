"""The console's header counts, on every page, the steps that wait on the logged-in person
across pairs (api/waiting.py), with a link to the run that waits: in a real browser
(Debian's Chromium through Playwright), against a real dev server, worker and lab."""

from __future__ import annotations

import time

from playwright.async_api import Page
from temporalio.client import Client

from api.waiting import READ_EVERY
from tests.support.cli import cli
from tests.support.console import console_lab, logged_in, shot
from tests.support.driving import switch_waiting_at_stop_insync


async def header_says(page: Page, url: str, want: str | None) -> None:
    """Load `url` until its header says `want` (None: no count), within the time the
    count may be old (READ_EVERY) and a second more."""
    deadline = time.monotonic() + READ_EVERY + 1
    while True:
        await page.goto(url)
        waiting = page.locator("header.top #waiting")
        said = await waiting.inner_text() if await waiting.count() else None
        if said == want or time.monotonic() > deadline:
            break
        await page.wait_for_timeout(250)
    assert said == want, f"{url}: the header says {said!r}"


async def test_the_header_counts_the_steps_that_wait_for_the_person(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(objectives={"time_to_serve": "20m"})
    pair = lab.inventory.pair
    async with console_lab(temporal, lab) as (server, browser):
        page = await logged_in(browser, server, lab, "operator")
        await header_says(page, f"{server.url}/", None)

        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y")
        await header_says(page, f"{server.url}/", "1 step waits for you")
        link = page.locator("header.top #waiting")
        assert await link.get_attribute("href") == f"/pairs/{pair}/run"
        assert "stop-insync" in str(await link.get_attribute("title"))
        await shot(page, "waiting-overview")
        # Another page, drawn from the same read.
        await header_says(page, f"{server.url}/pairs/{pair}/runs", "1 step waits for you")
        await link.click()
        await page.wait_for_url(f"{server.url}/pairs/{pair}/run")
        row = page.locator("tr.step.awaiting-confirmation")
        assert await row.get_attribute("data-step") == "stop-insync"

        # A viewer may act on none of it.
        viewer = await logged_in(browser, server, lab, "viewer")
        await header_says(viewer, f"{server.url}/", None)

        # Once the run no longer waits, the count goes.
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over")
        assert rc == 0, out
        await header_says(page, f"{server.url}/pairs/{pair}", None)

        # The runs page names the objective; the aborted run never served, and had not
        # outlasted the objective: no time, neither met nor missed.
        await page.goto(f"{server.url}/pairs/{pair}/runs")
        said = await page.locator("p.objective").inner_text()
        assert said == "Objective: time to serve at most 20 min.", said
        assert await page.locator(f"#run-{run} td.served").inner_text() == "-"
