"""A squatter under one of amsm's fixed ids (the pair's run, its control): a running
workflow amsm did not start, on another task queue than the pair's (no worker of the
pair runs it; it never ends by itself) or of a type none of amsm's workflows under that
id has (wire/fences.py `squatter_of`). Named in the refusal of a start or control, with
its run id, and ended on an operator's word (`--end-squatter RUN`): exactly the run the
operator names, when it is still the squatter there, terminated with who asked and why;
never amsm's own, and never for someone who may not act on the pair."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.refusal import Refused
from api.runs import cause
from inventory.models import Inventory
from wire.fences import Squatter, squatter_of


async def squatter_under(
    temporal: Client, inv: Inventory, workflow_id: str, what: str, types: tuple[str, ...]
) -> tuple[Squatter | None, bool]:
    """(the squatter under `workflow_id`, if what runs there is one; whether anything
    runs there). `what`: what amsm runs there; `types`: its workflow types. Only "not
    found" means nothing there; a server that cannot say is refused."""
    try:
        desc = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None, False
        raise Refused(f"what runs under {workflow_id} cannot be read: {cause(e)}") from None
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None, False
    return squatter_in(desc, inv, what, types), True


def squatter_in(
    w: WorkflowExecution, inv: Inventory, what: str, types: tuple[str, ...]
) -> Squatter | None:
    """`w`, running under one of amsm's ids, as a squatter, or None: it is amsm's."""
    if w.task_queue == inv.queue and w.workflow_type in types:
        return None
    return squatter_of(w, inv.queue, what, types)


def said(sq: Squatter) -> str:
    """A squatter in a refusal: why, and how to end it."""
    return (
        f"a squatter ({sq.why}): remove it with {sq.remedy}, or give --end-squatter "
        f"{sq.run_id}, which ends it first"
    )


async def said_squatter(
    temporal: Client, inv: Inventory, workflow_id: str, what: str, types: tuple[str, ...]
) -> str:
    """For a refusal: the squatter under `workflow_id`, why, and how to end it; "" when
    there is none (or it cannot be read: the refusal says the rest)."""
    try:
        sq, _ = await squatter_under(temporal, inv, workflow_id, what, types)
    except Refused:
        return ""
    return "" if sq is None else said(sq)


def ended_said(sq: Squatter | None) -> str:
    """What a start or control that ended a squatter first says before the rest."""
    if sq is None:
        return ""
    return f"ended the squatter {sq.workflow_id} (run {sq.run_id}): {sq.why}"


async def end_squatter(
    temporal: Client,
    inv: Inventory,
    operator: str,
    signed: bool,
    run_id: str,
    workflow_id: str,
    what: str,
    types: tuple[str, ...],
) -> Squatter | None:
    """End the squatter under `workflow_id` whose run is `run_id` (`--end-squatter RUN`),
    for `operator` (`signed`: their act is signed); None when nothing runs there any
    more. Refused for one who may not act on the pair, unsigned where the pair takes only
    signed acts, when what runs there is amsm's own (`what`), and when it is another run
    than the one named."""
    if not inv.may_act(operator):
        raise Refused(
            f"refused: {operator} is not an operator of pair {inv.pair}: only an operator "
            "ends a squatter",
            "forbidden",
        )
    if inv.identity.require_signed and not signed:
        raise Refused(
            "unsigned: this pair takes only signed acts (identity.require_signed); "
            "--end-squatter too: sign with --key FILE or AMSM_KEY "
            "(docs/operators/signed-acts.md)"
        )
    sq, running = await squatter_under(temporal, inv, workflow_id, what, types)
    if sq is None:
        if running:
            raise Refused(
                f"refused: --end-squatter ends only a workflow amsm did not start; what runs "
                f"under {workflow_id} is {what}, amsm's own"
            )
        return None
    if not run_id or sq.run_id != run_id:
        raise Refused(
            f"refused: --end-squatter {run_id or '(no run)'}: the squatter under "
            f"{workflow_id} is run {sq.run_id} ({sq.why}); give that run to end it"
        )
    handle = temporal.get_workflow_handle(sq.workflow_id, run_id=sq.run_id)
    try:
        await handle.terminate(
            reason=f"not started by amsm ({sq.why}); ended by {operator} with --end-squatter"
        )
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None  # it ended meanwhile: nothing to end
        raise Refused(
            f"the squatter {sq.workflow_id} ({sq.run_id}) could not be ended: {cause(e)}"
        ) from None
    return sq
