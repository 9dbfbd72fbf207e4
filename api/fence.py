"""The pair's fence as the operator API reads it (`amsm fence`, `status`, `show`, the
console): which fence workflow holds it (wire/fences.py), its state by query or result,
following a fence that continued as new, and what the server knows of its one pending
activity; and ending it by hand (`amsm fence end`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.models import FenceState
from api.refusal import Refused
from api.runs import follow_continuation, send_update
from inventory.models import Inventory
from wire.fences import FenceLookupError, fences_of
from workflows.fence import FenceWorkflow
from workflows.models import FenceEnd, FenceRef


class FenceView(BaseModel):
    workflow_id: str
    run_id: str
    state: FenceState
    tries: int = 0
    last_error: str | None = None
    next_try: datetime | None = None


async def find_fence(temporal: Client, pair: str) -> tuple[str, str] | None:
    """The pair's fence: (workflow id, run id), a running one before an ended one; None when
    no fence has run. What holds the fence's usual id is trusted only if it is a fence: an
    unplanned switch whose fence id was taken starts its fence under another id."""
    try:
        found = await fences_of(temporal, pair)
    except FenceLookupError as e:
        raise Refused(str(e)) from None
    if not found:
        return None
    running = [f for f in found if f[0]]
    _, fid, run_id = (running or found)[0]
    return fid, run_id


async def read_fence(temporal: Client, pair: str, ref: FenceRef | None = None) -> FenceView | None:
    """The fence of `ref` (or the pair's latest fence); None when there is none.

    The fence's own state comes from its query (or its result, once closed); how often it
    has tried and what the lost side last answered come from the server's view of its one
    pending activity, which the server retries without writing to the history."""
    if ref is None:
        where = await find_fence(temporal, pair)
        if where is None:
            return None
        ref = FenceRef(workflow_id=where[0], run_id=where[1], side="X")
    wid = ref.workflow_id
    handle = temporal.get_workflow_handle(wid, run_id=ref.run_id or None)
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            # The fence goes on in the run it continued as (the server's list of runs,
            # which found this one, may not show that run yet).
            handle = await follow_continuation(temporal, handle)
            desc = await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise Refused(f"the fence {wid} cannot be read: {e.message}") from None
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        state = FenceState.model_validate(await handle.result())
    else:
        try:
            state = await handle.query(FenceWorkflow.state)
        except Exception as e:
            raise Refused(f"the fence {wid} cannot be read: {e}") from None
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


async def end_fence(temporal: Client, inv: Inventory, operator: str, reason: str) -> FenceView:
    """End the pair's running fence by hand (its `end` update; the lost side stays as it
    is) and return where it ended. Refused without a reason, for one who is not an
    operator of the pair, and when no fence runs."""
    if not (reason or "").strip():
        raise Refused('ending a fence needs a reason: --reason "..."')
    if inv.operators and operator.lower() not in {o.lower() for o in inv.operators}:
        raise Refused(f"{operator} is not an operator of pair {inv.pair}")
    where = await find_fence(temporal, inv.pair)
    if where is None:
        raise Refused(f"no fence has run on pair {inv.pair}")
    handle = temporal.get_workflow_handle(where[0], run_id=where[1])
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        view = await read_fence(temporal, inv.pair)
        what = view.state.message if view else ""
        raise Refused(f"the fence on pair {inv.pair} is not running: {what}")
    request = FenceEnd(operator=operator, reason=reason)
    await send_update(temporal, handle, FenceWorkflow.end, request, who="the fence")
    await handle.result()
    ended = await read_fence(temporal, inv.pair)
    assert ended is not None
    return ended
