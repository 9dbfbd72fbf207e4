"""A run's steps, its clients and its timeline as read from its history: what
records/reconstruct.py gives the reports (records/report.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from records.history import SignalRecord
from workflows.models import WAITS_FOR_OPERATOR, ClientProgress, StepStatus
from workflows.outcomes import Outcome

# The checklist's run state for a run that ended some other way (as `amsm show` says it).
STATE_OF_STATUS = {
    "failed": "failed",
    "timed-out": "failed",
    "terminated": "aborted",
    "canceled": "aborted",
}


class ClientTrack(ClientProgress):
    """A client as the engine holds it (`ClientProgress`), with what the events add."""

    started_at: datetime | None = None
    ended_at: datetime | None = None
    workflow_ids: list[str] = Field(default_factory=list)
    # Errors of attempts that were retried.
    earlier_errors: list[str] = Field(default_factory=list)


class StepTrack(BaseModel):
    """A step as its history shows it. Not the engine's `StepState`: its times are the
    events' own (datetimes, to the millisecond; the checklist keeps ISO text to the
    second), its clients are tracks, and it lists the events and signals that are its own.
    Its rules are the engine's all the same (workflows/rules.py reads either)."""

    id: str
    kind: str
    title: str
    status: StepStatus = "pending"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    operator: str | None = None
    note: str | None = None
    message: str | None = None
    error: str | None = None
    automatic: bool = False
    passed_over: bool = False
    # As the engine records them (workflows/outcomes.py): from its records where the
    # history has them (`recorded`), else from what the events show.
    outcome: Outcome | None = None
    reason: str | None = None
    recorded: bool = False
    clients: list[ClientTrack] | None = None
    events: list[int] = Field(default_factory=list)
    # Signals that reached this step and were taken: confirmations and decisions.
    signals: list[int] = Field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def client(self, host: str) -> ClientTrack | None:
        return next((c for c in self.clients or [] if c.host.lower() == host.lower()), None)

    @property
    def failed_clients(self) -> list[ClientTrack]:
        return [c for c in self.clients or [] if c.status == "failed"]

    @property
    def needs_operator(self) -> bool:
        return self.status in WAITS_FOR_OPERATOR or bool(self.failed_clients)


class TimelineEntry(BaseModel):
    at: datetime
    event_id: int
    step: str  # a step id, or "(bootstrap)", "(between steps)", "(abort)", "(run)"
    text: str
    level: Literal["info", "warning", "error"] = "info"


class Reconstruction(BaseModel):
    steps: list[StepTrack]
    state: str  # the checklist's RunState as the events show it
    entries: list[TimelineEntry] = Field(default_factory=list)
    abort: SignalRecord | None = None
    signals: list[SignalRecord] = Field(default_factory=list)
    # Where the mapping of events to steps had to guess.
    approximate: list[str] = Field(default_factory=list)

    def step(self, step_id: str) -> StepTrack:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)
