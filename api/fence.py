"""The pair's fence as the operator API reads it (`amsm fence`, `status`, `show`, the
console): which fence workflow holds it (wire/fences.py), its state by query or result,
following a fence that continued as new, and what the server knows of its one pending
activity; and ending it by hand (`amsm fence end`)."""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.models import FenceState
from api.act import signed_input
from api.refusal import Refused
from api.runs import follow_continuation, send_update
from inventory.models import Inventory, fence_workflow_id
from wire.fences import FenceLookup, FenceLookupError, Squatter, fences_of
from workflows.fence import FenceWorkflow
from workflows.models import FenceEnd, FenceRef


class FenceView(BaseModel):
    workflow_id: str
    run_id: str
    state: FenceState
    tries: int = 0
    last_error: str | None = None
    next_try: datetime | None = None
    # The run that started it (the pair's unplanned switch); None: started by hand on the
    # pair's task queue, which the pair's worker runs all the same.
    parent_id: str | None = None


async def look_for_fences(temporal: Client, inv: Inventory) -> FenceLookup:
    """The pair's fences and the squatters (wire/fences.py), or the refusal that says why
    they cannot be read."""
    try:
        return await fences_of(temporal, inv.pair, inv.queue)
    except FenceLookupError as e:
        raise Refused(str(e)) from None


def latest(found: FenceLookup) -> tuple[str, str] | None:
    """The pair's fence: (workflow id, run id), a running one before an ended one; None when
    no fence has run. A squatter is never it."""
    if not found.fences:
        return None
    running = [f for f in found.fences if f.running]
    f = (running or found.fences)[0]
    return f.workflow_id, f.run_id


async def find_fence(temporal: Client, inv: Inventory) -> tuple[str, str] | None:
    """The pair's fence (`latest`), a running one before an ended one."""
    return latest(await look_for_fences(temporal, inv))


async def fence_and_squatters(
    temporal: Client, inv: Inventory
) -> tuple[FenceView | None, list[Squatter]]:
    """The pair's latest fence as `read_fence` reads it, and the squatters: running
    workflows that hold the fence's id or say they are the pair's fence, not believed
    (what `amsm fence` and `amsm status` name, with the command that removes them)."""
    found = await look_for_fences(temporal, inv)
    where = latest(found)
    if where is None:
        return None, found.squatters
    ref = FenceRef(workflow_id=where[0], run_id=where[1], side="X")
    return await read_fence(temporal, inv, ref), found.squatters


async def read_fence(
    temporal: Client, inv: Inventory, ref: FenceRef | None = None
) -> FenceView | None:
    """The fence of `ref` (or the pair's latest fence); None when there is none.

    The fence's own state comes from its query (or its result, once closed); how often it
    has tried and what the lost side last answered come from the server's view of its one
    pending activity, which the server retries without writing to the history."""
    if ref is None:
        where = await find_fence(temporal, inv)
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
    view = FenceView(workflow_id=wid, run_id=desc.run_id, state=state, parent_id=desc.parent_id)
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


async def end_fence(
    temporal: Client,
    inv: Inventory,
    operator: str,
    reason: str,
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
) -> FenceView:
    """End the pair's running fence by hand (its `end` update; the lost side stays as it
    is) and return where it ended. Refused without a reason, for one who is not an
    operator of the pair, and when no fence runs. `key`: the operator's, or the
    console's (`console`), to sign the end with (docs/operators/signed-acts.md)."""
    if not (reason or "").strip():
        raise Refused('ending a fence needs a reason: --reason "..."')
    if inv.operators and operator.lower() not in {o.lower() for o in inv.operators}:
        raise Refused(f"{operator} is not an operator of pair {inv.pair}")
    found = await look_for_fences(temporal, inv)
    where = latest(found)
    if where is None:
        raise Refused(f"no fence has run on pair {inv.pair}" + squatters_said(found.squatters))
    handle = temporal.get_workflow_handle(where[0], run_id=where[1])
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        view = await read_fence(temporal, inv)
        what = view.state.message if view else ""
        raise Refused(f"the fence on pair {inv.pair} is not running: {what}")
    request = FenceEnd(operator=operator, reason=reason)
    if key is not None:
        signed = signed_input(
            key,
            inv.pair,
            fence_workflow_id(inv.pair),
            "fence",
            "end-fence",
            request,
            operator,
            console,
        )
        request = request.model_copy(update={"intent": signed})
    await send_update(temporal, handle, FenceWorkflow.end, request, who="the fence")
    await handle.result()
    ended = await read_fence(temporal, inv)
    assert ended is not None
    return ended


def squatters_said(squatters: list[Squatter]) -> str:
    """What a refusal says of the squatters: that they are not the pair's fence, and the
    command that removes each."""
    return "".join(
        f"; {s.workflow_id} is not its fence ({s.why}): remove it with {s.remedy}"
        for s in squatters
    )
