"""Rule no-switch-in-blackout on the dev server and the lab: a client restart due inside
an on-air window waits for its end (the checklist says so), a start inside a window is
refused naming it and its end in local time, and a break-glass override starts it and is
recorded. One lab for all of it (the suite's time budget); each part reads the windows
through a worker started on the inventory as it then is."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from playwright.async_api import expect
from temporalio.client import Client

from tests.support.blackout import news_at
from tests.support.cli import cli, cli_json
from tests.support.console import console_lab, logged_in
from tests.support.driving import drive, hands_for, step
from tests.support.lab import Lab
from tests.support.secrets import record_history, record_run
from tests.support.worker import running_worker
from workflows import blackout

RULE = "no-switch-in-blackout"


async def test_blackout_windows_on_the_lab(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    await _a_client_restart_waits_for_the_window_to_end(temporal, lab)
    await _a_start_on_air_is_refused_and_an_override_is_recorded(temporal, lab)


async def _a_client_restart_waits_for_the_window_to_end(temporal: Client, lab: Lab) -> None:
    # The window begins once the run waits at stop-allsync, the last person's step
    # before the clients; the start itself is off air.
    begins, ends = news_at(lab, datetime.now(UTC) + timedelta(seconds=25), 20)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "stop-allsync")["status"] == "awaiting-confirmation",
        )
        assert datetime.now(UTC) < begins, "the run reached stop-allsync after the window began"
        await asyncio.sleep((begins - datetime.now(UTC)).total_seconds() + 0.5)
        hands_for(lab, "stop-allsync", "Y")
        rc, out = await cli(temporal, lab, "confirm", run, "stop-allsync", "--operator", "tester")
        assert rc == 0, out
        held = f"clients held for News at Six until {blackout.local(ends)}"
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "switch-clients")["note"] == held,
            timeout=20,
        )
        assert step(shown, "switch-clients")["status"] == "running", shown
        assert datetime.now(UTC) < ends
        rc, text = await cli(temporal, lab, "show", run)
        assert held in text, text
        final = await drive(temporal, lab, run, "Y", timeout=120)
    assert final["state"] == "completed", final
    [cp] = step(final, "switch-clients")["clients"]
    assert cp["status"] == "done", cp
    # The batch that restarted the client started once the window had ended.
    batch = await temporal.get_workflow_handle(cp["workflow_id"]).describe()
    assert batch.start_time >= ends, (batch.start_time, ends)
    assert step(final, "switch-clients")["note"] != held
    await record_run(temporal, lab, run, "switch-held-for-blackout.json")
    record_history(
        await temporal.get_workflow_handle(cp["workflow_id"]).fetch_history(),
        "client-batch-held-for-blackout.json",
    )


async def _a_start_on_air_is_refused_and_an_override_is_recorded(
    temporal: Client, lab: Lab
) -> None:
    begins, ends = news_at(lab, datetime.now(UTC) - timedelta(seconds=5), 600)
    on_air = f"on air now: News at Six until {blackout.local_day(ends)}"
    async with running_worker(temporal, lab):
        # The check and the dry run say so (text and --json).
        rc, out = await cli(temporal, lab, "check")
        assert on_air in out, out
        rc, out = await cli(temporal, lab, "check", "--json")
        assert json.loads(out)["next_blackout"] == on_air, out
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "X", "--dry-run", "--json")
        assert rc == 1, out  # it would be refused
        dry = json.loads(out)
        assert dry["next_blackout"] == on_air, dry
        assert dry["refused"].startswith(f"rule '{RULE}': on air: News at Six"), dry
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "X")
        assert rc == 1, out
        assert (
            f"rule '{RULE}': on air: News at Six until {blackout.local(ends)}; no switch "
            "starts and no client restarts in a blackout window (docs/operators/blackout.md)"
        ) in out, out

        # An override needs its reason, refused before anything starts.
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "X", "--override", RULE)
        assert rc == 2, out
        assert "needs --override-reason TEXT" in out, out

        # A control that restarts a client is refused on air too; overridden, recorded.
        rc, out = await cli(temporal, lab, "reboot", "ED-01")
        assert rc == 1, out
        assert f"reboot refused: rule '{RULE}': on air: News at Six" in out, out
        assert f"--override {RULE} --reason TEXT" in out, out
        r = await cli_json(
            temporal,
            lab,
            "reboot",
            "ED-01",
            "--operator",
            "ann",
            "--override",
            RULE,
            "--reason",
            "hung",
        )
        [rec] = r["overrides"]
        assert (rec["rule"], rec["used"], rec["reason"]) == (RULE, True, "hung"), rec

        started = await cli_json(
            temporal,
            lab,
            "start",
            "switch",
            "--to",
            "X",
            "--operator",
            "ann",
            "--override",
            RULE,
            "--override-reason",
            "Y's DSM is failing; the newsroom agreed",
        )
        run = started["run_id"]
        shown = await cli_json(temporal, lab, "show", run)
        [rec] = shown["overrides"]
        assert (rec["rule"], rec["operator"], rec["used"]) == (RULE, "ann", True), rec
        assert rec["reason"] == "Y's DSM is failing; the newsroom agreed"
        assert rec["outcome"] == (
            f"used: started on air during News at Six (until {blackout.local(ends)})"
        )
        rc, text = await cli(temporal, lab, "show", run)
        assert f"override of {RULE} by ann" in text, text
        rc, out = await cli(
            temporal, lab, "abort", run, "--reason", "test over", "--operator", "ann"
        )
        assert rc == 0, out
        for _ in range(100):
            if (await cli_json(temporal, lab, "show", run))["state"] == "aborted":
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"run {run} was not aborted")
        await record_run(temporal, lab, run, "switch-blackout-override.json")


async def test_the_console_starts_on_air_with_a_break_glass_override(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory
) -> None:
    # On a site with on-air windows every start goes through its form, which offers the
    # override (an unplanned switch during a newscast must be possible from the console).
    lab: Lab = await lab_factory(editors=1, ingest=0)
    _, ends = news_at(lab, datetime.now(UTC) - timedelta(seconds=5), 600)
    async with console_lab(temporal, lab) as (server, browser):
        page = await logged_in(browser, server, lab, "operator")
        await page.goto(f"{server.url}/pairs/{lab.inventory.pair}")
        await page.get_by_role("button", name="Start switch to Y").click()  # to its form
        await page.get_by_text("Break-glass override (rule, reason)").click()
        await page.get_by_label(RULE).check()
        await page.get_by_label("Override reason").fill("the news studio is on fire")
        await page.get_by_role("button", name="Start switch to Y").click()
        await expect(page.locator("p.flash").first).to_contain_text("started switch")
        shown = await cli_json(temporal, lab, "show", "current")
        assert shown["state"] in ("running", "awaiting-operator"), shown
        (o,) = shown["overrides"]
        assert (o["rule"], o["operator"], o["reason"], o["used"]) == (
            RULE,
            "operator",
            "the news studio is on fire",
            True,
        ), o
        assert blackout.local(ends) in " ".join(o["overrode"]), o
        rc, out = await cli(temporal, lab, "abort", shown["run_id"], "--reason", "test over")
        assert rc == 0, out
