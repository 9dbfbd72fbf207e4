"""A control waiting for its break-glass override's approvals (docs/operators/two-person.md,
"A control's override"): the approvals run it started (workflows/control_approval.py),
found for the CLI's and the console's answer, the console's box, and the refusal of a
second control. Only amsm's own counts: the type, on the pair's queue, started by the
pair's control; a squatter under the id is never offered to approve."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.follow import RunMark
from api.refusal import Refused
from api.runs import cause, fetch_checklist
from inventory.models import Inventory, control_approval_workflow_id, control_workflow_id
from workflows.break_glass import BREAK_GLASS
from workflows.control_approval import WORKFLOW
from workflows.models import Checklist

# How often a control's start looks for its approvals run, until it waits at its gate:
# often while the control is young (it starts the run within a few seconds of its own
# start), then seldom (a control that needed none reboots for minutes).
APPROVALS_POLL = 0.2
APPROVALS_POLL_LATER = 5.0
APPROVALS_YOUNG = 30.0


class Waiting(BaseModel):
    """A control whose override waits for its approvals: the run to approve (`amsm
    approve RUN break-glass`) and how many different operators it needs."""

    run_id: str
    step: str = BREAK_GLASS
    required: int


async def _waiting_run(
    temporal: Client, inv: Inventory, control_run: str | None = None
) -> WorkflowExecutionDescription | None:
    """The approvals run a control of the pair waits on, as the server describes it, or
    None: none runs, or the run under the id is not amsm's (not of the type, on the
    pair's queue, started by the pair's control; `control_run`: by that control run)."""
    handle = temporal.get_workflow_handle(control_approval_workflow_id(inv.pair))
    try:
        desc = await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise Refused(
            f"the control approvals of pair {inv.pair} cannot be read: {cause(e)}"
        ) from None
    if (
        desc.status != WorkflowExecutionStatus.RUNNING
        or desc.workflow_type != WORKFLOW
        or desc.task_queue != inv.queue
        or desc.parent_id != control_workflow_id(inv.pair)
        or (control_run is not None and desc.parent_run_id != control_run)
    ):
        return None
    return desc


async def waiting_approvals(
    temporal: Client, inv: Inventory, control_run: str | None = None
) -> Checklist | None:
    """The checklist of the approvals run a control of the pair waits on, or None: none
    waits (`control_run`: none that this control run started)."""
    desc = await _waiting_run(temporal, inv, control_run)
    if desc is None:
        return None
    return await fetch_checklist(temporal.get_workflow_handle(desc.id, run_id=desc.run_id))


async def approvals_if_changed(
    temporal: Client, inv: Inventory, seen: RunMark | None
) -> tuple[RunMark | None, Checklist | None]:
    """For the console's live part: (the waiting approvals run's mark, its checklist),
    the checklist asked of the worker only when the run is not SEEN as it was (every
    change of a checklist is written in its history); (None, None) when none waits, and
    (SEEN, None) when it is unchanged."""
    desc = await _waiting_run(temporal, inv)
    if desc is None:
        return None, None
    mark = RunMark(desc.run_id, desc.history_length, "running")
    if mark == seen:
        return mark, None
    c = await fetch_checklist(temporal.get_workflow_handle(desc.id, run_id=desc.run_id))
    return mark, c


async def wait_for_approvals(
    temporal: Client,
    inv: Inventory,
    control_run: str | None,
    outcome: asyncio.Future[Any],
    deadline: float | None,
) -> Waiting | None:
    """Once the approvals run of the control run `control_run` waits at its gate (it
    passed its own checks): what to approve. None when the control ends first (it needed
    no approvals, or was refused) or at `deadline` (the loop's clock)."""
    loop = asyncio.get_running_loop()
    young = loop.time() + APPROVALS_YOUNG
    while not outcome.done() and (deadline is None or loop.time() < deadline):
        left = None if deadline is None else max(0.01, deadline - loop.time())
        try:
            c = await asyncio.wait_for(waiting_approvals(temporal, inv, control_run), left)
        except TimeoutError:
            return None
        except Refused:
            c = None  # asked again: the control's own end says what went wrong
        gate = next((s for s in c.steps if s.id == BREAK_GLASS), None) if c else None
        if c is not None and gate is not None and gate.status == "awaiting-approval":
            return Waiting(run_id=c.run_id, required=gate.required or 1)
        poll = APPROVALS_POLL if loop.time() < young else APPROVALS_POLL_LATER
        await asyncio.wait({outcome}, timeout=poll)
    return None


async def approvals_note(temporal: Client, inv: Inventory) -> str:
    """What the refusal of a second control adds when the running one waits for its
    override's approvals: how to approve it or give it up."""
    try:
        c = await waiting_approvals(temporal, inv)
    except Refused:
        return ""
    if c is None:
        return ""
    return (
        f"; it waits for the approvals of its break-glass override: amsm approve "
        f"{c.run_id} {BREAK_GLASS} (or give it up: amsm abort {c.run_id} --reason TEXT)"
    )
