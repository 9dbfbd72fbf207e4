"""Messages of the workflows: inputs, signals, the checklist the query returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from activities.models import ForcedRule
from inventory.models import Side, Timing

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
RunState = Literal["running", "awaiting-operator", "completed", "aborted", "failed"]


class OperatorSignal(BaseModel):
    """Payload of `confirm` and `approve`: {"step": ..., "operator": ..., "note": ...}.

    `clients` answers a step that asks which clients to act on (split's move-editors).
    """

    step: str
    operator: str = "unknown"
    note: str | None = None
    clients: list[str] | None = None


DecisionAction = Literal["retry", "skip", "abort"]


class Decision(BaseModel):
    """Payload of `decide`: what to do about a failed step (or a failed client of one).

    {"step": "switch-clients", "action": "skip", "operator": "jo", "reason": "...",
     "client": "ED-03"}. `skip` and `abort` need a reason; `abort` needs no step.
    """

    step: str = ""
    action: DecisionAction
    operator: str = "unknown"
    reason: str | None = None
    client: str | None = None


class DecisionRecord(BaseModel):
    at: str
    step: str
    action: DecisionAction
    operator: str
    reason: str | None = None
    client: str | None = None


class SwitchInput(BaseModel):
    """switch: `to` becomes main. `unplanned`: the other side is lost (down or unreachable);
    `reason` says why, and is required then."""

    pair: str
    to: Side
    initiator: str = "unknown"
    unplanned: bool = False
    reason: str | None = None


class SplitInput(BaseModel):
    """split: `main` stays main, the other side becomes independent."""

    pair: str
    main: Side
    initiator: str = "unknown"


class SplitSwitchInput(BaseModel):
    """split-switch: `to` becomes main in stages, the pilots first."""

    pair: str
    to: Side
    pilots: list[str]
    initiator: str = "unknown"
    # How often the current details are refreshed while verify-pilots waits (seconds).
    reminder_interval: float = 3600


class RestoreInput(BaseModel):
    """restore: rejoin a split pair with `main` as the main side."""

    pair: str
    main: Side
    initiator: str = "unknown"
    asset_tolerance: int = 0


class StatusInput(BaseModel):
    pair: str


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

    @property
    def pending_clients(self) -> int:
        return sum(1 for c in self.clients or [] if c.status in ("pending", "switching"))

    @property
    def failed_clients(self) -> list[ClientProgress]:
        return [c for c in self.clients or [] if c.status == "failed"]

    @property
    def needs_operator(self) -> bool:
        return self.status in ("awaiting-confirmation", "awaiting-approval", "failed") or bool(
            self.failed_clients
        )


class FenceRef(BaseModel):
    """Where to find a fencing workflow: `amsm fence` reads its state from there."""

    workflow_id: str
    run_id: str
    side: Side


FenceStatus = Literal["waiting", "fenced", "ended"]


class FenceInput(BaseModel):
    pair: str
    side: Side  # the lost side, to be fenced the moment it answers
    reason: str
    started_by: str  # the operator of the unplanned switch
    switch_run_id: str = ""


class FenceEnd(BaseModel):
    """Payload of the fence's `end` update: an operator ends the fencing by hand."""

    operator: str = "unknown"
    reason: str


class FenceState(BaseModel):
    pair: str
    side: Side
    status: FenceStatus = "waiting"
    reason: str = ""
    started_by: str = ""
    switch_run_id: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    message: str | None = None
    details: list[str] = Field(default_factory=list)
    ended_by: str | None = None


class RejectedSignal(BaseModel):
    at: str
    signal: str
    step: str
    operator: str
    reason: str


class Checklist(BaseModel):
    workflow: str
    pair: str
    title: str
    run_id: str = ""
    workflow_id: str = ""
    initiator: str = "unknown"
    state: RunState = "running"
    started_at: str | None = None
    ended_at: str | None = None
    message: str | None = None
    steps: list[StepState] = Field(default_factory=list)
    rejected: list[RejectedSignal] = Field(default_factory=list)
    decisions: list[DecisionRecord] = Field(default_factory=list)
    # Where every device ended up, when a run was aborted.
    final_state: list[str] | None = None
    # An unplanned switch: why, and the fencing workflow it started for the lost side.
    unplanned_reason: str | None = None
    fence: FenceRef | None = None

    def step(self, step_id: str) -> StepState:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def awaiting(self) -> list[StepState]:
        """Steps that wait for a person: a confirmation, an approval, or a decision."""
        return [s for s in self.steps if s.needs_operator]


class ClientSwitchInput(BaseModel):
    pair: str
    host: str
    to: Side
    timing: Timing
    # Rules the operator overrode for this switch (a console control's --override).
    overrides: list[str] = []


class ClientSwitchResult(BaseModel):
    host: str
    ok: bool
    message: str
    seconds: float
    forced: list[ForcedRule] = []  # interlocks forced by an override


class ClientTarget(BaseModel):
    host: str
    to: Side


class ClientBatchInput(BaseModel):
    """Several clients' switches in one child workflow: each client on its own."""

    pair: str
    clients: list[ClientTarget]
    timing: Timing


class ClientBatchResult(BaseModel):
    results: list[ClientSwitchResult]
