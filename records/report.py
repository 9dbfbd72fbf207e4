"""The run report a shift lead files after a switch, and the step timeline.

`build_report` turns a `RunHistory` (records/history.py) into a `Report`: the summary
(workflow, direction, initiator, start, end, duration, result, the time until the new
main side was serving), each step (start, end, duration, outcome, who confirmed,
approved or skipped it and their note or reason), each client (outcome, switch time),
decisions, rejected signals, errors and warnings, and the event timeline.
records/report_render.py draws it (markdown, HTML, the timeline).

Times are the history's own event times (UTC); a step starts and ends when the workflow
saw it start and end (the clock of the workflow task, which is what the checklist
records to the second). Outcomes, notes and messages come from the run's checklist when
the run completed (the workflow's result), else from the step records the engine kept in
the history, and for runs older than those records reconstructed from the events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from records.history import RunHistory, SignalRecord, direction
from records.reconstruct import (
    Reconstruction,
    StepTrack,
    TimelineEntry,
    check_against_checklist,
    reconstruct,
)
from records.report_control import (
    OverrideRow,
    control_result,
    is_control,
    override_rows,
)
from workflows import outcomes
from workflows.kinds import KINDS
from workflows.models import ApprovalRecord, Checklist, StepState
from workflows.signing import STARTED_BY


class ProvenRow(BaseModel):
    """A row that may say who is proven to have acted (signed acts,
    docs/operators/signed-acts.md) and, for a gate, who approved it (two people): each of
    UNRECORDED_LEFT_OUT is left out of the JSON where the run recorded none, so a report
    of a run without signed acts or approvals is the one it always was, byte for byte
    (tests/histories/reports.sha256)."""

    @model_serializer(mode="wrap")
    def _without_unrecorded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in UNRECORDED_LEFT_OUT:
            if name in data and data[name] is None:
                del data[name]
        return data


# Proofs, and a step's approvals (only a gate that needed several people has them).
UNRECORDED_LEFT_OUT = ("proof", "initiator_proof", "approvals")


def proven(proof: str | None) -> str:
    """After a name: " (proven by ann's key)", " (unproven)"; nothing without a proof."""
    return f" ({proof})" if proof else ""


class ClientRow(BaseModel):
    host: str
    step: str
    to: str | None = None
    status: str
    attempts: int = 0
    # The client's own switch time: the last attempt, as the client switch measured it.
    seconds: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    message: str | None = None
    error: str | None = None
    earlier_errors: list[str] = Field(default_factory=list)


class ApprovalRow(ProvenRow):
    """One approval of a gate that needs several people (docs/operators/two-person.md):
    who, when, whose key proved it, their note, and why it lapsed (it no longer
    counts: the gate read the devices again and they had changed)."""

    at: datetime
    operator: str
    proof: str | None = None
    note: str | None = None
    lapsed: str | None = None

    @classmethod
    def of(cls, a: ApprovalRecord) -> ApprovalRow:
        return cls(
            at=datetime.fromisoformat(a.at),
            operator=a.operator,
            proof=a.proof,
            note=a.note,
            lapsed=a.lapsed,
        )

    def line(self, ref: datetime | None) -> str:
        """`05:49:51 bob (proven by bob's key): "note"; lapsed: why` (the run records an
        approval's time to the second)."""
        day = ref is not None and self.at.date() != ref.date()
        text = self.at.strftime("%Y-%m-%d %H:%M:%S" if day else "%H:%M:%S")
        text += f" {self.operator}{proven(self.proof)}"
        text += f': "{self.note}"' if self.note else ""
        return text + (f"; lapsed: {self.lapsed}" if self.lapsed else "")


class StepRow(ProvenRow):
    n: int
    id: str
    kind: str
    title: str
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    seconds: float | None = None
    # How the step got its outcome: confirmed, approved, skipped, automatic, passed over,
    # failed, waiting, not done (aborted), or "" for the service's own steps.
    how: str = ""
    operator: str | None = None
    proof: str | None = None  # the operator's: proven by whose key, or unproven
    note: str | None = None
    reason: str | None = None  # a skip's reason
    message: str | None = None
    error: str | None = None
    retried_by: list[str] = Field(default_factory=list)
    items: list[str] | None = None
    clients: list[ClientRow] | None = None
    approvals: list[ApprovalRow] | None = None

    @property
    def counted(self) -> int:
        """Its approvals that still count (not lapsed)."""
        return sum(1 for a in self.approvals or [] if a.lapsed is None)

    @property
    def note_or_reason(self) -> str | None:
        """What the operator wrote: a skip's reason, else the note."""
        return self.reason if self.how == "skipped" and self.reason else self.note

    @property
    def by(self) -> str:
        if self.how in ("confirmed", "approved", "skipped") and self.operator:
            return f"{self.how} by {self.operator}{proven(self.proof)}"
        if self.how == "automatic":
            return "amsm (automatic)"
        return self.how


class DecisionRow(ProvenRow):
    at: datetime
    event_id: int
    action: str
    step: str
    client: str | None = None
    operator: str
    reason: str | None = None
    verdict: str
    via: str = ""
    proof: str | None = None  # proven by whose key, or unproven (signed acts)

    @property
    def who(self) -> str:
        return self.operator + proven(self.proof)


class RejectedRow(BaseModel):
    at: datetime | None = None
    event_id: int | None = None
    signal: str
    step: str
    operator: str
    reason: str


class Issue(BaseModel):
    at: datetime | None = None
    event_id: int | None = None
    step: str = ""
    text: str


class Objective(BaseModel):
    """The time to serve held against the inventory's `objectives.time_to_serve`."""

    seconds: float
    met: bool | None = None  # None: not reached (yet) and not yet over the objective
    text: str  # "time to serve 12 min 40 s, objective 20 min: met"


class Serving(BaseModel):
    """From the run's start until the new main side was serving."""

    seconds: float | None = None
    hms: str | None = None
    basis: str
    reached_at: datetime | None = None
    objective: Objective | None = None

    @model_serializer(mode="wrap")
    def _without_objective(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A report without an objective is the one it always was, byte for byte
        # (tests/histories/reports.sha256 pins `amsm report --json` too).
        data: dict[str, Any] = handler(self)
        if self.objective is None:
            data.pop("objective", None)
        return data


class Report(ProvenRow):
    source: str
    workflow_type: str
    workflow_id: str
    run_id: str
    pair: str = ""
    title: str
    direction: str = ""
    initiator: str = "unknown"
    # Who started it (a control: who ran it), proven by whose key, or unproven.
    initiator_proof: str | None = None
    status: str  # how the run ended in Temporal: completed, failed, terminated, running...
    state: str  # the checklist's state: completed, aborted, failed, awaiting-operator...
    result: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    seconds: float
    serving: Serving
    steps: list[StepRow] = Field(default_factory=list)
    clients: list[ClientRow] = Field(default_factory=list)
    decisions: list[DecisionRow] = Field(default_factory=list)
    rejected: list[RejectedRow] = Field(default_factory=list)
    errors: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)
    # An unplanned switch: why (required at the start), and the fence it left.
    unplanned_reason: str | None = None
    fence: str | None = None
    final_state: list[str] | None = None
    from_checklist: bool = False
    approximate: list[str] = Field(default_factory=list)
    consistency: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    event_count: int = 0
    patches: list[str] = Field(default_factory=list)
    # Operator actions that came as updates (the CLI) rather than signals.
    updates: int = 0
    # Break-glass overrides (console controls): rule, operator, reason, used or not.
    overrides: list[OverrideRow] = Field(default_factory=list)

    @property
    def started_by(self) -> str:
        return self.initiator + proven(self.initiator_proof)

    def step(self, step_id: str) -> StepRow:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def client(self, host: str) -> ClientRow:
        for c in self.clients:
            if c.host.lower() == host.lower():
                return c
        raise KeyError(host)


# -- formatting helpers ------------------------------------------------------------------------
def hms(seconds: float) -> str:
    """h:mm:ss, rounded to the second."""
    total = int(round(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return hms(seconds)


def stamp(ts: datetime | None) -> str:
    """Full date and time, UTC, to the millisecond."""
    if ts is None:
        return ""
    return ts.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts.microsecond // 1000:03d} UTC"


def clock(ts: datetime | None, ref: datetime | None = None) -> str:
    """Time of day to a tenth of a second; with the date when it is not `ref`'s day."""
    if ts is None:
        return ""
    text = ts.strftime("%H:%M:%S.") + str(ts.microsecond // 100000)
    if ref is not None and ts.date() != ref.date():
        text = ts.strftime("%Y-%m-%d ") + text
    return text


# -- building the report ---------------------------------------------------------------------
def build_report(
    run: RunHistory, rec: Reconstruction | None = None, objective: float | None = None
) -> Report:
    """`objective`: the inventory's `objectives.time_to_serve` in seconds, or None."""
    rec = rec or reconstruct(run)
    c = run.checklist
    inp = run.input if isinstance(run.input, dict) else {}
    initiator = (
        (c.initiator if c else None) or inp.get("initiator") or inp.get("started_by") or "unknown"
    )
    if is_control(run) and inp.get("operator"):
        initiator = str(inp["operator"])
    if initiator == "unknown" and run.memo.get("initiator"):
        initiator = str(run.memo["initiator"])
    initiator_proof = _initiator_proof(run, c)
    report = Report(
        source=run.source,
        workflow_type=run.workflow_type,
        workflow_id=(c.workflow_id if c and c.workflow_id else run.workflow_id),
        run_id=run.run_id,
        pair=(c.pair if c else None) or str(inp.get("pair") or ""),
        title=(c.title if c else None) or _title(run),
        direction=direction(run.workflow_type, run.input),
        initiator=initiator,
        initiator_proof=initiator_proof,
        status=run.status,
        state=c.state if c else rec.state,
        result=control_result(run) or _result(run, rec),
        started_at=run.started_at,
        ended_at=run.ended_at,
        seconds=run.seconds,
        serving=Serving(basis=""),
        from_checklist=c is not None,
        event_count=run.event_count,
        patches=run.patches,
        updates=sum(1 for s in run.signals if s.channel == "update"),
        timeline=rec.entries,
        final_state=c.final_state if c else None,
        unplanned_reason=(c.unplanned_reason if c else None)
        or (str(inp.get("reason") or "") if inp.get("unplanned") else None),
        fence=(f"{c.fence.workflow_id} (run {c.fence.run_id})" if c and c.fence else None),
        overrides=override_rows(run) if is_control(run) else [],
    )
    report.steps = _steps(run, rec, c)
    report.clients = [cl for s in report.steps for cl in s.clients or []]
    report.clients += _child_only_clients(run)
    report.decisions = _decisions(run, c)
    report.rejected = _rejected(run, c)
    report.serving = serving_time(run, report.steps, objective)
    report.approximate = list(rec.approximate)
    if c is None and rec.steps and run.step_records:
        report.approximate.insert(
            0,
            f"the run {_ended_how(run)}, so there is no checklist result: step outcomes are "
            "those the engine recorded in the history, and each activity and client switch "
            "is on the step the engine had in hand when it started it",
        )
    elif c is None and rec.steps:
        report.approximate.insert(
            0,
            f"the run {_ended_how(run)}, so there is no checklist result: step outcomes are "
            "reconstructed from the events, and activities are mapped to steps by their type "
            "(approximate)",
        )
    elif c is None and not rec.steps and run.workflow_type in KINDS:
        report.approximate.append("no step table for this run's input")
    if c is not None:
        report.consistency = check_against_checklist(rec, c)
    report.errors, report.warnings = _issues(run, rec, report)
    return report


def _title(run: RunHistory) -> str:
    what = direction(run.workflow_type, run.input)
    return f"{run.workflow_type}{' ' + what if what else ''}"


def _ended_how(run: RunHistory) -> str:
    return {
        "running": "had not ended when the history was read",
        "failed": "failed",
        "terminated": "was terminated",
        "canceled": "was canceled",
        "timed-out": "timed out",
        "continued-as-new": "continued as new",
        "completed": "completed without a checklist",
    }.get(run.status, run.status)


def _result(run: RunHistory, rec: Reconstruction) -> str:
    c = run.checklist
    if run.status == "completed" and c is not None:
        return f"{c.state}: {c.message}" if c.message else c.state
    if run.status == "completed":
        if run.workflow_type == "fence" and isinstance(run.result, dict):
            return f"{run.result.get('status')}: {run.result.get('message')}"
        if isinstance(run.result, dict) and "ok" in run.result:
            ok = "ok" if run.result.get("ok") else "failed"
            return f"completed, {ok}: {run.result.get('message', '')}".rstrip(": ")
        return "completed" + (" (aborted)" if rec.abort else "")
    if run.status == "running":
        return f"not ended when the history was read ({rec.state})"
    return f"{run.status}: {run.close_message}" if run.close_message else run.status


def _steps(run: RunHistory, rec: Reconstruction, c: Checklist | None) -> list[StepRow]:
    tracks = {s.id: s for s in rec.steps}
    retries: dict[str, list[str]] = {}
    for sig in run.signals:
        if sig.name == "decide" and sig.action == "retry" and sig.verdict == "accepted":
            who = f"{sig.operator} at {clock(sig.at)}" + (f" ({sig.client})" if sig.client else "")
            retries.setdefault(sig.step, []).append(who)
    rows: list[StepRow] = []
    source: list[StepState | StepTrack] = list(c.steps) if c is not None else list(rec.steps)
    for n, s in enumerate(source, 1):
        t = tracks.get(s.id)
        how, reason = outcomes.how(s, bool(t and t.passed_over))
        row = StepRow(
            n=n,
            id=s.id,
            kind=s.kind,
            title=s.title,
            status=s.status,
            started_at=t.started_at if t else None,
            ended_at=t.ended_at if t else None,
            seconds=t.seconds if t else None,
            how=how,
            operator=s.operator,
            proof=getattr(s, "proof", None),
            note=s.note,
            reason=reason,
            message=s.message,
            error=s.error,
            retried_by=retries.get(s.id, []),
            items=getattr(s, "items", None),
        )
        recorded = getattr(s, "approvals", None)
        if recorded:
            row.approvals = [ApprovalRow.of(a) for a in recorded]
        if s.status == "pending":
            row.started_at = row.ended_at = row.seconds = None
        row.clients = _client_rows(s, t)
        rows.append(row)
    return rows


def _client_rows(s: StepState | StepTrack, t: StepTrack | None) -> list[ClientRow] | None:
    if s.clients is None:
        return None
    out: list[ClientRow] = []
    for cp in s.clients:
        ct = t.client(cp.host) if t is not None else None
        earlier = list(ct.earlier_errors) if ct else []
        if cp.status == "failed" and earlier and earlier[-1] == cp.error:
            earlier = earlier[:-1]
        if cp.status == "skipped" and earlier and earlier[-1] == cp.error:
            earlier = earlier[:-1]
        out.append(
            ClientRow(
                host=cp.host,
                step=s.id,
                to=cp.to,
                status=cp.status,
                attempts=cp.attempts or (ct.attempts if ct else 0),
                seconds=cp.seconds,
                started_at=ct.started_at if ct else None,
                ended_at=ct.ended_at if ct else None,
                message=cp.message,
                error=cp.error,
                earlier_errors=earlier,
            )
        )
    return out


def _child_only_clients(run: RunHistory) -> list[ClientRow]:
    """A client-switch run itself (its one client), or a client-batch run (each client)."""
    if not isinstance(run.result, dict):
        return []
    inp = run.input if isinstance(run.input, dict) else {}
    if run.workflow_type == "client-switch":
        results = [run.result]
        to_of = {str(inp.get("host") or "").lower(): inp.get("to")}
    elif run.workflow_type == "client-batch":
        results = [r for r in run.result.get("results") or [] if isinstance(r, dict)]
        to_of = {
            str(c.get("host") or "").lower(): c.get("to")
            for c in inp.get("clients") or []
            if isinstance(c, dict)
        }
    else:
        return []
    rows = []
    for r in results:
        ok = bool(r.get("ok"))
        host = str(r.get("host") or inp.get("host") or "?")
        rows.append(
            ClientRow(
                host=host,
                step="(this run)",
                to=to_of.get(host.lower()),
                status="done" if ok else "failed",
                attempts=1,
                seconds=r.get("seconds"),
                started_at=run.started_at,
                ended_at=run.ended_at,
                message=r.get("message") if ok else None,
                error=None if ok else r.get("message"),
            )
        )
    return rows


def _initiator_proof(run: RunHistory, c: Checklist | None) -> str | None:
    """Who started the run (a control: who ran it) is proven by whose key, or unproven:
    the checklist's, else what the run recorded in its memo, else a control's result."""
    if c is not None and c.initiator_proof:
        return c.initiator_proof
    started = run.memo.get(STARTED_BY)
    if isinstance(started, dict) and started.get("proof"):
        return str(started["proof"])
    result = run.result if isinstance(run.result, dict) else {}
    if is_control(run) and result.get("proof"):
        return str(result["proof"])
    return None


def _decisions(run: RunHistory, c: Checklist | None = None) -> list[DecisionRow]:
    """The decisions the run took; each with its proof where the checklist recorded one
    (matched in order by action, step, client and operator)."""
    proofs = [(d.action, d.step, d.client, d.operator, d.proof) for d in (c.decisions if c else [])]
    rows = [
        DecisionRow(
            at=sig.at,
            event_id=sig.event_id,
            action=sig.action or "?",
            step=sig.step,
            client=sig.client,
            operator=sig.operator,
            reason=sig.reason,
            verdict=sig.verdict,
            via=sig.via,
        )
        for sig in run.signals
        if sig.name == "decide" and sig.verdict == "accepted"
    ]
    for row in rows:
        key = (row.action, row.step, row.client, row.operator)
        match = next((p for p in proofs if p[:4] == key), None)
        if match is not None:
            proofs.remove(match)
            row.proof = match[4]
    return rows


def _rejected(run: RunHistory, c: Checklist | None) -> list[RejectedRow]:
    judged = [s for s in run.signals if s.verdict == "rejected"]
    if c is None:
        return [
            RejectedRow(
                at=s.at,
                event_id=s.event_id,
                signal=s.name,
                step=s.step,
                operator=s.operator,
                reason=s.rejection or "",
            )
            for s in judged
        ]
    # The checklist's own list (the engine's reasons), with the signal's event when it matches.
    rows = []
    pool: list[SignalRecord] = list(judged)
    for r in c.rejected:
        match = next(
            (s for s in pool if (s.name, s.step, s.operator) == (r.signal, r.step, r.operator)),
            None,
        )
        if match is not None:
            pool.remove(match)
        rows.append(
            RejectedRow(
                at=match.at if match else _parse_ts(r.at),
                event_id=match.event_id if match else None,
                signal=r.signal,
                step=r.step,
                operator=r.operator,
                reason=r.reason,
            )
        )
    return rows


def _parse_ts(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def serving_time(run: RunHistory, steps: list[StepRow], objective: float | None = None) -> Serving:
    """From the run's start until the new main's DSM was main and the clients had moved;
    held against `objective` (seconds) when the inventory sets one."""
    wt = run.workflow_type
    kind = KINDS.get(wt)
    served = kind.served_by(run.input) if kind is not None else None
    if served is None:
        return Serving(basis=f"not applicable: a {wt} run does not change the main side")
    need, basis = served
    by_id = {s.id: s for s in steps}
    times: list[datetime] = []
    missing: list[str] = []
    for step_id in need:
        s = by_id.get(step_id)
        if s is None:
            missing.append(f"{step_id} is not a step of this run")
        elif s.status != "done" or s.ended_at is None:
            what = s.status + (f" ({s.reason})" if s.reason else "")
            missing.append(f"{step_id} is {what}")
        else:
            times.append(s.ended_at)
    if missing:
        serving = Serving(basis=f"not reached: {'; '.join(missing)}; measured {basis}")
        if objective is not None:
            serving.objective = against(serving, objective, run.seconds)
        return serving
    reached = max(times)
    secs = (reached - run.started_at).total_seconds()
    parts = [
        f"{sid} done at +{(by_id[sid].ended_at - run.started_at).total_seconds():.1f} s"  # type: ignore[operator]
        for sid in need
    ]
    left = [c.host for sid in need for c in by_id[sid].clients or [] if c.status != "done"]
    text = f"from the run's start {basis}: {', '.join(parts)}"
    if left:
        text += f"; not on the new side: {', '.join(left)}"
    serving = Serving(seconds=secs, hms=hms(secs), basis=text, reached_at=reached)
    if objective is not None:
        serving.objective = against(serving, objective, run.seconds)
    return serving


def minutes(seconds: float) -> str:
    """12 min 40 s, 20 min, 1 h 5 min, 7.6 s: a duration as the objective's line says it
    (to the second from a minute on, to a tenth below)."""
    if seconds < 59.95:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    total = int(round(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s else ""]
    return " ".join(p for p in parts if p) or "0 s"


def served_briefly(seconds: float | None, objective: float | None, met: bool | None) -> str:
    """A run's time to serve in a list (`amsm runs`, the console's runs page): '6.7 s, met',
    '23 min 40 s, missed by 3 min 40 s', 'not reached, missed', or '-'."""
    if seconds is None:
        return "not reached, missed" if met is False else "-"
    if met is None or objective is None:
        return minutes(seconds)
    return f"{minutes(seconds)}, " + ("met" if met else f"missed by {minutes(seconds - objective)}")


def against(serving: Serving, objective: float, elapsed: float) -> Objective:
    """The time to serve against its objective: met, missed by how much, or not reached
    (missed once the run has gone on longer than the objective without serving)."""
    goal = f"objective {minutes(objective)}"
    if serving.seconds is None:
        if elapsed > objective:
            text = f"time to serve not reached after {minutes(elapsed)}, {goal}: missed"
            return Objective(seconds=objective, met=False, text=text)
        return Objective(seconds=objective, text=f"time to serve not reached, {goal}")
    took = f"time to serve {minutes(serving.seconds)}, {goal}"
    if serving.seconds <= objective:
        return Objective(seconds=objective, met=True, text=f"{took}: met")
    late = minutes(serving.seconds - objective)
    return Objective(seconds=objective, met=False, text=f"{took}: missed by {late}")


def _issues(
    run: RunHistory, rec: Reconstruction, report: Report
) -> tuple[list[Issue], list[Issue]]:
    errors: list[Issue] = []
    warnings: list[Issue] = []
    for e in rec.entries:
        if e.level == "error":
            errors.append(Issue(at=e.at, event_id=e.event_id, step=e.step, text=e.text))
        elif e.level == "warning":
            warnings.append(Issue(at=e.at, event_id=e.event_id, step=e.step, text=e.text))
    for s in report.steps:
        if s.status == "failed":
            errors.append(
                Issue(step=s.id, text=f"step {s.id} is failed: {s.error or 'no error text'}")
            )
        elif s.how == "skipped":
            warnings.append(
                Issue(
                    at=s.ended_at,
                    step=s.id,
                    text=f"step {s.id} skipped"
                    + (f" by {s.operator}" if s.operator else "")
                    + f": {s.reason or s.note or ''}",
                )
            )
        elif s.how == "not done (aborted)":
            warnings.append(Issue(step=s.id, text=f"step {s.id} not done: the run was aborted"))
        elif s.status.startswith("awaiting"):
            warnings.append(Issue(step=s.id, text=f"step {s.id} is {s.status}"))
        for cl in s.clients or []:
            if cl.status == "failed":
                errors.append(Issue(step=s.id, text=f"client {cl.host} is failed: {cl.error}"))
            elif cl.status == "skipped":
                warnings.append(
                    Issue(step=s.id, text=f"client {cl.host} left behind: {cl.message or ''}")
                )
        if s.message and "not switched (side unknown)" in s.message:
            warnings.append(Issue(step=s.id, text=s.message.split("; ", 1)[-1]))
    if run.status == "running":
        warnings.append(Issue(text="the run had not ended when this history was read"))
    judged = {s.event_id for s in run.signals if s.verdict == "rejected"}
    for x in report.rejected:  # those the events did not show as rejected (none, normally)
        if x.event_id is None or x.event_id not in judged:
            warnings.append(
                Issue(at=x.at, step=x.step, text=f"{x.signal} {x.step} by {x.operator} "
                      f"rejected: {x.reason}")
            )  # fmt: skip
    for w in run.decode_warnings:
        warnings.append(Issue(text=w))
    for m in report.consistency:
        warnings.append(Issue(text=f"the checklist and the events disagree: {m}"))
    return errors, warnings


def steps_for_show(r: Report) -> list[dict[str, Any]]:
    """The steps as `amsm show --json` lists them (for comparing the two)."""
    keys = ("id", "kind", "status", "title", "operator", "note", "message", "error")
    out = []
    for s in r.steps:
        d: dict[str, Any] = {k: getattr(s, k) for k in keys}
        d["clients"] = (
            [{"host": c.host, "status": c.status, "attempts": c.attempts} for c in s.clients]
            if s.clients is not None
            else None
        )
        out.append(d)
    return out
