"""Where a pair's fences are, read from Temporal: for `amsm fence` (and `status`, `show`)
and for the worker's `fences_waiting` activity."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from inventory.models import fence_workflow_id


class FenceLookupError(Exception):
    """The pair's fences could not be read or listed (the sentence says which)."""


async def fences_of(
    temporal: Client, pair: str, running: bool = False
) -> list[tuple[bool, str, str]]:
    """The pair's fences as (running, workflow id, run id), the one under the fence's usual
    id first; `running`: only those still running. What holds the usual id counts only if
    it is a fence: an unplanned switch whose fence id was taken starts its fence under
    another id. Only "not found" means no fence there; any other error is raised."""
    found: list[tuple[bool, str, str]] = []
    try:
        desc = await temporal.get_workflow_handle(fence_workflow_id(pair)).describe()
        is_running = desc.status == WorkflowExecutionStatus.RUNNING
        if desc.workflow_type == "fence" and (is_running or not running):
            found.append((is_running, desc.id, desc.run_id))
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
            found.append((w.status == WorkflowExecutionStatus.RUNNING, w.id, w.run_id))
    except RPCError as e:
        raise FenceLookupError(f"the fences of pair {pair} cannot be listed: {e.message}") from None
    return found
