"""Each step of a run, from its history: as the engine recorded it (memo `amsm-steps`,
runs since `record-step-outcomes`), with its events placed on the timeline.

For a run with those records `reconstruct` reads each step from them (`_as_recorded`) and
each signal's verdict from the engine's rejection records (`_verdicts`); records/timeline.py
places the events on the timeline and follows each client from its child workflow,
judging no step. Only a run of a big workflow without those records (recorded before
them: tests/histories/v1..v5) is walked by the frozen walk (records/legacy_walk.py, from
`_walk_without_records`), which judges each step from the events, and whose
`approximate` notes say where it had to guess. `check_against_checklist` compares a
reconstruction with a completed run's own checklist.
"""

from __future__ import annotations

from datetime import datetime

from records.history import RunHistory, SignalRecord, as_model, step_table
from records.legacy_walk import Walk
from records.timeline import Timeline
from records.tracks import (
    STATE_OF_STATUS,
    ClientTrack,
    Reconstruction,
    StepTrack,
    TimelineEntry,
)
from workflows import rules
from workflows.limits import MAX_NAME, cut
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
    """What each step of the run became, and its events on the timeline.

    `defs` is the run's step table: the completed run's own checklist when there is one,
    else today's table for the workflow (`step_table`).
    """
    if defs is None:
        if run.checklist is not None:
            defs = [StepDef(id=s.id, kind=s.kind, title=s.title) for s in run.checklist.steps]
        else:
            defs = step_table(run.workflow_type, run.input)
    if defs and not run.step_records:
        return _walk_without_records(run, defs)
    rec = Reconstruction(
        steps=[StepTrack(id=d.id, kind=d.kind, title=d.title) for d in defs], state="running"
    )
    rec.signals = run.signals
    _as_recorded(run, rec)
    _verdicts(run, rec)
    Timeline(run, rec).place()
    rec.state = _state(run, rec)
    return rec


def _walk_without_records(run: RunHistory, defs: list[StepDef]) -> Reconstruction:
    """A run of a big workflow from before the engine's step records: the frozen walk
    judges each step from the events (the only caller of records/legacy_walk.py)."""
    rec = Walk(run, defs).walk()
    rec.signals = run.signals
    return rec


def _as_recorded(run: RunHistory, rec: Reconstruction) -> None:
    """Each step as the engine recorded it (a run since `record-step-outcomes`): its
    status, outcome, who and the texts, and when it started and ended by the engine's own
    clock."""
    by_id = {s.id: s for s in rec.steps}
    # Where the run started from: a continuation's checklist (its records are in the
    # histories before), else every step pending.
    resume = as_model(run.input.get("resume"), Checklist) if isinstance(run.input, dict) else None
    carried = {s.id: s for s in resume.steps} if resume is not None else {}
    for t in rec.steps:
        c = carried.get(t.id)
        if c is None:
            continue
        t.status, t.outcome, t.reason = c.status, c.outcome, c.reason
        t.operator, t.note, t.message, t.error = c.operator, c.note, c.message, c.error
        t.passed_over = t.outcome == "passed-over"
        t.started_at = datetime.fromisoformat(c.started_at) if c.started_at else None
        t.ended_at = datetime.fromisoformat(c.ended_at) if c.ended_at else None
        t.recorded = c.status != "pending"
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


def _verdicts(run: RunHistory, rec: Reconstruction) -> None:
    """Each signal as the engine took it: refused where it recorded refusing it (with its
    reason), else taken. Where its records do not hold every refusal (a continuation's
    count goes on from the run before; a flood between two records keeps the last few),
    the signals without one are judged by what needs no step: an unknown name, a payload
    that does not read, an update the workflow answered with a refusal."""
    pool = list(run.rejection_records)
    resume = run.input.get("resume") if isinstance(run.input, dict) else None
    before = resume.get("rejected_total", 0) if isinstance(resume, dict) else 0
    since = run.rejected_total - before if run.rejection_records else 0
    complete = len(run.rejection_records) == since
    for sig in run.signals:
        unread = sig.malformed is not None or sig.name not in rules.SIGNALS
        if unread:
            sig.step, sig.operator = "?", "?"
        want = (cut(sig.name, MAX_NAME), cut(sig.step, MAX_NAME), cut(sig.operator, MAX_NAME))
        match = next(
            (n for n, (eid, r) in enumerate(pool) if eid > sig.event_id
             and (r.signal, r.step, r.operator) == want),
            None,
        )  # fmt: skip
        sig.verdict, sig.rejection = "accepted", None
        if match is not None:
            sig.verdict, sig.rejection = "rejected", pool.pop(match)[1].reason
        elif not complete and (why := _refusal_without_steps(sig)) is not None:
            sig.verdict, sig.rejection = "rejected", why
    if not complete:
        rec.approximate.append(
            f"the history records {len(run.rejection_records)} of the "
            f"{since} signal(s) the run refused: the others are shown taken unless "
            "their name or payload was refused"
        )


def _refusal_without_steps(sig: SignalRecord) -> str | None:
    if sig.name not in rules.SIGNALS:
        return rules.unknown_signal_refusal(sig.name)
    if sig.malformed is not None:
        return f"malformed payload: {sig.malformed}"
    return sig.update_refused


def _state(run: RunHistory, rec: Reconstruction) -> str:
    """The checklist's run state: how the run ended, else whether a step waits for the
    operator."""
    if run.status == "completed":
        return "aborted" if rec.abort is not None else "completed"
    if run.status == "continued-as-new":
        return "completed"
    if run.status in STATE_OF_STATUS:
        return STATE_OF_STATUS[run.status]
    return "awaiting-operator" if any(s.needs_operator for s in rec.steps) else "running"


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
