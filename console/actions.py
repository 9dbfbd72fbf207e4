"""What a console button does: the CLI's own requests, as the logged-in operator.

Each action builds the same input the CLI builds (client/commands/start.py and
controls.py make and check them) and sends the same update or starts the same workflow;
the run's validators and the control workflow refuse what they refuse, and the refusal
comes back as a CliError with the rule and why. Nothing here decides what the
workflows decide."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from client.commands.controls import start_control
from client.commands.dry_run import execute_dry_run
from client.commands.start import running_run, wait_for_precondition, workflow_input
from client.runs import cause, index, resolve_run, send_update
from client.session import EXIT_USAGE, CliError
from console.gates import typed_ok
from console.pairs import checklist_of, namespace
from inventory.models import Inventory
from inventory.status import PairStatus
from workflows.base import PairWorkflow
from workflows.kind import StartOption
from workflows.kinds import KINDS
from workflows.models import Decision, OperatorSignal
from workflows.preview import DryRunResult

# How long a button waits for a control's sentence before saying it still runs.
CONTROL_WAIT_SECONDS = 15.0


def _one_line(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _option(o: StartOption, form: dict[str, Any]) -> Any:
    """A start option's value from the form's field, as the CLI's parser would give it."""
    raw = form.get(o.field)
    if o.type == "flag":
        return bool(raw)
    if o.type == "hosts":
        hosts = [p.strip() for p in str(raw or "").replace(",", " ").split() if p]
        if o.required and not hosts:
            raise CliError(o.missing or f"{o.field}: name at least one", EXIT_USAGE)
        return hosts
    if o.type == "int":
        try:
            return int(raw or o.default or 0)
        except ValueError:
            raise CliError(f"{o.field}: a whole number, 0 or more", EXIT_USAGE) from None
    return _one_line(raw)


def start_input(inv: Inventory, operator: str, form: dict[str, Any]) -> tuple[BaseModel, str]:
    """The workflow's input from a start form, as `amsm start KIND ...` makes it."""
    kind = KINDS.get(form.get("kind", ""))
    if kind is None:
        raise CliError(
            f"unknown workflow {form.get('kind', '')!r}; available: {', '.join(KINDS)}", EXIT_USAGE
        )
    side = str(form.get("side", "")).upper()
    if side not in ("X", "Y"):
        raise CliError(f"side {side!r}: X or Y", EXIT_USAGE)
    args = namespace(
        kind=kind.name,
        operator=operator,
        **{kind.side: side},
        **{o.name: _option(o, form) for o in kind.options},
        dry_run=False,
        json=True,
    )
    return workflow_input(inv, args)


async def start(client: Client, inv: Inventory, operator: str, form: dict[str, Any]) -> str:
    """Start a workflow of the pair (as `amsm start KIND ...`); the run id, or a refusal."""
    kind = form.get("kind", "")
    inp, what = start_input(inv, operator, form)
    try:
        handle = await client.start_workflow(
            kind,
            inp,
            id=inv.workflow_id,
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            memo={"kind": kind, "what": what, "initiator": operator},
            search_attributes=index(inv, kind, operator),
            static_summary=f"{what} on pair {inv.pair}, by {operator} (console)",
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"refused: only one workflow runs on pair {inv.pair} at a time, and "
            f"{await running_run(client, inv)} is running"
        ) from None
    run_id = handle.result_run_id or ""
    refused = await wait_for_precondition(client, inv, run_id)
    if refused:
        raise CliError(refused)
    return run_id


async def dry_run(
    client: Client, inv: Inventory, operator: str, form: dict[str, Any]
) -> DryRunResult:
    """What the start would do now, changing nothing (as `amsm start KIND ... --dry-run`:
    the short pair-dry-run workflow, beside any run)."""
    inp, _ = start_input(inv, operator, form)
    return await execute_dry_run(client, inv, str(form.get("kind")), inp)


async def tick(
    client: Client,
    inv: Inventory,
    operator: str,
    verb: str,
    step_id: str,
    note: str | None,
    typed: str | None = None,
    status: PairStatus | None = None,
    clients: list[str] | None = None,
    reading: bool = False,
) -> str:
    """Confirm a manual step or approve a gate (the run's confirm-step / approve-step
    update). A gate is approved only when `typed` is what its row asked for (`reading`:
    the console is reading the counts for it again, so nothing is asked yet)."""
    handle = await resolve_run(client, inv, "current")
    before = await checklist_of(client, inv)
    try:
        step = before.step(step_id)
    except KeyError:
        raise CliError(f"run {before.run_id} has no step {step_id!r}", EXIT_USAGE) from None
    if verb == "approve":
        ok, why = typed_ok(step, status, typed, before, reading)
        if not ok:
            raise CliError(why)
    update = PairWorkflow.approve_step if verb == "approve" else PairWorkflow.confirm_step
    sig = OperatorSignal(step=step_id, operator=operator, note=_one_line(note), clients=clients)
    taken = await send_update(client, handle, update, sig)
    past = "approved" if verb == "approve" else "confirmed"
    return f"{past} {step_id} as {operator}" + (
        f"; now waiting for {taken.awaiting}" if taken.awaiting else ""
    )


async def decide(
    client: Client,
    inv: Inventory,
    operator: str,
    action: str,
    step_id: str,
    reason: str | None,
    client_host: str | None = None,
) -> str:
    """Retry or skip a failed step (or one client of it), or abort the run (decide-step)."""
    if action not in ("retry", "skip", "abort"):
        raise CliError(f"unknown decision {action!r}: retry, skip or abort", EXIT_USAGE)
    reason = _one_line(reason)
    if action in ("skip", "abort") and not reason:
        raise CliError(f"{action} needs a reason (it is recorded with your name)", EXIT_USAGE)
    handle = await resolve_run(client, inv, "current")
    d = Decision(
        step=step_id if action != "abort" else "",
        action=action,  # type: ignore[arg-type]
        operator=operator,
        reason=reason,
        client=client_host or None,
    )
    taken = await send_update(client, handle, PairWorkflow.decide_step, d)
    target = f"{step_id} {client_host}" if client_host else step_id
    return {
        "retry": f"retrying {target}",
        "skip": f"skipped {target}: {reason}",
        "abort": f"aborting run {taken.run_id}: in-flight client switches finish first",
    }[action]


async def control(
    client: Client,
    inv: Inventory,
    operator: str,
    name: str,
    side: str | None,
    hosts: list[str],
    overrides: list[str],
    reason: str | None,
) -> str:
    """Run one console control (as `amsm dsm set-main X` and the others), with the same
    checks of its hosts and break-glass overrides; its sentence, or a refusal."""
    args = namespace(
        control=name,
        side=(side or None),
        hosts=hosts,
        overrides=[o for o in overrides if o],
        reason=_one_line(reason) if overrides else None,
    )
    handle = await start_control(client, inv, args, operator, via="console")
    try:
        result = await asyncio.wait_for(handle.result(), CONTROL_WAIT_SECONDS)
    except TimeoutError:
        return f"{name} is still running (run {handle.result_run_id}); see Runs"
    except Exception as e:
        raise CliError(cause(e)) from None
    text = result.message + "".join(f"; {d}" for d in result.details)
    return text + "".join(f"; {o.sentence()}" for o in result.overrides)
