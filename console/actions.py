"""What a console button does: the operator API's requests (api/), as the logged-in
operator, from the button's form.

Each action makes the same input the CLI makes (the API builds and checks it) and sends
the same update or starts the same workflow; the run's validators and the control
workflow refuse what they refuse, and the refusal comes back as api's Refused with the
rule and why. Nothing here decides what the workflows decide: this module reads forms
and says the answer in a sentence."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from temporalio.client import Client

from api import start as starting
from api.act import decide as decide_step
from api.act import tick as tick_step
from api.control_approvals import waiting_approvals
from api.controls import ControlRequest, run_control
from api.refusal import Refused
from console.gates import typed_ok
from inventory import intent
from inventory.models import Inventory
from inventory.status import PairStatus
from workflows.break_glass import BREAK_GLASS
from workflows.kind import StartOption
from workflows.kinds import KINDS
from workflows.models import Checklist, OperatorSignal, StepState
from workflows.preview import DryRunResult

# How long a button waits for a control's sentence before saying it still runs.
CONTROL_WAIT_SECONDS = 15.0


def signer(inv: Inventory, key: Ed25519PrivateKey | None) -> Ed25519PrivateKey | None:
    """The console's key (`amsm console --console-key-file`) where the pair's inventory
    names it as `console_key`: the console signs each act there for the person logged in
    (docs/operators/signed-acts.md#the-console). Elsewhere its acts go unsigned."""
    if key is None or inv.console_key is None:
        return None
    return key if intent.public_line(key.public_key()) == inv.console_key else None


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
            raise Refused(o.missing or f"{o.field}: name at least one", "usage")
        return hosts
    if o.type == "int":
        try:
            return int(raw or o.default or 0)
        except ValueError:
            raise Refused(f"{o.field}: a whole number, 0 or more", "usage") from None
    return _one_line(raw)


def start_input(inv: Inventory, operator: str, form: dict[str, Any]) -> tuple[BaseModel, str]:
    """The workflow's input from a start form, as `amsm start KIND ...` makes it."""
    kind = KINDS.get(form.get("kind", ""))
    if kind is None:
        raise Refused(
            f"unknown workflow {form.get('kind', '')!r}; available: {', '.join(KINDS)}", "usage"
        )
    side = str(form.get("side", "")).upper()
    if side not in ("X", "Y"):
        raise Refused(f"side {side!r}: X or Y", "usage")
    options = {o.name: _option(o, form) for o in kind.options}
    overrides = [str(o) for o in form.get("overrides") or [] if o]
    reason = _one_line(str(form.get("override_reason") or "")) if overrides else None
    return starting.start_input(inv, kind.name, side, operator, options, overrides or None, reason)


async def start(
    temporal: Client,
    inv: Inventory,
    operator: str,
    form: dict[str, Any],
    key: Ed25519PrivateKey | None = None,
) -> str:
    """Start a workflow of the pair (as `amsm start KIND ...`); the run id, or a refusal.
    `key`: the console's, to sign the start for `operator` where the pair names it."""
    kind = str(form.get("kind", ""))
    inp, what = start_input(inv, operator, form)
    started = await starting.start(
        temporal, inv, kind, inp, what, operator, via="console", key=signer(inv, key), console=True
    )
    if started.refused:
        raise Refused(started.refused)
    return started.run_id


async def dry_run(
    temporal: Client, inv: Inventory, operator: str, form: dict[str, Any]
) -> DryRunResult:
    """What the start would do now, changing nothing (as `amsm start KIND ... --dry-run`:
    the short pair-dry-run workflow, beside any run)."""
    inp, _ = start_input(inv, operator, form)
    return await starting.dry_run(temporal, inv, str(form.get("kind")), inp, operator)


async def tick(
    temporal: Client,
    inv: Inventory,
    operator: str,
    verb: str,
    step_id: str,
    note: str | None,
    typed: str | None = None,
    status: PairStatus | None = None,
    clients: list[str] | None = None,
    reading: bool = False,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """Confirm a manual step or approve a gate (the run's confirm-step / approve-step
    update). A gate is approved only when `typed` is what its row asked for (`reading`:
    the console is reading the counts for it again, so nothing is asked yet); `key`: the
    console's, to sign it for `operator` where the pair names it."""

    def typed_count(before: Checklist, step: StepState) -> None:
        if verb == "approve":
            ok, why = typed_ok(step, status, typed, before, reading)
            if not ok:
                raise Refused(why)

    sig = OperatorSignal(step=step_id, operator=operator, note=_one_line(note), clients=clients)
    k = signer(inv, key)
    taken = await tick_step(
        temporal, inv, "current", verb, sig, check=False, guard=typed_count, key=k, console=True
    )
    past = "approved" if verb == "approve" else "confirmed"
    signed = " (signed with the console's key)" if k is not None else ""
    return f"{past} {step_id} as {operator}{signed}" + (
        f"; now waiting for {taken.awaiting}" if taken.awaiting else ""
    )


async def decide(
    temporal: Client,
    inv: Inventory,
    operator: str,
    action: str,
    step_id: str,
    reason: str | None,
    client_host: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """Retry or skip a failed step (or one client of it), or abort the run (decide-step);
    `key`: the console's, to sign it for `operator` where the pair names it."""
    if action not in ("retry", "skip", "abort"):
        raise Refused(f"unknown decision {action!r}: retry, skip or abort", "usage")
    reason = _one_line(reason)
    if action in ("skip", "abort") and not reason:
        raise Refused(f"{action} needs a reason (it is recorded with your name)", "usage")
    d = await decide_step(
        temporal,
        inv,
        "current",
        action,
        step_id,
        operator,
        reason,
        client_host,
        check=False,
        key=signer(inv, key),
        console=True,
    )
    target = f"{step_id} {client_host}" if client_host else step_id
    return {
        "retry": f"retrying {target}",
        "skip": f"skipped {target}: {reason}",
        "abort": f"aborting run {d.run_id}: in-flight client switches finish first",
    }[action]


async def control(
    temporal: Client,
    inv: Inventory,
    operator: str,
    name: str,
    side: str | None,
    hosts: list[str],
    overrides: list[str],
    reason: str | None,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """Run one console control (as `amsm dsm set-main X` and the others), with the same
    checks of its hosts and break-glass overrides; its sentence, or a refusal. `key`: the
    console's, to sign it for `operator` where the pair names it."""
    req = ControlRequest(
        control=name,
        side=(side or None),
        hosts=hosts,
        overrides=[o for o in overrides if o],
        reason=_one_line(reason) if overrides else None,
    )
    done = await run_control(
        temporal,
        inv,
        req,
        operator,
        via="console",
        wait=CONTROL_WAIT_SECONDS,
        key=signer(inv, key),
        console=True,
    )
    if done.waiting is not None:
        run = done.waiting.run_id
        return (
            f"{name} waits for {done.waiting.required} operators to approve its break-glass "
            f"override: nothing has acted yet; each approves with `amsm approve {run} "
            f"{done.waiting.step}` (give it up: `amsm abort {run} --reason TEXT`)"
        )
    result = done.result
    if result is None:
        return f"{name} is still running (run {done.run_id}); see Runs"
    text = result.message + "".join(f"; {d}" for d in result.details)
    text += "".join(f"; {o.sentence()}" for o in result.overrides)
    return text + (f"; override {result.approved}" if result.approved else "")


async def control_approval(
    temporal: Client,
    inv: Inventory,
    operator: str,
    action: str,
    run: str,
    text: str | None,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """Approve (`approve`, `text` an optional note) or give up (`abort`, `text` the
    reason) the break-glass override a control waits on (docs/operators/two-person.md, "A
    control's override"), as `amsm approve RUN break-glass` and `amsm abort RUN` do.
    Only the approvals run that waits now: the form names it, so a page left open acts
    on nothing else."""
    waiting = await waiting_approvals(temporal, inv)
    if waiting is None or waiting.run_id != run:
        raise Refused(
            "no control waits for that break-glass approval now: it was approved, given up "
            "or ended (see Runs)"
        )
    k = signer(inv, key)
    if action == "abort":
        why = _one_line(text)
        if why is None:
            raise Refused("giving up a control's override needs a reason", "usage")
        await decide_step(temporal, inv, run, "abort", "", operator, why, key=k, console=True)
        return f"gave up {waiting.title}: the control does nothing"
    if action != "approve":
        raise Refused(f"no such action {action!r}: approve or abort", "usage")
    sig = OperatorSignal(step=BREAK_GLASS, operator=operator, note=_one_line(text))
    taken = await tick_step(temporal, inv, run, "approve", sig, key=k, console=True)
    signed = " (signed with the console's key)" if k is not None else ""
    return f"approved {waiting.title} as {operator}{signed}" + (
        f": {taken.approvals}" if taken.approvals else ""
    )
