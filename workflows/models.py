"""Messages of the workflows: inputs, signals, the checklist the query returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from activities.models import FenceState, OrphanClip
from inventory.blackout import Window
from inventory.intent import SignedIntent
from inventory.models import Side, Timing
from workflows.limits import (
    MAX_CLIENTS,
    MAX_OVERRIDES,
    MAX_PILOTS,
    Bounded,
    Name,
    Text,
    unique_hosts,
)
from workflows.outcomes import Outcome
from workflows.overrides import Override, OverrideRecord

# A list of host names from outside: bounded, and each host once (ED-01 is ed-01).
Hosts = Annotated[list[Name], Field(max_length=MAX_CLIENTS), AfterValidator(unique_hosts)]

StepKind = Literal["auto", "manual", "gate"]
StepStatus = Literal[
    "pending",
    "running",
    "awaiting-confirmation",
    "awaiting-approval",
    "done",
    "failed",
    "skipped",
]
# A step in one of these waits for the operator (so does one with a failed client).
WAITS_FOR_OPERATOR = ("awaiting-confirmation", "awaiting-approval", "failed")
RunState = Literal["running", "awaiting-operator", "completed", "aborted", "failed"]


class OperatorSignal(Bounded):
    """Payload of `confirm` and `approve`: {"step": ..., "operator": ..., "note": ...}.

    `clients` answers a step that asks which clients to act on (split's move-editors).
    """

    step: Name
    operator: Name = "unknown"
    note: Text | None = None
    clients: Hosts | None = None
    # The act signed with the operator's key (docs/operators/signed-acts.md); older
    # payloads have none.
    intent: SignedIntent | None = None


DecisionAction = Literal["retry", "skip", "abort"]


class Decision(Bounded):
    """Payload of `decide`: what to do about a failed step (or a failed client of one).

    {"step": "switch-clients", "action": "skip", "operator": "jo", "reason": "...",
     "client": "ED-03"}. `skip` and `abort` need a reason; `abort` needs no step.
    """

    step: Text = ""
    action: DecisionAction
    operator: Name = "unknown"
    reason: Text | None = None
    client: Name | None = None
    intent: SignedIntent | None = None  # as OperatorSignal's


class DecisionRecord(BaseModel):
    at: str
    step: str
    action: DecisionAction
    operator: str
    reason: str | None = None
    client: str | None = None
    proof: str | None = None  # proven by whose key, or unproven (signed acts)


class ApprovalRecord(BaseModel):
    """One approval of a gate that needs several people (docs/operators/two-person.md):
    who, when, their note, whose key proved it, and what the gate showed when they
    approved (a digest of its list: the counts or the orphans, inventory/intent.py shown).
    `lapsed`: why it no longer counts (the gate read the devices again and they changed)."""

    at: str
    operator: str
    proof: str | None = None
    note: str | None = None
    shown: str | None = None
    lapsed: str | None = None


# How an update's validator refuses while the run has not yet read who may act (a run
# just started, or just continued as new): the CLI tries again for a few seconds.
STILL_STARTING = "still starting; try again in a moment"


class UpdateResult(BaseModel):
    """What `confirm-step`, `approve-step`, `decide-step` and the fence's `end` answer, once
    the run has taken the request. What does not fit the run now is refused by the
    update's validator (nothing is recorded); what fits but comes from someone who may not
    act is taken and refused here (`accepted` false, `reason`), on record in the run."""

    accepted: bool = True
    reason: str | None = None
    run_id: str = ""
    step: str = ""  # the step it was for ("" for an abort, or a fence's end)
    step_status: StepStatus | None = None  # that step's status once the run took it
    awaiting: str | None = None  # the step the run waits on for the operator now


class ScheduledBy(Bounded):
    """A run the schedule started (workflows/schedule.py): who scheduled it, when they
    filed it and under which schedule; None on a run started by hand."""

    by: Name
    filed: str  # ISO 8601, UTC
    schedule_id: Name
    # When it was filed for and how long it might start after (ISO 8601, seconds), and
    # the intent its operator signed when filing it (docs/operators/signed-acts.md,
    # scheduled runs): the run checks it against its own input. None in runs from
    # before signed schedules, and for an unsigned filing.
    at: str | None = None
    window: float | None = None
    intent: SignedIntent | None = None

    def sentence(self) -> str:
        return f"scheduled by {self.by} at {self.filed}, started by the schedule"


class SwitchInput(Bounded):
    """switch: `to` becomes main. `unplanned`: the other side is lost (down or unreachable);
    `reason` says why, and is required then."""

    pair: Name
    to: Side
    initiator: Name = "unknown"
    # Break-glass overrides of the rules a start checks (no-switch-in-blackout), each
    # with its reason; recorded in the checklist.
    overrides: Annotated[list[Override], Field(max_length=MAX_OVERRIDES)] = []
    unplanned: bool = False
    reason: Text | None = None
    # Only a run's own continuation (continue-as-new) carries its checklist on.
    # Only a run the schedule started: who scheduled it (old histories have none).
    scheduled: ScheduledBy | None = None
    # The start signed by whoever started it (docs/operators/signed-acts.md).
    intent: SignedIntent | None = None
    resume: Checklist | None = None


class SplitInput(Bounded):
    """split: `main` stays main, the other side becomes independent."""

    pair: Name
    main: Side
    initiator: Name = "unknown"
    # Break-glass overrides of the rules a start checks (no-switch-in-blackout), each
    # with its reason; recorded in the checklist.
    overrides: Annotated[list[Override], Field(max_length=MAX_OVERRIDES)] = []
    # Only a run's own continuation (continue-as-new) carries its checklist on.
    # Only a run the schedule started: who scheduled it (old histories have none).
    scheduled: ScheduledBy | None = None
    # The start signed by whoever started it (docs/operators/signed-acts.md).
    intent: SignedIntent | None = None
    resume: Checklist | None = None


class SplitSwitchInput(Bounded):
    """split-switch: `to` becomes main in stages, the pilots first."""

    pair: Name
    to: Side
    pilots: Annotated[list[Name], Field(max_length=MAX_PILOTS), AfterValidator(unique_hosts)]
    initiator: Name = "unknown"
    # Break-glass overrides of the rules a start checks (no-switch-in-blackout), each
    # with its reason; recorded in the checklist.
    overrides: Annotated[list[Override], Field(max_length=MAX_OVERRIDES)] = []
    # How often the current details are refreshed while verify-pilots waits (seconds):
    # at least a minute (a shorter one grows the history for nothing), at most a day.
    reminder_interval: float = Field(3600, ge=60, le=86400)
    # Only a run's own continuation (continue-as-new) carries its checklist on.
    # Only a run the schedule started: who scheduled it (old histories have none).
    scheduled: ScheduledBy | None = None
    # The start signed by whoever started it (docs/operators/signed-acts.md).
    intent: SignedIntent | None = None
    resume: Checklist | None = None


class RestoreInput(Bounded):
    """restore: rejoin a split pair with `main` as the main side."""

    pair: Name
    main: Side
    initiator: Name = "unknown"
    # Break-glass overrides of the rules a start checks (no-switch-in-blackout), each
    # with its reason; recorded in the checklist.
    overrides: Annotated[list[Override], Field(max_length=MAX_OVERRIDES)] = []
    asset_tolerance: int = Field(0, ge=0, le=1_000_000)
    # Only in a continued run: what find-orphans found (the approval covers exactly that).
    found: list[OrphanClip] = []
    # Only a run's own continuation (continue-as-new) carries its checklist on.
    # Only a run the schedule started: who scheduled it (old histories have none).
    scheduled: ScheduledBy | None = None
    # The start signed by whoever started it (docs/operators/signed-acts.md).
    intent: SignedIntent | None = None
    resume: Checklist | None = None


class StatusInput(Bounded):
    pair: Name


class StepDef(BaseModel):
    id: str
    kind: StepKind
    title: str


class ClientProgress(BaseModel):
    host: str
    status: Literal["pending", "switching", "done", "failed", "skipped"] = "pending"
    message: str | None = None
    error: str | None = None
    seconds: float | None = None
    attempts: int = 0
    to: Side | None = None
    workflow_id: str | None = None  # the child workflow of the latest attempt


class StepState(BaseModel):
    id: str
    kind: StepKind
    title: str
    status: StepStatus = "pending"
    started_at: str | None = None
    ended_at: str | None = None
    operator: str | None = None
    note: str | None = None
    message: str | None = None
    error: str | None = None
    clients: list[ClientProgress] | None = None
    # What the step found, in full (e.g. the orphan clips a restore would purge).
    items: list[str] | None = None
    waiting_since: str | None = None
    # What happened to it, as data (workflows/outcomes.py makes the words from it): set
    # when the step is done or skipped. `reason`: a skip's, or why the side was lost.
    outcome: Outcome | None = None
    reason: str | None = None
    # Who the act that passed it is proven to be (signed acts): "proven by ann's key",
    # "ann, through the console ...", or "unproven"; None where the pair has no keys.
    proof: str | None = None
    # A gate that needs several people (docs/operators/two-person.md): how many, and
    # each approval given (a lapsed one stays, saying why); None elsewhere.
    required: int | None = None
    approvals: list[ApprovalRecord] | None = None

    @property
    def counted(self) -> list[ApprovalRecord]:
        """The approvals that still count (not lapsed)."""
        return [a for a in self.approvals or [] if a.lapsed is None]

    @property
    def pending_clients(self) -> int:
        return sum(1 for c in self.clients or [] if c.status in ("pending", "switching"))

    @property
    def failed_clients(self) -> list[ClientProgress]:
        return [c for c in self.clients or [] if c.status == "failed"]

    @property
    def needs_operator(self) -> bool:
        return self.status in WAITS_FOR_OPERATOR or bool(self.failed_clients)

    def take(self, rec: StepRecord) -> None:
        """The step as its record says it became (workflows/checklist.py records every
        change: its status, outcome, operator and texts, those cut at RECORD_TEXT); its
        times, clients and items are not in the record and stay."""
        self.status, self.outcome, self.operator = rec.status, rec.outcome, rec.operator
        self.reason, self.note, self.message, self.error = (
            rec.reason,
            rec.note,
            rec.message,
            rec.error,
        )


class StepRecord(BaseModel):
    """What the history keeps of a step each time it changes (workflows/checklist.py
    `STEP_RECORDS`): its state as data, with the texts the checklist shows cut short.
    `event_id`: the event that keeps it, set when a history is read (records/history.py)."""

    step: str
    at: str
    status: StepStatus
    outcome: Outcome | None = None
    reason: str | None = None
    operator: str | None = None
    note: str | None = None
    message: str | None = None
    error: str | None = None
    event_id: int | None = None


class FenceRef(BaseModel):
    """Where to find a fencing workflow: `amsm fence` reads its state from there."""

    workflow_id: str
    run_id: str
    side: Side


class FenceInput(Bounded):
    pair: Name
    side: Side  # the lost side, to be fenced the moment it answers
    reason: Text
    started_by: Name  # the operator of the unplanned switch
    switch_run_id: Text = ""
    # Only the fence's own continuation (continue-as-new) carries its state on.
    resume: FenceState | None = None


class FenceEnd(Bounded):
    """Payload of the fence's `end` update: an operator ends the fencing by hand."""

    operator: Name = "unknown"
    reason: Text
    # The end signed by the operator (signed acts, docs/operators/signed-acts.md).
    intent: SignedIntent | None = None


class RejectedSignal(BaseModel):
    at: str
    signal: str
    step: str
    operator: str
    reason: str


# What a delivery was: the first word to a waiting step's audience, a reminder, the
# escalation, or a run's event (workflows/notify.py).
# "approval": one approval of several is in; the others are told one more is needed.
DeliveryKind = Literal["waiting", "reminder", "escalation", "run", "readiness", "approval"]


class Delivery(BaseModel):
    """One message told to an Apprise tag (docs/operators/notifications.md): when, to
    whom, about what, and whether it was delivered (else the error, never a secret)."""

    at: str
    audience: str
    kind: DeliveryKind
    subject: str
    step: str | None = None
    since: str | None = None  # the step's wait this message is about
    delivered: bool
    error: str | None = None


class Checklist(BaseModel):
    workflow: str
    pair: str
    title: str
    run_id: str = ""
    workflow_id: str = ""
    initiator: str = "unknown"
    # Who started it, proven by whose key, or "unproven" (signed acts); None where the
    # pair has no keys, or the run was started before starts were signed.
    initiator_proof: str | None = None
    state: RunState = "running"
    started_at: str | None = None
    ended_at: str | None = None
    message: str | None = None
    steps: list[StepState] = Field(default_factory=list)
    # The last few rejected signals (workflows/limits.py REJECTED_KEPT), each cut short,
    # and how many were rejected in all.
    rejected: list[RejectedSignal] = Field(default_factory=list)
    rejected_total: int = 0
    decisions: list[DecisionRecord] = Field(default_factory=list)
    # The nonces of the signed intents taken, with when they were signed: a replayed one
    # is refused; those older than inventory/intent.py WINDOW are dropped.
    nonces: dict[str, str] = Field(default_factory=dict)
    # Where every device ended up, when a run was aborted.
    final_state: list[str] | None = None
    # An unplanned switch: why, and the fencing workflow it started for the lost side.
    unplanned_reason: str | None = None
    fence: FenceRef | None = None
    # A run that waits long continues as new (its history stays small): the first run's
    # id, and how many times it continued.
    first_run_id: str | None = None
    continued: int = 0
    # Break-glass overrides of the start's rules (no-switch-in-blackout): who, why, what.
    overrides: list[OverrideRecord] = Field(default_factory=list)
    # The messages told (the last DELIVERIES_KEPT of them, workflows/notify.py), and how
    # many in all; older histories have none.
    deliveries: list[Delivery] = Field(default_factory=list)
    deliveries_total: int = 0

    def step(self, step_id: str) -> StepState:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def awaiting(self) -> list[StepState]:
        """Steps that wait for a person: a confirmation, an approval, or a decision."""
        return [s for s in self.steps if s.needs_operator]

    def settle_state(self) -> None:
        """A live run's state from its steps: awaiting-operator while one waits for a
        person, else running (an ended run keeps its state)."""
        if self.state in ("running", "awaiting-operator"):
            self.state = "awaiting-operator" if self.awaiting else "running"


class ClientSwitchInput(Bounded):
    pair: Name
    host: Name
    to: Side
    timing: Timing
    # Rules the operator overrode for this switch (a console control's --override).
    overrides: Annotated[list[Name], Field(max_length=8)] = []


class ClientTarget(Bounded):
    host: Name
    to: Side


class ClientBatchInput(Bounded):
    """Several clients' switches in one child workflow: each client on its own."""

    pair: Name
    clients: Annotated[list[ClientTarget], Field(max_length=MAX_CLIENTS)]
    timing: Timing
    # The on-air windows a restart waits out (none when the run overrode the rule).
    blackout: Annotated[list[Window], Field(max_length=1000)] = []


class CheckInput(Bounded):
    pair: Name
    initiator: Name = "operator"  # who asked (the CLI checked they may read the pair)


class CheckProgress(BaseModel):
    done: int = 0
    total: int = 0  # 0 until the workflow knows which hosts it reads


class DryRunInput(Bounded):
    """`amsm start KIND ... --dry-run`: the kind and the input its run would be given."""

    pair: Name
    kind: Name
    # The run's input as `amsm start` would send it (its kind's model, workflows/kinds.py
    # validates it: the models have no tag to tell them apart).
    input: dict[str, Any]
