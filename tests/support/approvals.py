"""A gate that needs several people (docs/operators/two-person.md), without a server:
the engine's StepRunner at a restore's approve-overwrite (only its hooks are called, as
tests/unit/test_signal_rules.py builds one), operators ann, bob, cat with keys and dan
without, approvals signed as the CLI signs them, and the walk's judging of each."""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack
from datetime import UTC, datetime
from unittest import mock

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inventory import intent
from inventory.models import Approval
from workflows import checklist
from workflows.checklist import StepRunner
from workflows.models import Checklist, OperatorSignal, StepState

NOW = datetime(2030, 1, 1, 2, 13, tzinfo=UTC)
GATE = "approve-overwrite"
PEOPLE = {name: Ed25519PrivateKey.generate() for name in ("ann", "bob", "cat")}
KEYS = {n: intent.public_line(k.public_key()) for n, k in PEOPLE.items()}
OPERATORS = {*KEYS, "dan"}  # dan is an operator without a key


def gate_runner(rule: Approval, initiator: str = "ann") -> StepRunner:
    """A StepRunner whose restore waits at approve-overwrite under `rule`."""
    r = object.__new__(StepRunner)
    r.checklist = Checklist(
        workflow="restore",
        pair="demo",
        title="t",
        run_id="run-1",
        workflow_id="amsm-demo",
        initiator=initiator,
        steps=[StepState(id=GATE, kind="gate", title="t", status="awaiting-approval")],
    )
    gate = r.checklist.steps[0]
    gate.items, gate.required = ["dsm-x 120", "dsm-y 118"], rule.required
    r.operators, r.gates, r._signals, r._decisions = set(OPERATORS), {}, {}, {}
    r.abort = None
    r.operator_keys, r.console_key, r.require_signed = KEYS, None, True
    r.approval_rules = {GATE: rule}
    r.rereads = {}
    r.rejected: list[str] = []  # type: ignore[misc]
    r.reject = lambda *a: r.rejected.append(a[3])  # type: ignore[method-assign,attr-defined]
    r.publish = lambda: None  # type: ignore[method-assign]
    return r


def _in_workflow() -> ExitStack:
    stack = ExitStack()
    stack.enter_context(mock.patch.object(checklist.workflow, "logger", logging.getLogger()))
    stack.enter_context(mock.patch.object(checklist.workflow, "patched", lambda _: True))
    stack.enter_context(mock.patch.object(checklist.workflow, "now", lambda: NOW))
    return stack


def approve(r: StepRunner, who: str, signer: str | None = None, nonce: str = "") -> str | None:
    """`who` approves the gate as it shows now, signed with `signer`'s key (by default
    their own; none for a name without a key): the engine's refusal, or None."""
    step = r.checklist.step(GATE)
    signed = None
    if (signer or who) in PEOPLE:
        signed = intent.sign(
            intent.Intent(
                pair="demo",
                run="run-1",
                step=GATE,
                action="approve",
                shown=intent.shown(step.items),
                operator=who,
                at=NOW.isoformat(),
                nonce=(nonce or f"{who}-{len(r.checklist.nonces)}").ljust(16, "0"),
            ),
            PEOPLE[signer or who],
        )
    with _in_workflow():
        return r.on_signal("approve", OperatorSignal(step=GATE, operator=who, intent=signed))


def judge(r: StepRunner) -> bool | None:
    """What the walk does with the approval just taken (StepRunner._judge): True, the gate
    opens; False, it waits again."""
    step = r.checklist.step(GATE)
    r._signals.pop(step.id)
    with _in_workflow():
        opens = asyncio.run(r._judge(step, r.approval_rules[step.id]))
    if opens is False:
        step.status = "awaiting-approval"  # as _run_manual's loop waits again
    return opens
