"""The night X is lost: an unplanned switch to Y, the fence, and the restore with Y main.

On the lab, end to end: the whole side X goes down (`lab fault --side X down`); a
planned switch is refused with advice; the unplanned switch skips X's steps as `side
lost`, switches the editors that answer and lists the one that does not, and ends
split-brained on purpose without starting replication; the fence keeps trying without
growing its history and fences X within a bounded time once X is back; the editor left
behind is switched with the console control; the restore with Y main shows the clip
only X has before X is overwritten, and the pair ends mirrored with Y main.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from client.session import EXIT_USAGE
from lab.faults import set_fault, set_side_fault
from lab.hands import set_insync
from lab.media import ingest
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.fences import fence_on_x
from tests.support.lab import Lab
from tests.support.secrets import assert_no_secrets_in_pair, record_history, record_run
from tests.support.waiting import side_down, wait_for
from tests.support.worker import running_worker
from workflows.unplanned import NOT_UNPLANNED

LOST_STEPS = ("stop-replication", "dsm-x-backup", "stop-allsync", "smartbins-x-backup")
REASON = "X lost: power cut in hall X"


async def fence_view(temporal: Client, lab) -> dict:  # type: ignore[no-untyped-def]
    return (await cli_json(temporal, lab, "fence"))["fence"]


async def test_the_night_x_is_lost(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=0)
    async with running_worker(temporal, lab):
        switch_run, shown = await _the_unplanned_switch(temporal, lab)
        handle, fence = await _the_fence_waits_for_x(temporal, lab, shown)
        await _x_comes_back_and_is_fenced(temporal, lab, fence)

        # The editor left behind comes back and is switched with the console control.
        set_fault(lab.dir, "ED-02", "clear")
        r = await cli_json(temporal, lab, "clients", "switch", "--to", "Y", "ED-02")
        assert "1 client(s) switched to Y" in r["message"], r

        # Restore with Y main: it shows what X alone has before X is overwritten.
        started = await cli_json(temporal, lab, "start", "restore", "--main", "Y")
        shown = await drive(temporal, lab, started["run_id"], "Y", timeout=150)
        assert shown["state"] == "completed", shown
        found = step(shown, "find-orphans")
        assert any("late-news" in c for c in found["items"] or []), found
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y"), status

        # The fence is listed with the pair's runs.
        listed = await cli_json(temporal, lab, "runs", "--kind", "fence")
        assert [(r["kind"], r["state"], r["initiator"]) for r in listed["runs"]] == [
            ("fence", "completed", "night")
        ], listed

        # Ending a fence that is over is refused with what it did.
        rc, out = await cli(temporal, lab, "fence", "end", "--reason", "done")
        assert rc != 0 and "not running" in out and "X fenced" in out, out

        # The run report says it was unplanned, why, and which steps the lost side skipped.
        rc, out = await cli(temporal, lab, "report", switch_run)
        assert rc == 0, out
        assert f"yes: {REASON}" in out and "side lost" in out and "amsm-" in out, out
        await record_run(temporal, lab, switch_run, "unplanned-switch.json")
        await record_run(temporal, lab, started["run_id"], "restore-after-unplanned.json")
        record_history(await handle.fetch_history(), "fence.json")
        # Every history of the night, every payload decoded: the fence, the clients'
        # children, the console control, status, the restore.
        kinds = await assert_no_secrets_in_pair(temporal, lab)
        assert {"switch", "fence", "restore", "control", "client-batch"} <= set(kinds), kinds


async def _the_unplanned_switch(temporal: Client, lab: Lab) -> tuple[str, dict]:
    """X is lost (its clip recorded with InSync stopped, ED-02 down too): the switch is
    refused until it is unplanned with a reason, then completes. Its run id and checklist."""
    # A clip recorded on X just before the fire, InSync stopped: only X has it.
    set_insync(lab.dir, running=False)
    ingest(lab.dir, "X", "late-news")
    out = set_side_fault(lab.dir, "X", "down")
    assert "side X down" in out and "dsm-x" in out
    await wait_for(side_down(lab, "X"), "side X down")
    set_fault(lab.dir, "ED-02", "unreachable")

    rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--operator", "night")
    assert rc != 0, out
    assert "X does not answer (DSM dsm-x" in out and "--unplanned --reason" in out, out
    rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--unplanned")
    assert rc == EXIT_USAGE and "needs a reason" in out, out

    started = await cli_json(
        temporal, lab, "start", "switch", "--to", "Y", "--unplanned", "--reason", REASON,
        "--operator", "night",
    )  # fmt: skip
    switch_run = started["run_id"]
    shown = await drive(temporal, lab, switch_run, "Y", timeout=150)
    assert shown["state"] == "completed", shown
    assert shown["unplanned_reason"] == REASON
    for sid in LOST_STEPS:
        s = step(shown, sid)
        assert s["status"] == "skipped", s
        assert s["note"].startswith("skipped: side lost: "), s
    assert "on Y: replication stopped on DSM dsm-y" in step(shown, "stop-replication")["note"]
    for sid in NOT_UNPLANNED:
        s = step(shown, sid)
        assert s["status"] == "skipped" and "restore --main Y" in s["note"], s
    for sid in ("dsm-y-main", "smartbins-y-main", "switch-browse", "start-browse"):
        assert step(shown, sid)["status"] == "done", step(shown, sid)
    clients = {c["host"]: c["status"] for c in step(shown, "switch-clients")["clients"]}
    assert clients == {"ED-01": "done"}, clients
    assert "not switched (did not answer): ED-02" in step(shown, "switch-clients")["message"]
    msg = shown["message"]
    assert "split-brained on purpose" in msg and "amsm start restore --main Y" in msg, msg
    assert "amsm clients switch --to Y ED-02" in msg, msg
    return switch_run, shown


async def _the_fence_waits_for_x(
    temporal: Client, lab: Lab, shown: dict
) -> tuple[WorkflowHandle[Any, Any], dict]:
    timing = lab.inventory.timing
    # The fence waits for X: the server retries, the history does not grow.
    assert shown["fence_state"]["state"]["status"] == "waiting", shown["fence_state"]
    fence = await fence_view(temporal, lab)
    handle = temporal.get_workflow_handle(fence["workflow_id"], run_id=fence["run_id"])
    events = len((await handle.fetch_history()).events)
    tries = fence["tries"]
    await asyncio.sleep(2 * timing.fence_max_interval + 1)
    fence = await fence_view(temporal, lab)
    assert fence["tries"] > tries and "not fenced yet" in (fence["last_error"] or ""), fence
    assert len((await handle.fetch_history()).events) == events
    status = await cli_json(temporal, lab, "status")
    assert status["dsm"]["Y"]["mode"] == "main" and not status["dsm"]["X"]["reachable"]
    assert status["fence"]["state"]["status"] == "waiting", status["fence"]
    rc, out = await cli(temporal, lab, "status")
    assert rc == 0 and "Fence on X" in out and "waiting" in out, out
    return handle, fence


async def _x_comes_back_and_is_fenced(temporal: Client, lab: Lab, fence: dict) -> None:
    timing = lab.inventory.timing
    # X comes back: fenced within the bound (one backoff interval and one try).
    set_side_fault(lab.dir, "X", "up")
    began = time.monotonic()
    bound = timing.fence_max_interval + timing.lost_side_timeout + 5
    while fence["state"]["status"] == "waiting":
        assert time.monotonic() - began < bound, f"not fenced within {bound} s: {fence}"
        await asyncio.sleep(0.3)
        fence = await fence_view(temporal, lab)
    assert fence["state"]["status"] == "fenced", fence
    status = await cli_json(temporal, lab, "status")
    assert status["dsm"]["X"]["mode"] == "backup", status["dsm"]["X"]
    assert status["dsm"]["X"]["replication"] != "running"
    assert status["dsm"]["Y"]["mode"] == "main" and status["fence"] is None
    assert [s["mode"] for s in status["smartbins"] if s["side"] == "X" and s["running"]] == [
        "Pseudo"
    ], status["smartbins"]


async def test_an_operator_ends_a_fence_by_hand(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "fence")
        assert rc == 0 and "no fence has run" in out, out
        handle = await fence_on_x(temporal, lab)
        fence = await fence_view(temporal, lab)
        while fence["tries"] < 2:
            await asyncio.sleep(0.3)
            fence = await fence_view(temporal, lab)
        # While it waits, no run may make X main (the fence would undo it).
        for argv in (("switch", "--to", "X"), ("split", "--main", "Y")):
            rc, out = await cli(temporal, lab, "start", *argv)
            assert rc != 0 and "the fence on X" in out and "amsm fence end" in out, out
        rc, out = await cli(temporal, lab, "fence", "end", "--reason", " ")
        assert rc != 0 and "needs a reason" in out, out
        r = await cli_json(
            temporal,
            lab,
            "fence",
            "end",
            "--reason",
            "X is rebuilt from scratch",
            "--operator",
            "jo",
        )
        st = r["fence"]["state"]
        assert st["status"] == "ended" and st["ended_by"] == "jo", st
        assert "X is rebuilt from scratch" in st["message"] and "X not fenced" in st["message"]
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        set_side_fault(lab.dir, "X", "up")
        status = await cli_json(temporal, lab, "status")
        assert status["dsm"]["X"]["mode"] == "main", "an ended fence must not touch X"


async def test_a_lost_site_without_its_worker_does_not_hold_the_switch(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory
) -> None:
    """Site X lost with its site worker: X's steps wait for no worker longer than the
    lost-side time limit; they are skipped, and Y's steps run on Y's worker."""
    from workers.worker import build_workers

    lab = await lab_factory(editors=1, ingest=0)
    lab.retime(lost_side_timeout=1)
    set_side_fault(lab.dir, "X", "down")
    await wait_for(side_down(lab, "X"), "side X down")
    main, site_y = build_workers(temporal, lab.inventory, lab.inventory_path, sites=("Y",))
    async with main, site_y:
        started = await cli_json(
            temporal, lab, "start", "switch", "--to", "Y", "--unplanned", "--reason", REASON
        )
        shown = await drive(temporal, lab, started["run_id"], "Y", timeout=90)
        assert shown["state"] == "completed", shown
        for sid in LOST_STEPS:
            s = step(shown, sid)
            assert s["status"] == "skipped", s
            assert "side lost: no answer within 1 s" in s["note"], s
        assert step(shown, "dsm-y-main")["status"] == "done"
        fence = await fence_view(temporal, lab)
        assert fence["state"]["status"] == "waiting" and fence["tries"] <= 1, fence
        r = await cli_json(temporal, lab, "fence", "end", "--reason", "site X is rebuilt")
        assert r["fence"]["state"]["status"] == "ended", r
