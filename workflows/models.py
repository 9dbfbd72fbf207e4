"""Messages of the workflows: inputs, signals, the checklist the query returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

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
    """Payload of `confirm` and `approve`: {"step": ..., "operator": ..., "note": ...}."""

    step: str
    operator: str = "unknown"
    note: str | None = None


class SwitchInput(BaseModel):
    pair: str
    to: Side
    initiator: str = "unknown"


class StatusInput(BaseModel):
    pair: str


class StepDef(BaseModel):
    id: str
    kind: StepKind
    title: str


class ClientProgress(BaseModel):
    host: str
    status: Literal["pending", "switching", "done", "failed"] = "pending"
    message: str | None = None
    error: str | None = None
    seconds: float | None = None


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

    @property
    def pending_clients(self) -> int:
        return sum(1 for c in self.clients or [] if c.status in ("pending", "switching"))


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

    def step(self, step_id: str) -> StepState:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def awaiting(self) -> list[StepState]:
        return [s for s in self.steps if s.status in ("awaiting-confirmation", "awaiting-approval")]


class ClientSwitchInput(BaseModel):
    pair: str
    host: str
    to: Side
    timing: Timing


class ClientSwitchResult(BaseModel):
    host: str
    ok: bool
    message: str
    seconds: float
