"""Reports, exports and replays of real lab runs: a switch with a failed client and a
skipped step, and runs that did not complete (refused, terminated). One lab, one test:
the switch is the slow part, the other runs take a second."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from api.runs import fetch_checklist
from client.session import default_operator
from lab.faults import set_fault
from records.history import load_history_file, parse_history, step_table
from records.reconstruct import reconstruct
from tests.support.cli import cli
from tests.support.driving import drive, step, switch_waiting_at_stop_insync
from tests.support.history_cli import amsm
from tests.support.lab import Lab
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workflows.models import Checklist, OperatorSignal


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def same_as_show(steps: list[dict], shown: dict) -> None:
    """The steps read from the history say what `amsm show --json` says."""
    keys = ("id", "kind", "status", "title", "operator", "note", "message", "error")
    assert len(steps) == len(shown["steps"])
    for got, want in zip(steps, shown["steps"], strict=True):
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}, want["id"]
        clients = [(c["host"], c["status"], c["attempts"]) for c in want.get("clients") or []]
        assert [(c["host"], c["status"], c["attempts"]) for c in got["clients"] or []] == clients


async def test_report_export_replay_and_timeline_of_a_lab_switch(
    temporal: Client, lab_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=0, reboot_seconds=0.3)
    # replication_timeout 4 s, not 1: a start counts once it has held for
    # timing.replication_settle (1 s), so a 1 s timeout left only the time of one read for
    # the mending `replication start` below, which a loaded machine did not give it
    # (a fresh clone's `make test`, 2026-12-07). The failing start fails at once on its
    # `failed` state, not at the timeout.
    lab.retime(reboot_timeout=1.5, max_attempts=1, replication_timeout=4)
    set_fault(lab.dir, "ED-02", "no-reboot")
    set_fault(lab.dir, "dsm-y", "replication-fails")
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y")
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        # A signal that does not fit, as the Web UI could send it: rejected and recorded.
        await handle.signal("approve", OperatorSignal(step="stop-insync", operator="mallory"))
        shown = await drive(temporal, lab, run, "Y")
        failed = [c for c in step(shown, "switch-clients")["clients"] if c["status"] == "failed"]
        assert [c["host"] for c in failed] == ["ED-02"], shown
        rc, out = await cli(
            temporal, lab, "skip", run, "switch-clients", "--client", "ED-02",
            "--reason", "PSU dead, swap tomorrow", "--operator", "jo",
        )  # fmt: skip
        assert rc == 0, out
        shown = await drive(temporal, lab, run, "Y")
        assert step(shown, "start-replication")["status"] == "failed", shown
        rc, out = await cli(
            temporal, lab, "skip", run, "start-replication",
            "--reason", "replication started by hand from the console", "--operator", "lead",
        )  # fmt: skip
        assert rc == 0, out
        shown = await drive(temporal, lab, run, "Y")
        assert shown["state"] == "completed", shown
        assert [r["reason"] for r in shown["rejected"]] == [
            "stop-insync is a manual step: use confirm"
        ]

        # Two runs that do not complete: one refused (Y is main now), one terminated while
        # it waits for the operator. First mend what the skipped step left undone.
        set_fault(lab.dir, "dsm-y", "clear")
        rc, out = await cli(temporal, lab, "replication", "start", "Y")
        assert rc == 0, out
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--json")
        assert rc == 1
        refused = json.loads(out)["run_id"]
        back, _ = await switch_waiting_at_stop_insync(temporal, lab, "X")
        back_handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=back)
        await back_handle.signal("confirm", OperatorSignal(step="stop-allsync", operator="tester"))

        async def rejected() -> bool:
            return (await fetch_checklist(back_handle)).rejected_total == 1

        await wait_for(rejected, "the confirm of a step not waiting is rejected")
        before_end = await fetch_checklist(back_handle)
        await back_handle.terminate(reason="maintenance window closed")

    # No worker from here on: everything below reads the history alone.
    rc, out = await amsm("report", run, "--json", temporal=temporal, inv=lab.inventory)
    assert rc == 0, out
    r = json.loads(out)

    _the_summary_and_each_step(r, shown, lab, run)
    _clients_decisions_and_time_to_serve(r)
    await _html_export_replay_and_timeline(temporal, lab, tmp_path, run, r, shown, handle)
    await _a_refused_run(temporal, lab, refused)
    await _a_terminated_run(temporal, lab, back, before_end)

    rc, out = await amsm("report", "0000", temporal=temporal, inv=lab.inventory)
    assert rc == 2 and out.startswith("amsm: no run of pair")


def _the_summary_and_each_step(r: dict, shown: dict, lab: Lab, run: str) -> None:
    """The switch's report `r`, against its checklist `shown`."""
    # -- the summary, field by field
    assert (r["workflow_type"], r["direction"]) == ("switch", "X -> Y")
    assert r["initiator"] == default_operator()  # `amsm start` records who started it
    assert (r["run_id"], r["workflow_id"], r["pair"]) == (
        run,
        lab.inventory.workflow_id,
        lab.inventory.pair,
    )
    assert (r["status"], r["state"]) == ("completed", "completed")
    assert r["result"] == "completed: switch complete: mirrored, Y main"
    started, ended = when(r["started_at"]), when(r["ended_at"])
    assert shown["steps"][0]["started_at"] >= started.isoformat(timespec="seconds")
    assert abs(r["seconds"] - (ended - started).total_seconds()) < 1e-6
    assert r["from_checklist"] and r["consistency"] == [] and r["approximate"] == []

    # -- each step: times from the events that agree with the checklist to the second
    assert len(r["steps"]) == 18
    for got, want in zip(r["steps"], shown["steps"], strict=True):
        assert got["status"] == want["status"], want["id"]
        if want["started_at"]:
            assert got["started_at"][:19] == want["started_at"][:19]
            assert got["ended_at"][:19] == want["ended_at"][:19]
            assert got["seconds"] >= 0
    insync = next(s for s in r["steps"] if s["id"] == "stop-insync")
    assert (insync["how"], insync["operator"], insync["note"]) == (
        "confirmed",
        "tester",
        "did stop-insync",
    )
    gate = next(s for s in r["steps"] if s["id"] == "approve-overwrite")
    assert (gate["how"], gate["operator"]) == ("approved", "tester")
    repl = next(s for s in r["steps"] if s["id"] == "start-replication")
    assert (repl["status"], repl["how"], repl["operator"], repl["reason"]) == (
        "skipped",
        "skipped",
        "lead",
        "replication started by hand from the console",
    )
    assert "replication failed" in repl["error"]


def _clients_decisions_and_time_to_serve(r: dict) -> None:
    started = when(r["started_at"])
    # -- each client: outcome and switch time
    clients = {c["host"]: c for c in r["clients"]}
    assert clients["ED-01"]["status"] == "done" and 0 < clients["ED-01"]["seconds"] < 30
    ed2 = clients["ED-02"]
    assert (ed2["status"], ed2["attempts"], ed2["message"]) == (
        "skipped",
        1,
        "skipped by jo: PSU dead, swap tomorrow",
    )
    assert "did not come back within" in ed2["error"]
    assert ed2["seconds"] >= 1.5

    # -- decisions, rejected signals, errors and warnings
    assert [(d["action"], d["step"], d["client"], d["operator"], d["reason"]) for d in r["decisions"]] == [
        ("skip", "switch-clients", "ED-02", "jo", "PSU dead, swap tomorrow"),
        ("skip", "start-replication", None, "lead", "replication started by hand from the console"),
    ]  # fmt: skip
    assert [(x["signal"], x["step"], x["operator"]) for x in r["rejected"]] == [
        ("approve", "stop-insync", "mallory")
    ]
    errors = " / ".join(e["text"] for e in r["errors"])
    assert "ED-02: client switch failed" in errors and "did not come back" in errors
    assert "dsm_start_replication failed" in errors and "replication failed" in errors
    warnings = [w["text"] for w in r["warnings"]]
    assert "client ED-02 left behind: skipped by jo: PSU dead, swap tomorrow" in warnings
    assert (
        "step start-replication skipped by lead: replication started by hand from the console"
        in warnings
    )

    # -- time until Y was serving: dsm-y-main and switch-clients done
    ends = {s["id"]: when(s["ended_at"]) for s in r["steps"] if s["ended_at"]}
    serving = (max(ends["dsm-y-main"], ends["switch-clients"]) - started).total_seconds()
    assert r["serving"]["seconds"] == serving and serving > 1.5  # ED-02's reboot wait
    assert r["serving"]["hms"] == f"0:00:{round(serving):02d}"


async def _html_export_replay_and_timeline(
    temporal: Client,
    lab: Lab,
    tmp_path: Path,
    run: str,
    r: dict,
    shown: dict,
    handle: WorkflowHandle[Any, Any],
) -> None:
    # -- the HTML file, and markdown to stdout
    page = tmp_path / "report.html"
    prefix = run[:23]  # a unique prefix, as `amsm show` takes it
    rc, out = await amsm("report", prefix, "-o", str(page), temporal=temporal, inv=lab.inventory)
    assert rc == 0 and out.startswith(f"wrote {page}: html report of switch run {run}")
    html = page.read_text()
    assert "PSU dead, swap tomorrow" in html and "@media print" in html
    rc, md = await amsm("report", run, temporal=temporal, inv=lab.inventory)
    assert rc == 0 and "| 16 | start-replication | auto | skipped |" in md

    # -- export, then replay the exported history against today's code
    exported = tmp_path / "run.json"
    rc, out = await amsm("history", "export", run, "-o", str(exported), temporal=temporal, inv=lab.inventory)  # fmt: skip
    assert rc == 0 and out.startswith(f"exported run {run} (switch, ")
    history = await handle.fetch_history()
    assert json.loads(exported.read_text()) == json.loads(history.to_json())
    rc, out = await amsm("replay", str(exported))
    assert (rc, out.strip()) == (0, f"{exported}: ok (switch, {len(history.events)} events)")

    # -- the same report from the file, as it would read a year from now
    rc, out = await amsm("report", str(exported), "--json")
    from_file = json.loads(out)
    assert {k: v for k, v in from_file.items() if k != "source"} == {
        k: v for k, v in r.items() if k != "source"
    }

    # -- the timeline of the exported history matches `show`
    rc, out = await amsm("replay", "--timeline", str(exported), "--json")
    assert rc == 0
    same_as_show(json.loads(out)["steps"], shown)
    rc, text = await amsm("replay", "--timeline", str(exported))
    assert "skip start-replication by lead: replication started by hand from the console" in text
    assert "dsm_start_replication failed" in text and "replication failed" in text
    # and the events alone (no checklist result) reconstruct what `show` says
    run_h = parse_history(load_history_file(exported))
    rec = reconstruct(run_h, step_table("switch", run_h.input))
    for got, want in zip(rec.steps, shown["steps"], strict=True):
        assert (got.status, got.operator, got.note, got.error) == (
            want["status"],
            want["operator"],
            want["note"],
            want["error"],
        ), want["id"]


async def _a_refused_run(temporal: Client, lab: Lab, refused: str) -> None:
    # -- a refused run: failed before any step
    rc, out = await amsm("report", refused, "--json", temporal=temporal, inv=lab.inventory)
    assert rc == 0, out
    r = json.loads(out)
    assert (r["status"], r["state"]) == ("failed", "failed")
    assert r["result"] == "failed: switch to Y refused: Y is already main (mirrored, Y main)"
    assert [s["status"] for s in r["steps"]] == ["pending"] * 18
    assert r["serving"]["seconds"] is None
    assert r["serving"]["basis"].startswith("not reached: dsm-y-main is pending")
    assert r["errors"][-1]["text"].startswith("run failed: switch to Y refused")


async def _a_terminated_run(temporal: Client, lab: Lab, back: str, before_end: Checklist) -> None:
    # -- a terminated run: the steps so far, reconstructed from the events
    rc, out = await amsm("report", "current", "--json", temporal=temporal, inv=lab.inventory)
    r = json.loads(out)
    assert r["run_id"] == back
    assert (r["status"], r["state"]) == ("terminated", "aborted")
    assert "terminated" in r["result"] and "maintenance window closed" in r["result"]
    assert not r["from_checklist"]
    assert "those the engine recorded in the history" in r["approximate"][0]
    assert r["approximate"][1:] == []  # every event is on the step the engine had in hand
    labels = {e["step"] for e in r["timeline"]}
    assert {"(run)", "(bootstrap)", "stop-replication", "switch-browse"} <= labels, labels
    status = {s["id"]: s["status"] for s in r["steps"]}
    assert [status[k] for k in ("stop-replication", "switch-browse", "stop-insync")] == [
        "done",
        "done",
        "awaiting-confirmation",
    ]
    assert status["start-allsync"] == "pending"
    # Each step as the engine recorded it in the history (the memo's step records): what
    # its checklist said the moment before it was terminated, to the second.
    for got, want in zip(r["steps"], before_end.steps, strict=True):
        assert (got["status"], got["operator"], got["note"], got["message"]) == (
            want.status, want.operator, want.note, want.message,
        ), want.id  # fmt: skip
        for mine, theirs in (
            (got["started_at"], want.started_at),
            (got["ended_at"], want.ended_at),
        ):
            assert (mine and mine[:19]) == (theirs and theirs[:19]), want.id
    history = parse_history(
        await temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=back).fetch_history()
    )
    recorded = [(x.step, x.status, x.outcome) for x in history.step_records]
    assert ("stop-replication", "done", "done") in recorded
    assert ("stop-insync", "awaiting-confirmation", None) in recorded
    # The reconstruction reads those records, not what the events suggest.
    mark = next(x for x in history.step_records if x.step == "switch-browse" and x.status == "done")
    mark.message, mark.outcome = "as recorded", "skipped"
    mark.status, mark.reason = "skipped", "the record says so"
    browse = reconstruct(history).step("switch-browse")
    assert (browse.status, browse.outcome, browse.message) == ("skipped", "skipped", "as recorded")
    # The signal it rejected, with the engine's own reason (recorded, not judged again).
    assert [(x["signal"], x["step"], x["reason"]) for x in r["rejected"]] == [
        ("confirm", "stop-allsync", before_end.rejected[0].reason)
    ]
    assert [r.reason for _, r in history.rejection_records] == [before_end.rejected[0].reason]
    history.rejection_records[0][1].reason = "as the engine said"
    judged = [s for s in reconstruct(history).signals if s.verdict == "rejected"]
    assert [s.rejection for s in judged] == ["as the engine said"]
