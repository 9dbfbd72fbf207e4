"""The operator's acts on a run: confirm a manual step, approve a gate (the run's
`confirm-step` / `approve-step` updates), retry or skip a failed step or one client of
it, abort the run (`decide-step`). Each is answered once the run has taken it; the run's
validators refuse what they refuse, and the refusal says the rule and why."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.refusal import Refused
from api.runs import fetch_checklist, resolve_run, send_update
from inventory import intent
from inventory.intent import SignedIntent
from inventory.models import Inventory
from workflows.base import PairWorkflow
from workflows.models import Checklist, Decision, OperatorSignal, StepState
from workflows.signing import input_digest
from workflows.view import approvals_line, lapsed_lines

UPDATES = {"confirm": PairWorkflow.confirm_step, "approve": PairWorkflow.approve_step}
LIVE_STATES = ("running", "awaiting-operator")


class Ticked(BaseModel):
    """A confirmation or an approval the run took: the step's status after it, and the
    step the run waits for now, if any."""

    run_id: str
    step: str
    status: str | None = None
    awaiting: str | None = None
    # A gate that needs several people (docs/operators/two-person.md): "1 of 2
    # approvals: ann at 02:13" once the run took this one, and each approval that lapsed.
    approvals: str | None = None
    lapsed: list[str] = []
    counted: bool = True  # false: this approval lapsed at once (the devices had changed)


class Decided(BaseModel):
    """A decision the run took (or, a second abort, had taken already)."""

    run_id: str
    action: str
    step: str
    client: str | None = None


def step_of(c: Checklist, step_id: str) -> StepState:
    """The step of the run's checklist; a usage refusal naming the steps it has."""
    try:
        return c.step(step_id)
    except KeyError:
        ids = ", ".join(s.id for s in c.steps)
        raise Refused(f"run {c.run_id} has no step {step_id!r}; steps: {ids}", "usage") from None


def waits_for(c: Checklist, step: StepState, verb: str) -> None:
    """Refused unless the run is open and STEP waits for this verb (a manual step for a
    confirmation, a gate for an approval), with what to do instead."""
    want = "awaiting-approval" if verb == "approve" else "awaiting-confirmation"
    if c.state not in LIVE_STATES:
        raise Refused(f"run {c.run_id} is {c.state}; nothing to {verb}")
    if step.status != want:
        hint = ""
        if step.kind == "gate" and verb == "confirm":
            hint = f" (it is a gate: amsm approve {c.run_id} {step.id})"
        elif step.kind == "manual" and verb == "approve":
            hint = f" (it is a manual step: amsm confirm {c.run_id} {step.id})"
        elif c.awaiting:
            hint = f"; the run waits for {c.awaiting[0].id}"
        raise Refused(f"step {step.id} is {step.status}, not {want}{hint}")


async def tick(
    temporal: Client,
    inv: Inventory,
    run: str,
    verb: str,
    sig: OperatorSignal,
    check: bool = True,
    guard: Callable[[Checklist, StepState], None] | None = None,
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
) -> Ticked:
    """Confirm (verb `confirm`) or approve (`approve`) SIG's step of RUN. `check`: refuse
    here what the run would refuse (a run not open, a step not waiting for this verb),
    saying what to type instead; `guard`: the caller's own proof before it is sent (the
    console's typed count at a gate), raising Refused; `key`: the operator's, to sign the
    act with (docs/operators/signed-acts.md), or the console's (`console`: it signs for
    the operator logged in)."""
    if verb not in UPDATES:
        raise Refused(f"no such action {verb!r}: confirm or approve", "usage")
    handle = await resolve_run(temporal, inv, run)
    before = await fetch_checklist(handle)
    step = step_of(before, sig.step)
    if check:
        waits_for(before, step, verb)
    if guard is not None:
        guard(before, step)
    if key is not None:
        shown = intent.shown_for(verb, step.items, sig.clients)
        sig = sig.model_copy(
            update={
                "intent": signed(key, before, verb, sig.step, sig.operator, shown, console=console)
            }
        )
    taken = await send_update(temporal, handle, UPDATES[verb], sig)
    ticked = Ticked(
        run_id=taken.run_id, step=sig.step, status=taken.step_status, awaiting=taken.awaiting
    )
    if verb == "approve" and step.required is not None:
        gate = step_of(await fetch_checklist(handle), sig.step)
        ticked.approvals, ticked.lapsed = approvals_line(gate), lapsed_lines(gate)
        ticked.counted = any(a.operator.lower() == sig.operator.lower() for a in gate.counted)
    return ticked


def signed(
    key: Ed25519PrivateKey,
    c: Checklist,
    action: str,
    step: str,
    operator: str,
    shown: str | None = None,
    client: str | None = None,
    console: bool = False,
) -> SignedIntent:
    """The act signed with `key`: bound to the run as its checklist says (its pair, its
    first run id, which a continuation keeps), now, with a nonce of its own. `console`:
    `key` is the console's, signing for `operator`, who logged in to it."""
    return intent.sign(
        intent.Intent(
            pair=c.pair,
            run=c.first_run_id or c.run_id,
            step=step,
            action=action,  # type: ignore[arg-type]
            client=client,
            shown=shown,
            operator=operator,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            nonce=secrets.token_hex(16),
            console=console,
        ),
        key,
    )


def failed_client(step: StepState, action: str, host: str | None) -> str | None:
    """Refused unless STEP (or its client HOST) is one this decision may take: a failed
    step or client, or (a skip) a step waiting for the operator. HOST as the run spells
    it."""
    failed = [c.host for c in step.failed_clients]
    if host and host.lower() not in {h.lower() for h in failed}:
        raise Refused(
            f"{host} is not a failed client of {step.id} (failed: {', '.join(failed) or 'none'})"
        )
    can_skip_waiting = action == "skip" and step.status in (
        "awaiting-confirmation",
        "awaiting-approval",
    )
    if step.status != "failed" and not failed and not can_skip_waiting:
        raise Refused(
            f"step {step.id} is {step.status}; only a failed step "
            + ("or one awaiting the operator " if action == "skip" else "")
            + f"can be {'retried' if action == 'retry' else 'skipped'}"
        )
    return next(h for h in failed if h.lower() == host.lower()) if host else None


async def decide(
    temporal: Client,
    inv: Inventory,
    run: str,
    action: str,
    step_id: str,
    operator: str,
    reason: str | None,
    client_host: str | None = None,
    check: bool = True,
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
) -> Decided:
    """Retry or skip a failed step of RUN (or one client of it), or abort RUN (`step_id`
    empty): the `decide-step` update. `check`: refuse here what the run would refuse (a
    run not open, a step that is not failed, a client that did not fail); a second abort
    is then answered as the first (the run refuses it)."""
    if action not in ("retry", "skip", "abort"):
        raise Refused(f"unknown decision {action!r}: retry, skip or abort", "usage")
    handle = await resolve_run(temporal, inv, run)
    if action == "abort":
        step_id = ""
    before = await fetch_checklist(handle) if check or key is not None else None
    if before is not None and check:
        if before.state not in LIVE_STATES:
            raise Refused(f"run {before.run_id} is {before.state}; nothing to {action}")
        if action != "abort":
            client_host = failed_client(step_of(before, step_id), action, client_host)
        if action == "abort" and any(x.action == "abort" for x in before.decisions):
            # Already aborting: the run refuses a second abort.
            return Decided(run_id=before.run_id, action=action, step=step_id)
    d = Decision(
        step=step_id,
        action=action,  # type: ignore[arg-type]
        operator=operator,
        reason=reason,
        client=client_host or None,
    )
    if key is not None and before is not None:
        d.intent = signed(key, before, action, step_id, operator, client=d.client, console=console)
    taken = await send_update(temporal, handle, PairWorkflow.decide_step, d)
    return Decided(run_id=taken.run_id, action=action, step=step_id, client=client_host or None)


def read_key(path: str, option: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file `path` (as `amsm keys new` writes it), for
    `option`; a usage refusal saying what is wrong: unreadable, readable by others, not
    such a key (docs/operators/signed-acts.md)."""
    p = Path(path)
    try:
        if p.stat().st_mode & 0o077:
            raise Refused(f"{option} {p}: readable by others; chmod 600 it first", "usage")
        key = load_pem_private_key(p.read_bytes(), password=None)
    except OSError as e:
        raise Refused(f"{option} {p}: cannot read it ({e.strerror or e})", "usage") from None
    except (ValueError, TypeError):
        raise Refused(
            f"{option} {p}: not a private key as `amsm keys new` writes it", "usage"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise Refused(f"{option} {p}: not an Ed25519 key (`amsm keys new` makes one)", "usage")
    return key


def signed_input(
    key: Ed25519PrivateKey,
    pair: str,
    workflow_id: str,
    what: str,
    action: str,
    inp: BaseModel,
    operator: str,
    console: bool = False,
) -> SignedIntent:
    """An act that rides on a workflow's input (a start, a control) signed with `key`:
    bound to the pair, the workflow id, `what` (the kind, the control), the action and the
    whole input as a digest (workflows/signing.py), now, with a nonce of its own."""
    return intent.sign(
        intent.Intent(
            pair=pair,
            run=workflow_id,
            step=what,
            action=action,  # type: ignore[arg-type]
            shown=input_digest(inp),
            operator=operator,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            nonce=secrets.token_hex(16),
            console=console,
        ),
        key,
    )


async def followed_run(temporal: Client, pair: str, workflow_id: str) -> str:
    """The run a signed start or control now follows under `workflow_id` (the pair's, or
    its control id): the latest run there (the last of a chain that continued as new),
    or intent.NO_RUN before the first. Its intent is bound to it (intent.start_binding),
    so it starts one run."""
    try:
        desc = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return intent.NO_RUN
        raise Refused(
            f"the runs of pair {pair} under {workflow_id} cannot be read to sign: {e.message}"
        ) from None
    return desc.run_id
