"""One rule book for signals and decisions (workflows/rules.py): the checklist engine and the
history walk (records/legacy_walk.py) refuse the same signals with the same sentence.

The property: take a committed history cut at any event, walk it, then send random
confirms, approves, decisions and unknown signals. Before each one the engine's own
checks (StepRunner.not_operator, check_signal, check_decision, over a checklist holding
the steps as the walk sees them then) say whether the run takes it; the walk must judge
it the same way, word for word.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.models import Approval
from records.history import SignalRecord, step_table
from records.legacy_walk import Walk
from records.reconstruct import reconstruct
from tests.support import approvals
from tests.support.histories import events_of, run_of, signal, until
from workflows import checklist, rules
from workflows.checklist import StepRunner
from workflows.kinds import KINDS
from workflows.models import (
    Checklist,
    ClientProgress,
    Decision,
    OperatorSignal,
    StepDef,
    StepState,
)

HISTORIES = Path(__file__).parents[1] / "histories"


@cache
def _events(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    events = json.loads(path.read_text())["events"]
    return events, [int(e["eventId"]) for e in events]


def _with_steps(path: Path) -> bool:
    """A run of a big workflow (it has a step table), committed as plain JSON events."""
    try:
        events, ids = _events(path)
        run = run_of(until(events, ids[0]), path.name)
    except Exception:
        return False
    return bool(step_table(run.workflow_type, run.input))


OPEN = ("awaiting-confirmation", "awaiting-approval", "failed")


@cache
def _before_signals(path: Path) -> list[int]:
    """The event before each signal or update of an operator."""
    events, ids = _events(path)
    kinds = ("SIGNALED", "UPDATE_ACCEPTED")
    return [int(e["eventId"]) - 1 for e in events if e["eventType"].endswith(kinds)] or ids


CHECKLIST_HISTORIES = [p for p in sorted(HISTORIES.rglob("*.json")) if _with_steps(p)]


def _walk_until(path: Path, last: int) -> tuple[Walk, list[StepDef], str]:
    events, _ = _events(path)
    run = run_of(until(events, last), path.name)
    defs = step_table(run.workflow_type, run.input)
    w = Walk(run, defs)
    w.walk()
    return w, defs, run.workflow_type


def _engine_seeing(w: Walk, workflow_type: str) -> StepRunner:
    """The engine's StepRunner over a checklist of the steps as the walk has them now
    (without the workflow around it: only its checks are called)."""
    r = object.__new__(StepRunner)
    r.checklist = Checklist.model_construct(
        steps=[
            StepState(
                id=s.id,
                kind=s.kind,  # type: ignore[arg-type]
                title=s.title,
                status=w.effective(j),  # type: ignore[arg-type]
                clients=None
                if s.clients is None
                else [ClientProgress(host=c.host, status=c.status, to=c.to) for c in s.clients],
            )
            for j, s in enumerate(w.steps)
        ]
    )
    r.operators = set(w.operators)
    r.abort = (
        None
        if w.abort is None
        else Decision(action="abort", operator=w.abort.operator, reason=w.abort.reason or "?")
    )
    # What each workflow hands its StepRunner: its row's gates (workflows/base.py).
    r.gates = dict(KINDS[workflow_type].gates)
    r._signals, r._decisions = {}, {}
    # What needs the workflow around it: the record of a rejection or a decision.
    r.reject = lambda *_: None  # type: ignore[method-assign]
    r._record = lambda _: None  # type: ignore[method-assign]
    return r


def _engine_says(r: StepRunner, name: str, payload: OperatorSignal | Decision | None) -> str | None:
    """As PairWorkflow hands a signal on: unknown names to its dynamic handler, the rest to
    StepRunner.on_signal / on_decision (which hold what they take until the workflow acts)."""
    if payload is None:
        return rules.unknown_signal_refusal(name)
    # (It logs what it takes on the workflow's logger, which needs a workflow around it.)
    with mock.patch.object(checklist.workflow, "logger", logging.getLogger(__name__)):
        if isinstance(payload, Decision):
            return r.on_decision(payload)
        return r.on_signal(name, payload)


def _record(eid: int, name: str, payload: OperatorSignal | Decision | None) -> SignalRecord:
    """The signal as records/history.py reads it from its event."""
    at = datetime(2030, 1, 1, tzinfo=UTC)
    rec = SignalRecord(event_id=eid, at=at, name=name, identity="4242@ops")
    if isinstance(payload, OperatorSignal):
        rec.step, rec.operator, rec.note = payload.step, payload.operator, payload.note
    elif isinstance(payload, Decision):
        rec.step, rec.operator, rec.action = payload.step, payload.operator, payload.action
        rec.reason, rec.client = payload.reason, payload.client
    return rec


@st.composite
def _signal(
    draw: st.DrawFn, steps: list[str], operators: list[str], hosts: list[str]
) -> tuple[str, OperatorSignal | Decision | None]:
    name = draw(st.sampled_from(["confirm", "approve", "decide", "decide", "decide", "nudge"]))
    step = draw(st.sampled_from([*steps, "no-such-step"]))
    operator = draw(st.sampled_from([*operators, "mallory"]))
    if name in ("confirm", "approve"):
        return name, OperatorSignal(step=step, operator=operator, note="ok")
    if name == "decide":
        return name, Decision(
            step=draw(st.sampled_from([step, step, step, ""])),
            action=draw(st.sampled_from(["retry", "skip", "skip", "abort"])),
            operator=operator,
            reason=draw(st.sampled_from([None, "", "  ", "rollback window closed", "late"])),
            client=draw(st.sampled_from([None, None, *hosts, "ghost"])),
        )
    return name, None


def test_there_are_histories_of_every_big_workflow_to_walk() -> None:
    kinds = {_walk_until(p, _events(p)[1][0])[2] for p in CHECKLIST_HISTORIES}
    assert {"switch", "split", "split-switch", "restore"} <= kinds


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_walk_and_the_engine_refuse_the_same_signals(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(CHECKLIST_HISTORIES), label="history")
    _, ids = _events(path)
    # Cut anywhere, but most often just before an operator's signal: where a step waits.
    last = data.draw(
        st.one_of(st.sampled_from(_before_signals(path)), st.sampled_from(ids)),
        label="cut after event",
    )
    w, defs, kind = _walk_until(path, last)
    operators = sorted(w.operators) or ["lead"]
    hosts = sorted({c.host for s in w.steps for c in s.clients or []})
    n_signals = data.draw(st.integers(min_value=1, max_value=6), label="how many signals")
    # Each signal in a workflow task of its own (the engine acts on it before the next),
    # or sent twice in one task (the engine still holds the first when the second comes).
    base = ids[-1]
    w.task_ids += [base + 3 * n + 2 for n in range(1, n_signals + 1)]
    for n in range(1, n_signals + 1):
        # Most signals name a step that waits or failed now, the rest any step.
        now = [s.id for j, s in enumerate(w.steps) if w.effective(j) in OPEN] or [defs[0].id]
        steps = data.draw(st.sampled_from([now, [d.id for d in defs]]), label="steps")
        name, payload = data.draw(_signal(steps, operators, hosts), label="signal")
        engine = _engine_seeing(w, kind)
        twice = data.draw(st.booleans(), label="twice in one task")
        for eid in (base + 3 * n, base + 3 * n + 1)[: 2 if twice else 1]:
            said = _engine_says(engine, name, payload)
            rec = _record(eid, name, payload)
            w.on_signal(rec)
            walk = rec.rejection if rec.verdict == "rejected" else None
            assert rec.verdict in ("accepted", "rejected")
            assert walk == said, (path.name, last, eid, name, payload)


# -- the rule book itself -----------------------------------------------------------------------
GATE = rules.StepView(
    id="approve-overwrite", kind="gate", title="Overwrite A", status="awaiting-approval"
)
FAILED = rules.StepView(id="dsm-y-main", kind="auto", title="Y's DSM to main", status="failed")


def test_only_an_approval_passes_a_gate_unless_its_skip_is_allowed() -> None:
    skip = Decision(step=GATE.id, action="skip", operator="lead", reason="later")
    assert rules.decision_refusal(skip, GATE) == (
        "approve-overwrite is a gate: only an approval passes it (Overwrite A). Approve it "
        "(amsm approve RUN approve-overwrite) or abort the run"
    )
    assert rules.decision_refusal(skip, GATE, gate_skippable=True) is None
    assert rules.signal_refusal("approve", GATE.id, GATE) is None
    assert (
        rules.signal_refusal("confirm", GATE.id, GATE) == "approve-overwrite is a gate: use approve"
    )


def test_a_step_takes_one_decision_and_a_run_one_abort() -> None:
    retry = Decision(step=FAILED.id, action="retry", operator="lead")
    assert rules.decision_refusal(retry, FAILED) is None
    assert (
        rules.decision_refusal(retry, FAILED, decided=True) == "dsm-y-main already has a decision"
    )
    abort = Decision(action="abort", operator="other", reason="twice")
    assert rules.decision_refusal(abort, None, aborting_by="lead") == (
        "the run is already aborting (by lead)"
    )
    assert rules.decision_refusal(Decision(action="skip", operator="x"), FAILED) == (
        "skip needs a reason"
    )


@pytest.mark.parametrize(
    ("kind", "step", "taken", "why"),
    [
        ("confirm", FAILED, False, "dsm-y-main is automatic; it cannot be confirmed"),
        ("approve", None, False, "no step 'nope' in this workflow"),
        ("approve", GATE, True, "approve-overwrite is awaiting-approval, not awaiting-approval"),
    ],
)
def test_confirm_and_approve(kind: str, step: rules.StepView | None, taken: bool, why: str) -> None:
    assert rules.signal_refusal(kind, "nope" if step is None else step.id, step, taken) == why


def test_a_client_step_takes_decisions_for_its_failed_clients() -> None:
    step = rules.StepView(
        id="switch-clients", kind="auto", title="", status="running",
        switches_clients=True, failed=("ED-02",),
    )  # fmt: skip
    d = Decision(step=step.id, action="retry", operator="lead", client="ED-01")
    assert (
        rules.decision_refusal(d, step)
        == "no failed client ED-01 in switch-clients (failed: ED-02)"
    )
    assert rules.decision_refusal(d.model_copy(update={"client": "ED-02"}), step) is None


# -- where the walk had drifted from the engine -----------------------------------------------
def _judged(name: str, cut_before: int, *signals: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Cut a committed history (v1) just before an event, send the signals (all handled by
    the one workflow task that comes next) and judge them."""
    events = until(events_of(name), cut_before - 1)
    for n, value in enumerate(signals):
        events.append(signal(cut_before + n, "2026-11-25T09:40:00Z", "decide", value))
    run = run_of(events)
    reconstruct(run)
    return [(s.verdict, s.rejection) for s in run.signals if s.event_id >= cut_before]


def test_the_walk_refuses_to_skip_a_gate_that_only_an_approval_passes() -> None:
    skip = {"step": "approve-overwrite", "action": "skip", "operator": "lead", "reason": "later"}
    assert _judged("switch-x-to-y.json", 122, skip) == [
        (
            "rejected",
            "approve-overwrite is a gate: only an approval passes it (From here on X's "
            "database and media are overwritten from Y). Approve it (amsm approve RUN "
            "approve-overwrite) or abort the run",
        )
    ]
    # restore's approve-purge may be skipped: the orphans stay.
    skip = {"step": "approve-purge", "action": "skip", "operator": "lead", "reason": "keep them"}
    assert _judged("restore-with-orphans-main-x.json", 23, skip) == [("accepted", None)]


def test_the_walk_refuses_a_second_decision_the_engine_still_holds() -> None:
    skip = {"step": "verify-y", "action": "skip", "operator": "lead", "reason": "checked by phone"}
    assert _judged("switch-x-to-y.json", 118, skip, {**skip, "operator": "other"}) == [
        ("accepted", None),
        ("rejected", "verify-y already has a decision"),
    ]


# -- two people for what cannot be undone (docs/operators/two-person.md) ----------------------
@settings(max_examples=150, deadline=None)
@given(
    required=st.integers(min_value=1, max_value=3),
    not_initiator=st.booleans(),
    acts=st.lists(
        st.tuples(
            st.sampled_from(["ann", "bob", "cat", "dan", "vic"]),  # dan: no key; vic: viewer
            st.sampled_from([None, None, None, "ann", "bob", "cat"]),  # whose key signs
            st.booleans(),  # the devices changed before the gate reads them again
        ),
        max_size=10,
    ),
)
def test_a_gate_opens_only_on_enough_distinct_proven_people(
    required: int, not_initiator: bool, acts: list[tuple[str, str | None, bool]]
) -> None:
    """Against a model of the rule: an approval counts when it comes from an operator,
    proven by their own key, not the initiator under not_initiator, not one who counts
    already; a change of what the gate shows lapses every approval; the gate opens the
    moment `required` distinct people count, and never before."""
    r = approvals.gate_runner(Approval(required=required, not_initiator=not_initiator))
    counts = {"dsm-y": 118}

    async def read_again(step: StepState) -> str:
        step.items = ["dsm-x 120", f"dsm-y {counts['dsm-y']}"]
        return ", ".join(step.items)

    r.rereads[approvals.GATE] = read_again
    counted: set[str] = set()
    for n, (who, signer, changed) in enumerate(acts):
        key = signer or who
        proven = who in approvals.OPERATORS and key in approvals.KEYS and key == who
        takes = (
            who in approvals.OPERATORS
            and key in approvals.KEYS
            and key == who
            and not (not_initiator and who == "ann")
            and who not in counted
        )
        said = approvals.approve(r, who, signer=signer, nonce=f"n{n}")
        assert (said is None) == takes, (who, signer, said)
        if said is not None:
            if who not in approvals.OPERATORS:
                assert said == f"{who} is not an operator of this pair"
            elif not proven:
                assert said.startswith(("unsigned: ", "intent refused (unknown-key)"))
            continue
        counted.add(who)
        if changed:
            counts["dsm-y"] += 1
            counted.clear()
        opens = approvals.judge(r)
        assert {a.operator for a in r.checklist.step(approvals.GATE).counted} == counted
        assert opens == (len(counted) >= required)
        if opens:
            return
    assert r.checklist.step(approvals.GATE).status == "awaiting-approval"
