"""Each step of a run, from its history: as the engine recorded it (memo `amsm-steps`,
runs since `record-step-outcomes`), placed on the timeline of its events.

`reconstruct` hands the events to the walk (records/legacy_walk.py), which maps each
activity, child and signal to its step and places it on the timeline; for a run with the
engine's records each step then takes what the engine recorded (`_as_recorded`). For runs
older than those records the frozen walk is all there is, and its `approximate` notes say
where it had to guess. `check_against_checklist` compares a reconstruction with a
completed run's own checklist.
"""

from __future__ import annotations

from datetime import datetime

from records.history import RunHistory, as_model, step_table
from records.legacy_walk import Walk
from records.tracks import (
    STATE_OF_STATUS,
    ClientTrack,
    Reconstruction,
    StepTrack,
    TimelineEntry,
)
from workflows.models import Checklist, StepDef

__all__ = [
    "ClientTrack",
    "Reconstruction",
    "StepTrack",
    "TimelineEntry",
    "check_against_checklist",
    "reconstruct",
]


def reconstruct(run: RunHistory, defs: list[StepDef] | None = None) -> Reconstruction:
    """Walk the events as the checklist engine walks its steps.

    `defs` is the run's step table: the completed run's own checklist when there is one,
    else today's table for the workflow (`step_table`).
    """
    if defs is None:
        if run.checklist is not None:
            defs = [StepDef(id=s.id, kind=s.kind, title=s.title) for s in run.checklist.steps]
        else:
            defs = step_table(run.workflow_type, run.input)
    rec = Walk(run, defs).walk()
    rec.signals = run.signals
    if run.step_records:
        _as_recorded(run, rec)
    return rec


def _as_recorded(run: RunHistory, rec: Reconstruction) -> None:
    """Each step as the engine recorded it (a run since `record-step-outcomes`): its
    status, outcome, who and the texts, and when it started and ended by the engine's own
    clock. The walk still maps the events to steps for the timeline and follows each
    client from its child workflow."""
    by_id = {s.id: s for s in rec.steps}
    # Where the run started from: a continuation's checklist (its records are in the
    # histories before), else every step pending.
    resume = as_model(run.input.get("resume"), Checklist) if isinstance(run.input, dict) else None
    carried = {s.id: s for s in resume.steps} if resume is not None else {}
    for t in rec.steps:
        c = carried.get(t.id)
        t.status = c.status if c else "pending"
        t.outcome, t.reason = (c.outcome, c.reason) if c else (None, None)
        t.operator, t.note = (c.operator, c.note) if c else (None, None)
        t.message, t.error = (c.message, c.error) if c else (None, None)
        t.passed_over = t.outcome == "passed-over"
        t.started_at = datetime.fromisoformat(c.started_at) if c and c.started_at else None
        t.ended_at = datetime.fromisoformat(c.ended_at) if c and c.ended_at else None
        t.recorded = c is not None and c.status != "pending"
    for r in run.step_records:
        s = by_id.get(r.step)
        if s is None:
            rec.approximate.append(f"event {r.event_id} records a step {r.step!r} not in the table")
            continue
        s.status, s.outcome, s.reason, s.operator = r.status, r.outcome, r.reason, r.operator
        s.note, s.message, s.error = r.note, r.message, r.error
        s.passed_over = r.outcome == "passed-over"
        at = datetime.fromisoformat(r.at)
        if r.status == "pending":
            s.started_at = s.ended_at = None
        elif r.status in ("done", "skipped"):
            s.started_at, s.ended_at = (s.started_at if s.recorded else None) or at, at
        elif not s.recorded or s.ended_at is not None:
            s.started_at, s.ended_at = at, None  # started (again, after a retry)
        s.recorded = True
    if run.status != "completed" and run.status not in STATE_OF_STATUS:
        rec.state = "awaiting-operator" if any(s.needs_operator for s in rec.steps) else "running"


# -- comparing with the engine's own record ------------------------------------------------
def _secs(ts: datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") if ts is not None else None


def check_against_checklist(rec: Reconstruction, checklist: Checklist) -> list[str]:
    """Where the events and the run's own checklist disagree (empty: they agree)."""
    out: list[str] = []
    by_id = {s.id: s for s in rec.steps}
    for cs in checklist.steps:
        es = by_id.get(cs.id)
        if es is None:
            out.append(f"step {cs.id}: in the checklist, not in the events' step table")
            continue
        if es.status != cs.status:
            out.append(f"step {cs.id}: checklist says {cs.status}, the events say {es.status}")
        if cs.operator and es.operator and cs.operator != es.operator:
            out.append(
                f"step {cs.id}: checklist says by {cs.operator}, the events say {es.operator}"
            )
        for what, want, got in (
            ("started", cs.started_at, _secs(es.started_at)),
            ("ended", cs.ended_at, _secs(es.ended_at)),
        ):
            if want and got and want != got:
                out.append(f"step {cs.id}: checklist says {what} {want}, the events say {got}")
        for cc in cs.clients or []:
            ec = es.client(cc.host)
            if ec is None:
                out.append(f"step {cs.id}: client {cc.host} has no child workflow in the events")
            elif ec.status != cc.status:
                out.append(
                    f"step {cs.id}: client {cc.host} is {cc.status} in the checklist, "
                    f"{ec.status} in the events"
                )
    accepted = [
        s
        for s in rec.signals
        if s.name == "decide" and s.verdict == "accepted" and s.action is not None
    ]
    if len(accepted) != len(checklist.decisions):
        out.append(
            f"{len(checklist.decisions)} decision(s) in the checklist, "
            f"{len(accepted)} accepted decide signal(s) in the events"
        )
    rejected = [s for s in rec.signals if s.verdict == "rejected"]
    if len(rejected) != len(checklist.rejected):
        out.append(
            f"{len(checklist.rejected)} rejected signal(s) in the checklist, "
            f"{len(rejected)} judged rejected from the events"
        )
    return out
