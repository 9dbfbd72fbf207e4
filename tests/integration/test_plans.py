"""A dry run and a real run of each kind agree, step by step, on what changes on which
host: the dry run prints the drivers' own plans (activities/drivers/plans/), and the real
run's operations answer the same plans' sentences.

For every kind (switch, split, restore, split-switch, in the order a night could run
them on the lab), the dry run is taken, then the real run. Per step:
- each change the dry run planned (host, sentence) is in what that step's operation
  answered (its message and details, read from the run's history), word for word; and
  every answer of the operation that is not "already ..." is one the dry run planned;
- every Windows host the dry run named for the step has a change in the lab's journal
  while the step ran (the steps' times are whole seconds, so a window may hold a
  neighbour's changes too: inclusion per step), and over the whole run the hosts
  journaled are exactly those the dry run named (the DSMs are changed over ODBC: not
  journaled).
The client steps' sentences legitimately differ ("client ED-01 switched to Y in 2.1 s":
its time is known only after), so for them the hosts are compared, not the sentence.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.client import Client

from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import drive
from tests.support.lab import Lab
from tests.support.worker import running_worker

DSM_HOSTS = {"dsm-x", "dsm-y"}
CLIENT_STEPS = ("switch-clients", "switch-pilots")


async def dry(temporal: Client, lab: Lab, *argv: str) -> dict:
    rc, out = await cli(temporal, lab, "start", *argv, "--dry-run", "--json")
    assert rc == 0, out
    shown = json.loads(out)
    assert shown["refused"] is None, shown
    return shown


async def _values(temporal: Client, payloads: Payloads) -> list[Any]:
    return await temporal.data_converter.decode(payloads.payloads)


async def answers(temporal: Client, lab: Lab, run_id: str) -> list[tuple[str, dict, dict]]:
    """(activity, input, result) of every activity the run completed, in order, over its
    continuations."""
    out: list[tuple[str, dict, dict]] = []
    run: str | None = run_id
    while run:
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        scheduled: dict[int, tuple[str, dict]] = {}
        run = None
        async for e in handle.fetch_history_events():
            if e.HasField("activity_task_scheduled_event_attributes"):
                a = e.activity_task_scheduled_event_attributes
                given = (await _values(temporal, a.input))[0]
                scheduled[e.event_id] = (
                    a.activity_type.name,
                    given if isinstance(given, dict) else {},
                )
            elif e.HasField("activity_task_completed_event_attributes"):
                c = e.activity_task_completed_event_attributes
                name, inp = scheduled[c.scheduled_event_id]
                result = await _values(temporal, c.result) if c.result.payloads else [{}]
                out.append((name, inp, result[0] if isinstance(result[0], dict) else {}))
            elif e.HasField("workflow_execution_continued_as_new_event_attributes"):
                run = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return out


def activity_of(step_id: str) -> tuple[str, dict[str, str]] | None:
    """The activity a step's operation is, and the input it is told apart by."""
    fixed = {
        "stop-replication": "dsm_stop_replication",
        "start-replication": "dsm_start_replication",
        "stop-browse": "browse_stop",
        "switch-browse": "browse_switch",
        "start-browse": "browse_start",
    }
    if step_id in fixed:
        return fixed[step_id], {}
    parts = step_id.split("-")
    if len(parts) == 3 and parts[0] in ("dsm", "smartbins", "insync"):
        family, side, mode = parts[0], parts[1].upper(), parts[2]
        if family == "dsm":
            return "dsm_set_mode", {"side": side, "mode": mode}
        if family == "smartbins":
            return f"smartbins_set_{mode}", {"side": side}
        return "insync_set_main", {"side": side}
    if step_id.startswith("browse-to-"):
        return "browse_move", {"to": step_id[-1].upper()}
    return None


def said(done: list[tuple[str, dict, dict]], step_id: str) -> list[str] | None:
    what = activity_of(step_id)
    if what is None:
        return None
    name, keys = what
    found = [r for n, inp, r in done if n == name and all(inp.get(k) == v for k, v in keys.items())]
    assert len(found) == 1, (step_id, found)
    return [found[0]["message"], *found[0].get("details", [])]


def journaled(lab: Lab, step: dict, since: int) -> set[str]:
    """The hosts the lab journals a change on while the step ran (its times are whole
    seconds: the window ends a second later)."""
    start = datetime.fromisoformat(step["started_at"]).timestamp()
    end = datetime.fromisoformat(step["ended_at"]).timestamp() + 1
    return {h for ts, h, _, _ in LabState(lab.dir).journal()[since:] if start <= ts < end}


def assert_agree(
    lab: Lab, plan: dict, real: dict, done: list[tuple[str, dict, dict]], since: int
) -> None:
    steps = {s["id"]: s for s in real["steps"]}
    compared = 0
    for d in plan["steps"]:
        r = steps[d["id"]]
        if r["status"] == "skipped" or d["status"] == "skipped":
            assert r["status"] == d["status"], (d, r)
            continue
        if d["id"] in CLIENT_STEPS:
            # The sentence says each client's time: only its hosts can be known before.
            assert sorted(c["host"] for c in r["clients"] or []) == sorted(d["hosts"]), (d, r)
            assert set(d["hosts"]) <= journaled(lab, r, since), (d, r)
            continue
        answered = said(done, d["id"])
        if answered is None:
            assert not d["changes"], d  # a manual step or a gate: nothing planned
            continue
        compared += 1
        for c in d["changes"]:
            assert any(c["done"] in a for a in answered), (d["id"], c, answered)
        planned = [c["done"] for c in d["changes"]]
        # The operation's own answers beyond the step's summary (the first): each one
        # that changed something is one the dry run planned.
        for a in answered[1:]:
            assert " already " in a or any(p in a for p in planned), (d["id"], a, planned)
        assert set(d["hosts"]) - DSM_HOSTS <= journaled(lab, r, since), (d["id"], d["hosts"])
    assert compared >= 3, plan["workflow"]  # split has three: the fewest
    told = {h for s in plan["steps"] for h in s["hosts"]}
    changed = {h for _, h, _, _ in LabState(lab.dir).journal()[since:]}
    assert changed == told - DSM_HOSTS, (plan["workflow"], changed, told)


async def test_a_dry_run_and_the_real_run_of_each_kind_agree_on_every_step(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    lab = await lab_factory(editors=2, ingest=1)
    async with running_worker(temporal, lab):
        runs = [
            (("switch", "--to", "Y"), "Y", None),
            (("split", "--main", "Y"), "Y", "Y"),
            (("restore", "--main", "Y"), "Y", None),
            (("split-switch", "--to", "X", "--pilot", "ED-01"), "X", None),
        ]
        for argv, to, allsync_on in runs:
            plan = await dry(temporal, lab, *argv)
            assert any(s["changes"] for s in plan["steps"]), plan
            since = len(LabState(lab.dir).journal())
            run = (await cli_json(temporal, lab, "start", *argv))["run_id"]
            real = await drive(temporal, lab, run, to, timeout=240, stop_allsync_on=allsync_on)
            assert real["state"] == "completed", real
            assert_agree(lab, plan, real, await answers(temporal, lab, run), since)
