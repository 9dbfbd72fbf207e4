"""Where a pair's fences are, read from Temporal: for `amsm fence` (and `status`, `show`)
and for the worker's `fences_waiting` activity.

Anyone who reaches the Temporal frontend can start a workflow of type `fence` under the
fence's usual id (`temporal workflow start --type fence --workflow-id amsm-PAIR-fence
--task-queue nobody-polls`, or `--task-queue amsm-PAIR`), or tag one with the pair's
search attributes. Such a workflow is not believed: a workflow counts as the pair's fence
only if it runs on the pair's own task queue (the pair's worker runs it: it fences its
side when that side answers, and `amsm fence end` ends it) and the pair's run started it
(its parent is amsm-PAIR, which the server records and no client can choose; the fence
itself refuses to run otherwise, workflows/fence.py), and it is not a reset of another
run (a fence acts once; its first event says, wire/history.py). Anything else running
under the fence's id, or listed as a fence of the pair, is a squatter: named, with what
to do, and never taken as a fence. What this proves and what it does not:
docs/operators/unplanned.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from inventory.models import fence_workflow_id, pair_workflow_id
from wire.history import first_event


class FenceLookupError(Exception):
    """The pair's fences could not be read or listed (the sentence says which)."""


class Squatter(BaseModel):
    """A running workflow that holds one of amsm's fixed ids, or says it is a fence of the
    pair, that amsm cannot show it started: reported, never believed."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    parent_id: str | None = None
    why: str
    remedy: str


@dataclass
class Fence:
    running: bool
    workflow_id: str
    run_id: str
    execution: WorkflowExecution | None = field(default=None, repr=False, compare=False)


@dataclass
class FenceLookup:
    """The pair's fences, the one under the fence's usual id first, and the squatters."""

    fences: list[Fence] = field(default_factory=list)
    squatters: list[Squatter] = field(default_factory=list)


def squatter_of(
    w: WorkflowExecution,
    queue: str,
    what: str,
    workflow_type: str | tuple[str, ...] | None = "fence",
    parent: str | None = None,
) -> Squatter:
    """`w` as a squatter: why it is not believed (`what`: what it pretends to be; a
    `workflow_type` it must have, or one of several, if any; a `parent` that must have
    started it, if any) and the command that removes it."""
    reasons = []
    if w.task_queue != queue:
        reasons.append(f"its task queue is {w.task_queue!r}, not the pair's {queue!r}")
    if isinstance(workflow_type, tuple) and w.workflow_type not in workflow_type:
        reasons.append(f"it is a {w.workflow_type!r} workflow, none of the pair's runs")
    elif isinstance(workflow_type, str) and w.workflow_type != workflow_type:
        reasons.append(f"it is a {w.workflow_type!r} workflow, not a {workflow_type}")
    if parent and w.parent_id != parent:
        by = f"by {w.parent_id}" if w.parent_id else "on its own"
        reasons.append(f"it was started {by}, not by the pair's run {parent}")
    return Squatter(
        workflow_id=w.id,
        run_id=w.run_id or "",
        workflow_type=w.workflow_type,
        task_queue=w.task_queue,
        parent_id=w.parent_id,
        why=f"not started by amsm as {what}: " + "; ".join(reasons),
        remedy=(
            f"temporal workflow terminate --workflow-id {w.id} --run-id {w.run_id} "
            f'--reason "not started by amsm"'
        ),
    )


def _is_fence(w: WorkflowExecution, pair: str, queue: str) -> bool:
    """A fence the pair's run started, on the pair's queue (its continuations keep the
    parent the server recorded for the first run)."""
    return (
        w.workflow_type == "fence"
        and w.task_queue == queue
        and w.parent_id == pair_workflow_id(pair)
    )


async def fences_of(temporal: Client, pair: str, queue: str, running: bool = False) -> FenceLookup:
    """The pair's fences (`queue`: the pair's task queue), the one under the fence's usual
    id first; `running`: only those still running. A fence counts only on the pair's
    queue, started by the pair's run; a running workflow that holds the usual id or is
    listed as the pair's fence otherwise is a squatter (an unplanned switch whose fence id
    was taken starts its fence under another id). Only "not found" means no fence there;
    any other error is raised."""
    found = FenceLookup()
    try:
        desc = await temporal.get_workflow_handle(fence_workflow_id(pair)).describe()
        _sort(found, desc, pair, queue, running, f"the fence of pair {pair}", usual=True)
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise FenceLookupError(
                f"the fence of pair {pair} cannot be read: {e.message}"
            ) from None
    query = f"WorkflowType = 'fence' AND AmsmPair = '{pair}'"
    if running:
        query += " AND ExecutionStatus = 'Running'"
    try:
        async for w in temporal.list_workflows(query, limit=20):
            _sort(found, w, pair, queue, running, f"a fence of pair {pair}", usual=False)
    except RPCError as e:
        raise FenceLookupError(f"the fences of pair {pair} cannot be listed: {e.message}") from None
    await _not_resets(temporal, found, pair)
    return found


async def _not_resets(temporal: Client, found: FenceLookup, pair: str) -> None:
    """A running fence that is a reset of another run (`temporal workflow reset` of a
    fence kept from an earlier night) is a squatter: it keeps its parent, but a fence acts
    once (workers/resets.py refuses its act, and it gives up at its first try)."""
    for f in list(found.fences):
        w = f.execution
        if not f.running or w is None:
            continue
        try:
            first = await first_event(temporal, f.workflow_id, f.run_id)
        except RPCError as e:
            raise FenceLookupError(
                f"the fence {f.workflow_id} of pair {pair} cannot be read: {e.message}"
            ) from None
        if first is None or first[0] == f.run_id:
            continue
        found.fences.remove(f)
        why = f"not started by amsm as a fence of pair {pair}: it is a reset of run {first[0]}"
        found.squatters.append(squatter_of(w, w.task_queue, "").model_copy(update={"why": why}))


def _sort(
    found: FenceLookup,
    w: WorkflowExecution,
    pair: str,
    queue: str,
    running: bool,
    what: str,
    usual: bool,
) -> None:
    """Put `w` with the fences, with the squatters (running only: a closed one holds
    nothing), or nowhere (`usual`: it holds the fence's usual id)."""
    seen = {(f.workflow_id, f.run_id) for f in found.fences}
    seen |= {(s.workflow_id, s.run_id) for s in found.squatters}
    if (w.id, w.run_id or "") in seen:
        return
    is_running = w.status == WorkflowExecutionStatus.RUNNING
    if _is_fence(w, pair, queue):
        if is_running or not running:
            found.fences.append(Fence(is_running, w.id, w.run_id or "", w))
    elif is_running and (usual or w.workflow_type == "fence"):
        found.squatters.append(squatter_of(w, queue, what, parent=pair_workflow_id(pair)))
