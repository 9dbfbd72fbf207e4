"""`amsm fence`: the fence an unplanned switch left on the lost side, and how to end it.

The fence's own state comes from its query (or its result, once closed); how often it
has tried and what the lost side last answered come from the server's view of its one
pending activity, which the server retries without writing to the history.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import FenceState
from activities.pair import FenceLookupError, fences_of
from client.session import EXIT_OK, CliError, emit
from inventory.models import Inventory
from workflows.models import FenceEnd, FenceRef


class FenceView(BaseModel):
    workflow_id: str
    run_id: str
    state: FenceState
    tries: int = 0
    last_error: str | None = None
    next_try: datetime | None = None


async def find_fence(client: Client, pair: str) -> tuple[str, str] | None:
    """The pair's fence: (workflow id, run id), a running one before an ended one; None when
    no fence has run. What holds the fence's usual id is trusted only if it is a fence: an
    unplanned switch whose fence id was taken starts its fence under another id."""
    try:
        found = await fences_of(client, pair)
    except FenceLookupError as e:
        raise CliError(str(e)) from None
    if not found:
        return None
    running = [f for f in found if f[0]]
    _, fid, run_id = (running or found)[0]
    return fid, run_id


async def read_fence(client: Client, pair: str, ref: FenceRef | None = None) -> FenceView | None:
    """The fence of `ref` (or the pair's latest fence); None when there is none."""
    if ref is None:
        where = await find_fence(client, pair)
        if where is None:
            return None
        ref = FenceRef(workflow_id=where[0], run_id=where[1], side="X")
    wid = ref.workflow_id
    handle = client.get_workflow_handle(wid, run_id=ref.run_id or None)
    try:
        desc = await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise CliError(f"the fence {wid} cannot be read: {e.message}") from None
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        state = FenceState.model_validate(await handle.result())
    else:
        try:
            state = await handle.query("state", result_type=FenceState)
        except Exception as e:
            raise CliError(f"the fence {wid} cannot be read: {e}") from None
    view = FenceView(workflow_id=wid, run_id=desc.run_id, state=state)
    for pa in desc.raw_description.pending_activities:
        view.tries = pa.attempt
        if pa.HasField("last_failure"):
            view.last_error = pa.last_failure.message
        if pa.HasField("next_attempt_schedule_time"):
            view.next_try = pa.next_attempt_schedule_time.ToDatetime()
    if desc.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        state.status = "ended"
        state.message = f"the fence workflow is {desc.status.name.lower() if desc.status else '?'}"
    return view


def render_fence(v: FenceView) -> str:
    st = v.state
    head = f"Fence on {st.side} ({v.workflow_id}): {st.status}"
    lines = [head, f"  {st.message or ''}"]
    if st.status == "waiting":
        if v.tries:
            lines.append(f"  tries: {v.tries}; last answer: {v.last_error or 'none yet'}")
        if v.next_try:
            lines.append(f"  next try: {v.next_try:%Y-%m-%d %H:%M:%S} UTC")
        lines.append('  end it by hand: amsm fence end --reason "..."')
    for d in st.details:
        lines.append(f"  - {d}")
    lines.append(
        f"  started {st.started_at} by {st.started_by} for: {st.reason}"
        + (f"; ended {st.ended_at}" if st.ended_at else "")
    )
    return "\n".join(lines)


async def fence_command(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if getattr(args, "fence_action", None) == "end":
        return await end_fence(client, inv, args)
    view = await read_fence(client, inv.pair)
    if view is None:
        emit(args, {"fence": None}, f"no fence has run on pair {inv.pair}")
        return EXIT_OK
    emit(args, {"fence": view.model_dump(mode="json")}, render_fence(view))
    return EXIT_OK


async def end_fence(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if not (args.reason or "").strip():
        raise CliError('ending a fence needs a reason: --reason "..."')
    if inv.operators and args.operator.lower() not in {o.lower() for o in inv.operators}:
        raise CliError(f"{args.operator} is not an operator of pair {inv.pair}")
    where = await find_fence(client, inv.pair)
    if where is None:
        raise CliError(f"no fence has run on pair {inv.pair}")
    handle = client.get_workflow_handle(where[0], run_id=where[1])
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        view = await read_fence(client, inv.pair)
        what = view.state.message if view else ""
        raise CliError(f"the fence on pair {inv.pair} is not running: {what}")
    try:
        await handle.execute_update("end", FenceEnd(operator=args.operator, reason=args.reason))
    except WorkflowUpdateFailedError as e:
        cause: Any = e.cause
        raise CliError(f"the fence refused it: {getattr(cause, 'message', cause)}") from None
    await handle.result()
    view = await read_fence(client, inv.pair)
    assert view is not None
    emit(args, {"fence": view.model_dump(mode="json")}, render_fence(view))
    return EXIT_OK
