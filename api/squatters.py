"""A squatter under one of amsm's fixed ids (the pair's run, its control): a running
workflow amsm did not start, on another task queue than the pair's (no worker of the
pair runs it; it never ends by itself) or of a type none of amsm's workflows under that
id has (wire/fences.py `squatter_of`). Named in the refusal of a start or control, and
ended on the operator's word (`--end-squatter`): exactly that run, terminated with who
asked and why, never amsm's own."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from api.refusal import Refused
from api.runs import cause
from inventory.models import Inventory
from wire.fences import Squatter, squatter_of


async def squatter_under(
    temporal: Client, inv: Inventory, workflow_id: str, what: str, types: tuple[str, ...]
) -> tuple[Squatter | None, bool]:
    """(the squatter under `workflow_id`, if what runs there is one; whether anything
    runs there). `what`: what amsm runs there; `types`: its workflow types."""
    try:
        desc = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return None, False
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None, False
    if desc.task_queue == inv.queue and desc.workflow_type in types:
        return None, True
    return squatter_of(desc, inv.queue, what, types), True


async def end_squatter(
    temporal: Client,
    inv: Inventory,
    operator: str,
    workflow_id: str,
    what: str,
    types: tuple[str, ...],
    command: str,
) -> Squatter | None:
    """End the squatter under `workflow_id` (`command` --end-squatter); None when nothing
    runs there. Refused when what runs there is amsm's own (`what`)."""
    sq, running = await squatter_under(temporal, inv, workflow_id, what, types)
    if sq is None:
        if running:
            raise Refused(
                f"refused: --end-squatter ends only a workflow amsm did not start; what runs "
                f"under {workflow_id} is {what}, amsm's own"
            )
        return None
    handle = temporal.get_workflow_handle(sq.workflow_id, run_id=sq.run_id)
    try:
        await handle.terminate(
            reason=f"not started by amsm ({sq.why}); ended by {operator} with {command} "
            "--end-squatter"
        )
    except RPCError as e:
        raise Refused(
            f"the squatter {sq.workflow_id} ({sq.run_id}) could not be ended: {cause(e)}"
        ) from None
    return sq
