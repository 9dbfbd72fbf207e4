"""The rule book for an operator's signals and decisions: when a confirm, an approve or a
decide is taken, and the sentence that refuses it when it is not.

The checklist engine (workflows/checklist.py) judges every signal and update with these
functions, and the history walk (records/legacy_walk.py) judges the signals of a history
with the same ones, so the two cannot drift apart. They are pure: the caller says what the
step looks like now (a `StepView`) and what is pending; no I/O, no workflow API.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from workflows.limits import cut

# The signals (and, with the same names, the updates) a run takes.
SIGNALS = ("confirm", "approve", "decide")
# What each kind of signal waits for.
WANTED = {"confirm": "awaiting-confirmation", "approve": "awaiting-approval"}
WAITING = ("awaiting-confirmation", "awaiting-approval")


class _Client(Protocol):
    @property
    def host(self) -> str: ...


class _Step(Protocol):
    """A step as the engine (`StepState`) or the walk (`StepTrack`) holds it."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def clients(self) -> Sequence[_Client] | None: ...
    @property
    def failed_clients(self) -> Sequence[_Client]: ...


class DecisionLike(Protocol):
    """A decision as the engine receives it (`Decision`) or the history shows it."""

    @property
    def step(self) -> str: ...
    @property
    def action(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def client(self) -> str | None: ...


@dataclass(frozen=True)
class StepView:
    """What the rules read of a step: its id, kind, title, status now, and, for a step
    that switches clients, the hosts that failed and wait for their own decision."""

    id: str
    kind: str
    title: str
    status: str
    switches_clients: bool = False
    failed: tuple[str, ...] = ()


def view(step: _Step, status: str | None = None) -> StepView:
    """The rules' view of a step; `status`: the one it has now, where the holder knows
    better than the step's field (the walk's step after a settled one waits already)."""
    return StepView(
        id=step.id,
        kind=step.kind,
        title=step.title,
        status=status if status is not None else step.status,
        switches_clients=step.clients is not None,
        failed=tuple(c.host for c in step.failed_clients),
    )


def unknown_signal_refusal(name: str) -> str:
    """Any other signal is refused like a malformed one (for step "?" by operator "?")."""
    return f"unknown signal {cut(name, 60)!r}: this run takes confirm, approve and decide"


def operator_refusal(operators: Collection[str], who: str) -> str | None:
    """`operators`: who may act on the pair, in lower case (empty: anyone)."""
    if operators and who.lower() not in operators:
        return f"{who} is not an operator of this pair"
    return None


def identity_refusal(signed: bool, refused: str | None, require_signed: bool) -> str | None:
    """Why an act is refused for who it is (signed acts, docs/operators/signed-acts.md),
    or None when it is taken. `signed`: it carries a signed intent; `refused`: the
    sentence its verification refused it with (inventory/intent.py), None when proven."""
    if signed:
        return refused
    if require_signed:
        return (
            "unsigned: this pair takes only signed acts (identity.require_signed); sign "
            "with --key FILE or AMSM_KEY (docs/operators/signed-acts.md)"
        )
    return None


def signal_refusal(
    kind: str, step_id: str, step: StepView | None, taken: bool = False
) -> str | None:
    """Why a confirm or approve of `step_id` is refused, or None when it is taken.
    `step`: None when the run has no such step; `taken`: the step already holds a
    confirmation the run has not acted on yet."""
    want = WANTED[kind]
    if step is None:
        return f"no step {step_id!r} in this workflow"
    if step.status == want and not taken:
        return None
    if step.kind == "auto":
        return f"{step.id} is automatic; it cannot be {kind}ed"
    if kind == "confirm" and step.kind == "gate":
        return f"{step.id} is a gate: use approve"
    if kind == "approve" and step.kind == "manual":
        return f"{step.id} is a manual step: use confirm"
    return f"{step.id} is {step.status}, not {want}"


def decision_refusal(
    d: DecisionLike,
    step: StepView | None,
    *,
    aborting_by: str | None = None,
    gate_skippable: bool = False,
    decided: bool = False,
) -> str | None:
    """Why a decision (retry, skip, abort) is refused, or None when it is taken.

    `step`: the step it names (None: the run has no such step); `aborting_by`: who
    aborted the run, when it is already aborting; `gate_skippable`: the step is a gate a
    skip may pass (with what it guards); `decided`: the step already holds a decision the
    run has not acted on yet."""
    if d.action is None:
        return "not a decision (step, action, operator, reason)"
    if d.action in ("skip", "abort") and not (d.reason or "").strip():
        return f"{d.action} needs a reason"
    if d.action == "abort":
        # A second abort changes nothing; refused, so that a flood of them (each update
        # the run accepts is stored whole, header and all) cannot fill the history.
        if aborting_by is not None:
            return f"the run is already aborting (by {aborting_by})"
        return None
    if step is None:
        return f"no step {d.step!r} in this workflow"
    if step.switches_clients and (d.client or step.failed):
        if not [h for h in step.failed if d.client in (None, h)]:
            failed = ", ".join(step.failed) or "none"
            who = f"client {d.client}" if d.client else "client"
            return f"no failed {who} in {step.id} (failed: {failed})"
        return None
    if step.kind == "gate" and d.action == "skip" and not gate_skippable:
        # Only an approval opens a gate; a skip that went on would run what it guards.
        return (
            f"{step.id} is a gate: only an approval passes it ({step.title}). Approve it "
            f"(amsm approve RUN {step.id}) or abort the run"
        )
    if step.status == "failed" or (d.action == "skip" and step.status in WAITING):
        if decided:
            return f"{step.id} already has a decision"
        return None
    return f"{step.id} is {step.status}; only a failed step can be retried or skipped"


# -- two people for what cannot be undone (docs/operators/two-person.md) ---------------------
TWO_PERSON_DOCS = "docs/operators/two-person.md"


def approval_refusal(
    gate: str,
    who: str,
    proven: bool,
    approved_by: Collection[str],
    initiator: str,
    required: int,
    not_initiator: bool,
) -> str | None:
    """Why an approval of a gate that needs `required` distinct proven people is refused,
    or None when it counts. `proven`: a key proved who it is; `approved_by`: who has
    approved already (their approvals still count); `initiator`: who started the run."""
    if not proven:
        return (
            f"{who}'s approval of {gate} is unproven: it needs {required} approvals, each "
            f"signed with an operator's key ({TWO_PERSON_DOCS})"
        )
    if not_initiator and who.lower() == initiator.lower():
        return (
            f"{who} started this run: {gate} needs {required} approvals from other operators "
            f"(approvals.{gate}.not_initiator; {TWO_PERSON_DOCS})"
        )
    if who.lower() in {a.lower() for a in approved_by}:
        return (
            f"{who} has approved {gate} already: it needs {required} different people "
            f"({TWO_PERSON_DOCS})"
        )
    return None


def judging_refusal(gate: str) -> str:
    """An approval that comes while the gate judges another (it reads the devices again)."""
    return (
        f"{gate} is taking another approval now (it reads the devices again); approve "
        f"again in a moment ({TWO_PERSON_DOCS})"
    )


def lapse_reason(shown_then: str | None, shown_now: str | None, now_text: str) -> str | None:
    """Why an approval given when the gate showed `shown_then` no longer counts now that
    it shows `shown_now` (digests, inventory/intent.py shown), or None when it still does.
    `now_text`: what the gate shows now, in words."""
    if shown_then == shown_now:
        return None
    return f"the gate read the devices again and they changed (now: {cut(now_text, 300)})"
