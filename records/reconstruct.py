"""Each step of a run, from its history: as the engine recorded it (memo `amsm-steps`,
runs since `record-step-outcomes`), and the walk of the events that maps them to steps.

`reconstruct` walks the events the way the checklist engine (workflows/checklist.py) walks
its steps and gives each step its status, who did it and the exact event times of its
start and end; for a run with the engine's records each step then takes what the engine
recorded, and the walk only places the events (the timeline). For runs older than those
records the walk is all there is; mapping activities to steps is then approximate, and the
`approximate` notes say where. `check_against_checklist` compares the walk with a
completed run's own checklist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from inventory.models import Side, other
from records.history import (
    ActivityCall,
    ChildCall,
    RunHistory,
    SignalRecord,
    TimerRecord,
    as_model,
    direction,
    step_table,
    summarize,
)
from workflows import outcomes
from workflows.kinds import KINDS
from workflows.limits import MAX_NAME, cut
from workflows.models import WAITS_FOR_OPERATOR, Checklist, StepDef, StepStatus
from workflows.outcomes import Outcome
from workflows.steps import (
    NOT_UNPLANNED,
    VERIFY_ACTIVITIES,
    lost_side_steps,
    steps_for_activity,
)

# The checklist's run state for a run that ended some other way (as `amsm show` says it).
STATE_OF_STATUS = {
    "failed": "failed",
    "timed-out": "failed",
    "terminated": "aborted",
    "canceled": "aborted",
}
BOOTSTRAP_ACTIVITIES = ("get_timing", "get_capabilities", "probe_pair", "fences_waiting")
CLIENT_STEPS = ("switch-clients", "switch-pilots", "move-editors")
# Activities the engine runs between two steps (restore reads the asset counts for the
# approve-overwrite gate's message before the gate starts).
BETWEEN_STEPS = ("dsm_asset_counts",)


def _took(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"


# -- walking the steps ------------------------------------------------------------------------
class ClientTrack(BaseModel):
    host: str
    to: Side | None = None
    status: Literal["pending", "switching", "done", "failed", "skipped"] = "pending"
    attempts: int = 0
    message: str | None = None
    error: str | None = None
    seconds: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    workflow_ids: list[str] = Field(default_factory=list)
    # Errors of attempts that were retried.
    earlier_errors: list[str] = Field(default_factory=list)


class StepTrack(BaseModel):
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


def activity_steps(call: ActivityCall) -> list[str]:
    """The steps an activity can belong to (the engine's step table, by activity)."""
    return steps_for_activity(call.type, call.input if isinstance(call.input, dict) else {})


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
    rec = _Walk(run, defs).walk()
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


class _Walk:
    def __init__(self, run: RunHistory, defs: list[StepDef]) -> None:
        self.run = run
        self.steps = [StepTrack(id=d.id, kind=d.kind, title=d.title) for d in defs]
        self.index = {s.id: i for i, s in enumerate(self.steps)}
        self.p = -1  # the step the run is in; -1 before the first
        # When the workflow last saw the run move on (the next step starts then).
        self.last_progress: datetime | None = None
        self.abort: SignalRecord | None = None
        self.inflight: dict[int, str | None] = {}  # activity/child event -> step
        self.out = Reconstruction(steps=self.steps, state="running")
        self.messages: dict[str, list[str]] = {}
        self.bootstrap_done = False  # the first probe of the pair has come back
        self.operators: set[str] = set()  # who may act (get_capabilities); empty: anyone
        self.labels: dict[int, str] = {}  # activity scheduled event -> its timeline label
        self.lost: set[str] = set()  # unplanned switch: steps skipped, their side lost
        # The rejections the engine recorded, not yet matched to their signal. When it
        # recorded its steps and every rejection of this run (a continuation's count goes
        # on from the run before), a signal without one was accepted.
        self.rejections = list(run.rejection_records)
        resume = run.input.get("resume") if isinstance(run.input, dict) else None
        before = resume.get("rejected_total", 0) if isinstance(resume, dict) else 0
        since = run.rejected_total - before if run.rejection_records else 0
        self.verdicts_recorded = bool(run.step_records) and len(run.rejection_records) == since

    # -- helpers -------------------------------------------------------------------------
    @property
    def cur(self) -> StepTrack | None:
        return self.steps[self.p] if 0 <= self.p < len(self.steps) else None

    def note(self, at: datetime, eid: int, step: str, text: str, level: str = "info") -> None:
        self.out.entries.append(
            TimelineEntry(at=at, event_id=eid, step=step, text=text, level=level)  # type: ignore[arg-type]
        )

    def clock(self, event_id: int, fallback: datetime) -> datetime:
        return self.run.task_after(event_id) or fallback

    def busy(self, step: StepTrack) -> bool:
        return any(s == step.id for s in self.inflight.values())

    def settled(self, step: StepTrack | None) -> bool:
        """Done with its work: the engine has gone on to the next step."""
        return step is None or (step.status in ("done", "skipped") and not self.busy(step))

    def effective(self, j: int) -> str:
        """The status step j has now, in the engine's eyes."""
        s = self.steps[j]
        if j == self.p + 1 and self.settled(self.cur) and self.started:
            if s.kind == "gate":
                return "awaiting-approval"
            if s.kind == "manual":
                return "awaiting-confirmation"
        return s.status

    @property
    def started(self) -> bool:
        """The run has walked into its steps (bootstrap is over)."""
        return self.p >= 0 or self.bootstrap_done

    def enter(self, j: int, e_id: int, at: datetime, why: str) -> StepTrack:
        """The run moves on to step j (the steps in between were passed over)."""
        if j == self.p:
            return self.steps[j]
        start = self.last_progress or at
        cur = self.cur
        if cur is not None and not self.settled(cur):
            self.out.approximate.append(
                f"event {e_id} ({why}) was taken for step {self.steps[j].id} while "
                f"{cur.id} was still {cur.status}"
            )
        for k in range(self.p + 1, j):
            s = self.steps[k]
            if s.status == "pending":
                s.status, s.passed_over, s.outcome = "skipped", True, "passed-over"
                s.started_at = s.ended_at = start
                s.note = "passed over: no events for this step"
                self.out.approximate.append(
                    f"step {s.id} has no events before {self.steps[j].id}: taken as passed over"
                )
        self.p = j
        s = self.steps[j]
        if s.started_at is None:
            s.started_at = start
        return s

    def step_of(self, event_id: int, candidates: list[str]) -> int | None:
        """The step an activity or child belongs to: where the engine recorded its steps,
        the one it had in hand when it scheduled the event (the record comes first, in the
        same workflow task): one that runs or waits, or the last one recorded if the event
        is of its kind (a lost side's step, skipped, then reads the survivor); else the
        next step that can run it (by its type)."""
        if not self.run.step_records:
            return self.find(candidates)
        in_hand: dict[str, str] = {}
        last: str | None = None
        for r in self.run.step_records:
            if r.event_id is not None and r.event_id > event_id:
                break
            in_hand[r.step] = r.status
            last = r.step if r.status != "pending" else last
        busy = [k for k, st in in_hand.items() if st not in ("pending", "done", "skipped")]
        if busy:
            return self.index.get(busy[-1])
        return self.index.get(last) if last in candidates else None

    def find(self, candidates: list[str]) -> int | None:
        lo = max(self.p, 0)
        for j in range(lo, len(self.steps)):
            if self.steps[j].id in candidates:
                return j
        return None

    def progress(self, when: datetime) -> None:
        self.last_progress = when

    def finish(self, s: StepTrack, when: datetime) -> None:
        s.ended_at = when

    def seen(self, sig: SignalRecord) -> datetime:
        """When the workflow handled a signal or update."""
        if sig.task_event is not None:
            return self.run.task_at(sig.task_event) or sig.at
        return self.clock(sig.event_id, sig.at)

    # -- the walk -------------------------------------------------------------------------
    def walk(self) -> Reconstruction:
        run = self.run
        items: list[tuple[int, int, Any]] = []
        for a in run.activities:
            items.append((a.scheduled_event, 0, a))
            if a.end_event:
                items.append((a.end_event, 1, a))
        for c in run.children:
            items.append((c.initiated_event, 0, c))
            if c.end_event:
                items.append((c.end_event, 1, c))
        for sig in run.signals:
            items.append((sig.event_id, 0, sig))
        for t in run.timers:
            items.append((t.event_id, 0, t))
        items.sort(key=lambda x: (x[0], x[1]))
        self.note(run.started_at, 1, "(run)", self._start_text())
        for eid, phase, obj in items:
            if isinstance(obj, ActivityCall):
                self.on_activity(obj) if phase == 0 else self.on_activity_end(obj)
            elif isinstance(obj, ChildCall):
                self.on_child(obj) if phase == 0 else self.on_child_end(obj)
            elif isinstance(obj, SignalRecord):
                self.on_signal(obj)
            elif isinstance(obj, TimerRecord):
                obj.step = self.cur.id if self.cur else None
                secs = f" ({obj.seconds:g} s)" if obj.seconds else ""
                self.note(obj.started_at, eid, obj.step or "(run)", f"timer{secs}: {obj.outcome}")
        self.on_close()
        self.out.entries.sort(key=lambda x: (x.event_id, x.at))
        return self.out

    def _start_text(self) -> str:
        run = self.run
        inp = run.input if isinstance(run.input, dict) else {}
        # A control's input names its operator.
        who = inp.get("initiator") or inp.get("operator") or run.memo.get("initiator") or "unknown"
        what = direction(run.workflow_type, run.input)
        return f"{run.workflow_type} started{' (' + what + ')' if what else ''} by {who}"

    def on_activity(self, a: ActivityCall) -> None:
        cur = self.cur
        if not self.steps:
            label = "(run)"
        elif self.abort is not None and not (
            cur is not None and cur.status == "running" and self.find(activity_steps(a)) == self.p
        ):
            label = "(abort)"  # after an abort: reading where the devices ended up
        elif not self.started and a.type in BOOTSTRAP_ACTIVITIES:
            label = "(bootstrap)"
        else:
            j = self.step_of(a.scheduled_event, activity_steps(a))
            if j is not None:
                s = self.enter(j, a.scheduled_event, a.scheduled_at, a.type)
            elif cur is not None and not self.settled(cur):
                s = cur  # an activity inside the step (e.g. a read before the real work)
            else:
                s = None
                if self.started and a.type not in BETWEEN_STEPS:
                    self.out.approximate.append(
                        f"activity {a.type} (event {a.scheduled_event}) belongs to no step"
                    )
            if s is not None:
                a.step = s.id
                if s.status in ("failed", "pending", "awaiting-confirmation", "awaiting-approval"):
                    self.messages[s.id] = []
                if a.type in ("insync_run", "allsync_run"):
                    s.automatic, s.operator = True, outcomes.AUTOMATIC
                s.status, s.error = "running", None
                s.events.append(a.scheduled_event)
                self.inflight[a.scheduled_event] = s.id
            label = a.step or "(between steps)"
        text = f"{a.type} {summarize(a.input)}".rstrip()
        self.labels[a.scheduled_event] = label
        self.note(a.scheduled_at, a.scheduled_event, label, text)

    def on_activity_end(self, a: ActivityCall) -> None:
        assert a.end_event is not None and a.ended_at is not None
        self.inflight.pop(a.scheduled_event, None)
        label = a.step or self.labels.get(a.scheduled_event, "(run)")
        took = f" ({_took(a.seconds)})" if a.seconds is not None else ""
        retried = f", attempt {a.attempt}" if a.attempt > 1 else ""
        if a.outcome == "completed":
            self.note(a.ended_at, a.end_event, label, f"{a.type} done{took}: {summarize(a.result)}")
        elif a.outcome == "canceled":
            self.note(a.ended_at, a.end_event, label, f"{a.type} canceled{took}", "warning")
        else:
            self.note(
                a.ended_at,
                a.end_event,
                label,
                f"{a.type} {a.outcome}{took}{retried}: {a.error}",
                "error",
            )
        if a.last_failure:
            self.note(
                a.started_at or a.ended_at,
                a.end_event,
                label,
                f"{a.type} needed {a.attempt} attempts; attempt {a.attempt - 1} failed: "
                f"{a.last_failure}",
                "warning",
            )
        when = self.clock(a.end_event, a.ended_at)
        self.progress(when)
        if a.type == "probe_pair" and not self.started:
            self.bootstrap_done = True
            self.pass_over_unplanned(when)
        if a.type == "get_capabilities" and isinstance(a.result, dict):
            self.operators = {str(x).lower() for x in a.result.get("operators") or []}
        if a.step is None:
            return
        s = self.steps[self.index[a.step]]
        s.events.append(a.end_event)
        if a.outcome in ("failed", "timed-out") and self.on_lost_side(a, s):
            s.status, s.outcome = "skipped", "side-lost"
            s.reason = outcomes.side_lost_reason(a.error or "")
            s.note = outcomes.skipped_note(s.reason)
            self.lost.add(s.id)
            self.finish(s, when)
            return
        if a.outcome in ("failed", "timed-out"):
            s.status, s.error = "failed", a.error
            return
        if a.outcome != "completed":
            return
        if s.id in self.lost:  # stop-replication: the surviving side's own processes
            s.status = "skipped"
            also = f"; on {a.input.get('side')}: {summarize(a.result)}"
            s.note, s.reason = f"{s.note}{also}", f"{s.reason}{also}"
            return
        if a.type in VERIFY_ACTIVITIES and isinstance(a.result, dict):
            running, host = bool(a.result.get("running")), str(a.result.get("host", "?"))
            seen = outcomes.tool_seen(
                VERIFY_ACTIVITIES[a.type], s.id.startswith("start-"), running, host
            )
            if seen is None:
                s.status, s.message, s.outcome = "done", outcomes.VERIFIED, "verified"
                self.finish(s, when)
            else:
                s.status = "awaiting-confirmation"
                s.message = outcomes.not_verified(seen)
                self.note(a.ended_at, a.end_event, s.id, f"{s.id}: {s.message}", "warning")
            return
        if s.id in CLIENT_STEPS and a.type == "probe_pair":
            # the clients step read the pair; the children (if any) come next
            if not self.busy(s) and not s.clients:
                s.status, s.message, s.clients = "done", outcomes.NO_CLIENTS, []
                s.outcome = "done"
                self.finish(s, when)
            return
        msg = summarize(a.result)
        if msg:
            self.messages.setdefault(s.id, []).append(msg)
            s.message = "; ".join(self.messages[s.id])
        if not self.busy(s) and s.clients is None:
            s.status = "done"
            s.outcome = "automatic" if s.automatic else "done"
            self.finish(s, when)
        if a.type == "find_orphans" and isinstance(a.result, dict) and not a.result.get("clips"):
            self.pass_over(when)

    # -- unplanned switches (workflows/unplanned.py) ------------------------------------------
    @property
    def unplanned(self) -> dict[str, Any] | None:
        inp = self.run.input
        kind = KINDS.get(self.run.workflow_type)
        if kind is not None and kind.unplanned and isinstance(inp, dict) and inp.get("unplanned"):
            return inp
        return None

    def pass_over_unplanned(self, when: datetime) -> None:
        """The steps an unplanned switch does not do are passed over once it has read the pair."""
        inp = self.unplanned
        if inp is None:
            return
        to = str(inp.get("to"))
        for step_id in NOT_UNPLANNED:
            j = self.index.get(step_id)
            if j is None or self.steps[j].status != "pending":
                continue
            s = self.steps[j]
            s.status, s.passed_over, s.outcome = "skipped", True, "passed-over"
            s.note = outcomes.not_unplanned_note(other(to), to)  # type: ignore[arg-type]
            s.started_at = s.ended_at = when

    def on_lost_side(self, a: ActivityCall, s: StepTrack) -> bool:
        """In an unplanned switch, a failed one-try at the lost side skips its step."""
        inp = self.unplanned
        if inp is None or not isinstance(a.input, dict):
            return False
        lost = other(str(inp.get("to")))  # type: ignore[arg-type]
        return a.input.get("side") == lost and s.id in lost_side_steps(lost)

    def pass_over(self, when: datetime) -> None:
        """restore with no orphans: the engine passes over the purge gate and the purge."""
        for step_id, why in outcomes.NO_ORPHANS.items():
            j = self.index.get(step_id)
            if j is None or self.steps[j].status != "pending":
                continue
            s = self.steps[j]
            s.status, s.note, s.passed_over, s.outcome = "skipped", why, True, "passed-over"
            s.started_at = s.ended_at = when
            self.p = max(self.p, j)

    def on_child(self, c: ChildCall) -> None:
        if c.workflow_type == "fence":
            side = c.input.get("side") if isinstance(c.input, dict) else "?"
            self.note(
                c.initiated_at,
                c.initiated_event,
                self.cur.id if self.cur else "(run)",
                f"fence on {side} started ({c.workflow_id}): it fences {side} the moment it "
                "answers again",
            )
            return
        host = c.host or c.workflow_id
        j = self.step_of(c.initiated_event, list(CLIENT_STEPS))
        cur = self.cur
        s: StepTrack | None
        if j is not None:
            s = self.enter(j, c.initiated_event, c.initiated_at, f"child {host}")
        else:
            s = cur
        if s is not None:
            c.step = s.id
            s.status = "running"
            s.clients = s.clients if s.clients is not None else []
            ct = s.client(host)
            if ct is None:
                ct = ClientTrack(host=host, to=c.to)
                s.clients.append(ct)
            ct.status, ct.error = "switching", None
            ct.attempts += 1
            ct.started_at = c.initiated_at
            ct.workflow_ids.append(c.workflow_id)
            s.events.append(c.initiated_event)
            self.inflight[c.initiated_event] = s.id
        to = f" to {c.to}" if c.to else ""
        self.note(
            c.initiated_at, c.initiated_event, c.step or "(run)", f"{host}: switch{to} started"
        )

    def on_child_end(self, c: ChildCall) -> None:
        assert c.end_event is not None and c.ended_at is not None
        if c.workflow_type == "fence":
            return  # the fence outlives the switch; its end is not in this history
        self.inflight.pop(c.initiated_event, None)
        host = c.host or c.workflow_id
        took = (c.ended_at - c.initiated_at).total_seconds()
        if c.ok:
            self.note(c.ended_at, c.end_event, c.step or "(run)", f"{host}: {c.message}")
        else:
            self.note(
                c.ended_at,
                c.end_event,
                c.step or "(run)",
                f"{host}: client switch failed after {_took(took)}: {c.error}",
                "error",
            )
        when = self.clock(c.end_event, c.ended_at)
        self.progress(when)
        if c.step is None:
            return
        s = self.steps[self.index[c.step]]
        s.events.append(c.end_event)
        ct = s.client(host)
        if ct is not None:
            ct.ended_at, ct.seconds = c.ended_at, c.seconds if c.seconds is not None else took
            if c.ok:
                ct.status, ct.message, ct.error = "done", c.message, None
            else:
                ct.status, ct.error = "failed", c.error
                ct.earlier_errors.append(c.error or "failed")
            if c.outcome != "completed":  # the child itself failed: the step fails
                s.status, s.error = "failed", c.error
                return
        self._clients_settled(s, when)

    def _clients_settled(self, s: StepTrack, when: datetime) -> None:
        clients = s.clients or []
        if self.busy(s) or any(c.status in ("switching", "failed") for c in clients):
            return
        s.message = outcomes.clients_switched(
            [c.seconds or 0 for c in clients if c.status == "done"],
            [c.host for c in clients if c.status == "skipped"],
        )
        s.status, s.outcome = "done", "done"
        self.finish(s, when)

    def recorded_rejection(self, sig: SignalRecord) -> str | None:
        """The engine's own reason, where it recorded rejecting this signal (the first
        record after it of the same signal, step and operator)."""
        step, who = ("?", "?") if sig.malformed is not None else (sig.step, sig.operator)
        want = (cut(sig.name, MAX_NAME), cut(step, MAX_NAME), cut(who, MAX_NAME))
        for n, (eid, r) in enumerate(self.rejections):
            if eid > sig.event_id and (r.signal, r.step, r.operator) == want:
                del self.rejections[n]
                return r.reason
        return None

    def on_signal(self, sig: SignalRecord) -> None:
        recorded = self.recorded_rejection(sig) if self.rejections else None
        if recorded is not None:
            if sig.malformed is not None:
                sig.step, sig.operator = "?", "?"
            self.reject(sig, recorded)  # as the engine said it
        elif sig.malformed is not None and sig.name in ("confirm", "approve", "decide"):
            sig.step, sig.operator = "?", "?"
            self.reject(sig, f"malformed payload: {sig.malformed}")
        elif sig.update_refused is not None:
            self.reject(sig, sig.update_refused)  # the workflow's own answer
        elif self.operators and sig.operator.lower() not in self.operators:
            self.reject(sig, f"{sig.operator} is not an operator of this pair")
        elif sig.name in ("confirm", "approve"):
            self.on_confirm(sig)
        elif sig.name == "decide":
            self.on_decide(sig)
        else:
            sig.verdict, sig.rejection = "rejected", f"the workflow has no signal {sig.name!r}"
        if recorded is None and self.verdicts_recorded and sig.verdict == "rejected":
            # The engine did not reject it: the events alone misjudged it.
            self.out.approximate.append(
                f"signal {sig.name} {sig.step} (event {sig.event_id}) was accepted by the "
                f"workflow, but the events before it suggest: {sig.rejection}"
            )
            sig.verdict, sig.rejection = "accepted", None
        who = f" by {sig.operator}"
        if sig.name == "decide":
            target = f"{sig.step} {sig.client}" if sig.client else sig.step
            text = f"decide {sig.action} {target}{who}".replace("  ", " ")
            text += f": {sig.reason}" if sig.reason else ""
        else:
            text = f"{sig.name} {sig.step}{who}" + (f': "{sig.note}"' if sig.note else "")
            if sig.clients:
                text += f" (clients {', '.join(sig.clients)})"
        if sig.via and sig.via != sig.identity:
            text += f" (via {sig.via})"
        level = "info"
        if sig.verdict == "rejected":
            text += f" -- REJECTED: {sig.rejection}"
            level = "warning"
        elif sig.verdict == "ignored":
            text += " -- ignored: the run is already aborting"
        if sig.update_error:
            text += f" -- the update failed: {sig.update_error}"
        if sig.channel == "update" and sig.verdict == "rejected" and not sig.update_refused:
            self.out.approximate.append(
                f"update {sig.name} {sig.step} (event {sig.event_id}) was accepted by the "
                f"workflow, but the events before it suggest: {sig.rejection}"
            )
        label = sig.step if sig.step in self.index else "(run)"
        self.note(sig.at, sig.event_id, label, text, level)

    def reject(self, sig: SignalRecord, reason: str) -> None:
        sig.verdict, sig.rejection = "rejected", reason

    def on_confirm(self, sig: SignalRecord) -> None:
        kind = sig.name
        want = {"confirm": "awaiting-confirmation", "approve": "awaiting-approval"}[kind]
        j = self.index.get(sig.step)
        if j is None:
            return self.reject(sig, f"no step {sig.step!r} in this workflow")
        s = self.steps[j]
        status = self.effective(j)
        if status != want:
            if s.kind == "auto":
                reason = f"{s.id} is automatic; it cannot be {kind}ed"
            elif kind == "confirm" and s.kind == "gate":
                reason = f"{s.id} is a gate: use approve"
            elif kind == "approve" and s.kind == "manual":
                reason = f"{s.id} is a manual step: use confirm"
            else:
                reason = f"{s.id} is {status}, not {want}"
            return self.reject(sig, reason)
        sig.verdict = "accepted"
        s = self.enter(j, sig.event_id, sig.at, f"{kind} {sig.step}")
        s.operator, s.note = sig.operator, sig.note
        s.status, s.outcome = "done", "approved" if s.kind == "gate" else "confirmed"
        s.events.append(sig.event_id)
        s.signals.append(sig.event_id)
        self.progress(self.seen(sig))
        self.finish(s, self.seen(sig))
        return None

    def on_decide(self, sig: SignalRecord) -> None:
        action = sig.action
        if action is None:
            return self.reject(sig, "not a decision (step, action, operator, reason)")
        if action in ("skip", "abort") and not (sig.reason or "").strip():
            return self.reject(sig, f"{action} needs a reason")
        if action == "abort":
            if self.abort is None:
                self.abort, sig.verdict = sig, "accepted"
                self.out.abort = sig
            else:
                sig.verdict = "ignored"
            return None
        j = self.index.get(sig.step)
        if j is None:
            return self.reject(sig, f"no step {sig.step!r} in this workflow")
        s = self.steps[j]
        status = self.effective(j)
        if s.clients is not None and (sig.client or s.failed_clients):
            targets = [c for c in s.failed_clients if sig.client in (None, c.host)]
            if not targets:
                failed = ", ".join(c.host for c in s.failed_clients) or "none"
                reason = f"no failed client {sig.client or ''} in {s.id} (failed: {failed})"
                return self.reject(sig, reason.replace("  ", " "))
            sig.verdict = "accepted"
            for c in targets:
                if action == "skip":
                    c.status, c.message = (
                        "skipped",
                        outcomes.client_skipped(sig.operator, sig.reason),
                    )
                else:
                    c.status = "switching"  # the engine starts it again right away
            s.events.append(sig.event_id)
            s.signals.append(sig.event_id)
            self.progress(self.seen(sig))
            self._clients_settled(s, self.seen(sig))
            return None
        waiting = status in ("awaiting-confirmation", "awaiting-approval")
        if status == "failed" or (action == "skip" and waiting):
            sig.verdict = "accepted"
            s = self.enter(j, sig.event_id, sig.at, f"decide {action} {sig.step}")
            s.events.append(sig.event_id)
            s.signals.append(sig.event_id)
            self.progress(self.seen(sig))
            if action == "skip":
                s.status, s.operator, s.note = (
                    "skipped",
                    sig.operator,
                    outcomes.skipped_note(sig.reason),
                )
                s.outcome, s.reason = "skipped", sig.reason
                self.finish(s, self.seen(sig))
            else:
                s.status = "running"
            return None
        return self.reject(sig, f"{s.id} is {status}; only a failed step can be retried or skipped")

    def on_close(self) -> None:
        run = self.run
        if run.status == "completed":
            if self.abort is not None:
                self.out.state = "aborted"
                for s in self.steps:
                    if s.status in (
                        "awaiting-confirmation",
                        "awaiting-approval",
                        "running",
                        "failed",
                    ):
                        s.status, s.outcome = "skipped", "aborted"
                        s.note = outcomes.aborted_note(s.note)
            else:
                self.out.state = "completed"
            nxt = self.p + 1
            if (
                self.abort is None
                and not run.step_records  # else the records say what each step became
                and nxt < len(self.steps)
                and run.workflow_type in KINDS
                and self.started
            ):
                self.out.approximate.append(
                    f"the run completed but steps from {self.steps[nxt].id} on have no events"
                )
        elif run.status == "continued-as-new":
            self.out.state = "completed"
        else:
            # Not completed (still running, failed, terminated...): the step after the last
            # one that finished was waiting for the operator, if it is a manual step or gate.
            if 0 <= self.p + 1 < len(self.steps) and self.started:
                j = self.p + 1
                eff = self.effective(j)
                if eff.startswith("await"):
                    s = self.steps[j]
                    s.status = eff  # type: ignore[assignment]
                    if s.started_at is None:
                        s.started_at = self.last_progress or run.last_event_at
            waiting = any(s.needs_operator for s in self.steps)
            if run.status in STATE_OF_STATUS:
                self.out.state = STATE_OF_STATUS[run.status]
            else:
                self.out.state = "awaiting-operator" if waiting else "running"
        if run.close_event is not None and run.ended_at is not None:
            end = run.status + (f": {run.close_message}" if run.close_message else "")
            if run.status == "completed" and run.checklist is not None:
                end += f" ({run.checklist.state}: {run.checklist.message or ''})"
            elif run.status == "completed" and self.abort is not None:
                end += " (aborted)"
            level = "info" if run.status in ("completed", "continued-as-new") else "error"
            self.note(run.ended_at, run.close_event, "(run)", f"run {end}", level)


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
