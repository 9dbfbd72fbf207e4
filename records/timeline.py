"""A run's events placed on its timeline, in words: who sent what when and whether the run
took it, what each activity and client switch did, the timers, how the run ended.

The sentences have one home here: the reconstruction of a run with the engine's step
records (`Timeline`, from records/reconstruct.py) and the frozen walk of older runs
(records/legacy_walk.py) both say them. `Timeline` judges no step: it reads which step
the engine had in hand when it scheduled each activity or client switch from the step
records, and whether it took each signal from its rejection records (records/reconstruct.py
`verdicts`); each client's switch it follows from its child workflow and the decisions the
run took for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from records.history import (
    ActivityCall,
    ChildCall,
    RunHistory,
    SignalRecord,
    TimerRecord,
    direction,
    summarize,
)
from records.tracks import ClientTrack, Reconstruction, StepTrack, TimelineEntry
from workflows import outcomes
from workflows.models import StepRecord
from workflows.steps import VERIFY_ACTIVITIES, steps_for_activity

BOOTSTRAP_ACTIVITIES = (
    "get_timing",
    "get_capabilities",
    "runs_since",
    "probe_pair",
    "fences_waiting",
)
CLIENT_STEPS = ("switch-clients", "switch-pilots", "move-editors")
SETTLED = ("pending", "done", "skipped")
# Activities the engine runs between two steps (restore reads the asset counts for the
# approve-overwrite gate's message before the gate starts).
BETWEEN_STEPS = ("dsm_asset_counts",)


# -- the sentences ----------------------------------------------------------------------------
def took(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"


def activity_steps(call: ActivityCall) -> list[str]:
    """The steps an activity can belong to (the engine's step table, by activity)."""
    return steps_for_activity(call.type, call.input if isinstance(call.input, dict) else {})


def entry(at: datetime, eid: int, step: str, text: str, level: str = "info") -> TimelineEntry:
    return TimelineEntry(at=at, event_id=eid, step=step, text=text, level=level)  # type: ignore[arg-type]


def start_text(run: RunHistory) -> str:
    inp = run.input if isinstance(run.input, dict) else {}
    # A control's input names its operator.
    who = inp.get("initiator") or inp.get("operator") or run.memo.get("initiator") or "unknown"
    what = direction(run.workflow_type, run.input)
    return f"{run.workflow_type} started{' (' + what + ')' if what else ''} by {who}"


def activity_text(a: ActivityCall) -> str:
    return f"{a.type} {summarize(a.input)}".rstrip()


def activity_end(a: ActivityCall, label: str) -> list[TimelineEntry]:
    """An activity's end: done, canceled or failed (with the device's error), and the
    attempt before the last one where it was retried."""
    assert a.end_event is not None and a.ended_at is not None
    spent = f" ({took(a.seconds)})" if a.seconds is not None else ""
    retried = f", attempt {a.attempt}" if a.attempt > 1 else ""
    if a.outcome == "completed":
        out = [
            entry(a.ended_at, a.end_event, label, f"{a.type} done{spent}: {summarize(a.result)}")
        ]
    elif a.outcome == "canceled":
        out = [entry(a.ended_at, a.end_event, label, f"{a.type} canceled{spent}", "warning")]
    else:
        text = f"{a.type} {a.outcome}{spent}{retried}: {a.error}"
        out = [entry(a.ended_at, a.end_event, label, text, "error")]
    if a.last_failure:
        text = (
            f"{a.type} needed {a.attempt} attempts; attempt {a.attempt - 1} failed: "
            f"{a.last_failure}"
        )
        out.append(entry(a.started_at or a.ended_at, a.end_event, label, text, "warning"))
    return out


def not_verified(a: ActivityCall, step_id: str) -> str | None:
    """What a manual step's check saw when the tool is not as the operator said (the
    engine then waits for the operator again), or None."""
    if a.type not in VERIFY_ACTIVITIES or not isinstance(a.result, dict):
        return None
    running, host = bool(a.result.get("running")), str(a.result.get("host", "?"))
    seen = outcomes.tool_seen(
        VERIFY_ACTIVITIES[a.type], step_id.startswith("start-"), running, host
    )
    return None if seen is None else outcomes.not_verified(seen)


def fence_started_text(c: ChildCall) -> str:
    side = c.input.get("side") if isinstance(c.input, dict) else "?"
    return (
        f"fence on {side} started ({c.workflow_id}): it fences {side} the moment it answers again"
    )


# The children that switch clients; any other (a signed act's nonce, a control's
# break-glass approvals, a schedule's run) is said as what it is, never as a client.
CLIENT_CHILDREN = ("client-switch", "client-batch")


def other_started_text(c: ChildCall) -> str:
    return f"{c.workflow_type} {c.workflow_id} started"


def other_ended(c: ChildCall) -> TimelineEntry:
    """How a child that switches no client ended: its outcome, and a checklist's state
    and message where it returned one (a control's approvals run)."""
    assert c.end_event is not None and c.ended_at is not None
    spent = took((c.ended_at - c.initiated_at).total_seconds())
    text = f"{c.workflow_type} {c.workflow_id} {c.outcome} after {spent}"
    r = c.result if isinstance(c.result, dict) else {}
    if r.get("state"):
        text += f": {r['state']}" + (f": {r['message']}" if r.get("message") else "")
    if c.outcome != "completed":
        return entry(c.ended_at, c.end_event, c.step or "(run)", f"{text}: {c.error}", "error")
    return entry(c.ended_at, c.end_event, c.step or "(run)", text)


def client_started_text(c: ChildCall) -> str:
    to = f" to {c.to}" if c.to else ""
    return f"{c.host or c.workflow_id}: switch{to} started"


def client_ended(c: ChildCall) -> TimelineEntry:
    assert c.end_event is not None and c.ended_at is not None
    host = c.host or c.workflow_id
    label = c.step or "(run)"
    if c.ok:
        return entry(c.ended_at, c.end_event, label, f"{host}: {c.message}")
    spent = took((c.ended_at - c.initiated_at).total_seconds())
    text = f"{host}: client switch failed after {spent}: {c.error}"
    return entry(c.ended_at, c.end_event, label, text, "error")


def signal_entry(sig: SignalRecord, steps: dict[str, Any]) -> TimelineEntry:
    """An operator's signal or update, as the run took or refused it (`sig.verdict`)."""
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
    if sig.update_error:
        text += f" -- the update failed: {sig.update_error}"
    label = sig.step if sig.step in steps else "(run)"
    return entry(sig.at, sig.event_id, label, text, level)


def timer_entry(t: TimerRecord) -> TimelineEntry:
    secs = f" ({t.seconds:g} s)" if t.seconds else ""
    return entry(t.started_at, t.event_id, t.step or "(run)", f"timer{secs}: {t.outcome}")


def close_entry(run: RunHistory, aborted: bool) -> TimelineEntry | None:
    if run.close_event is None or run.ended_at is None:
        return None
    end = run.status + (f": {run.close_message}" if run.close_message else "")
    if run.status == "completed" and run.checklist is not None:
        end += f" ({run.checklist.state}: {run.checklist.message or ''})"
    elif run.status == "completed" and aborted:
        end += " (aborted)"
    level = "info" if run.status in ("completed", "continued-as-new") else "error"
    return entry(run.ended_at, run.close_event, "(run)", f"run {end}", level)


def events_in_order(run: RunHistory) -> list[tuple[int, int, Any]]:
    """(event id, 0 for a start or 1 for an end, the thing): the run's events in order."""
    items: list[tuple[int, int, Any]] = []
    for a in run.activities:
        items.append((a.scheduled_event, 0, a))
        if a.end_event:
            items.append((a.end_event, 1, a))
    for c in run.children:
        items.append((c.initiated_event, 0, c))
        if c.end_event:
            items.append((c.end_event, 1, c))
    items += [(sig.event_id, 0, sig) for sig in run.signals]
    items += [(t.event_id, 0, t) for t in run.timers]
    items.sort(key=lambda x: (x[0], x[1]))
    return items


# -- a run with the engine's step records ---------------------------------------------------
class InHand:
    """The steps as the engine had recorded them at an event: which one it had in hand."""

    def __init__(self, records: list[StepRecord]) -> None:
        self.records = records

    def at(self, event_id: int) -> tuple[list[str], str | None, dict[str, str]]:
        """(the steps busy then, the last step recorded as begun, each step's status)."""
        status: dict[str, str] = {}
        last: str | None = None
        for r in self.records:
            if r.event_id is not None and r.event_id > event_id:
                break
            status[r.step] = r.status
            last = r.step if r.status != "pending" else last
        busy = [k for k, st in status.items() if st not in SETTLED]
        return busy, last, status

    def step_of(self, event_id: int, candidates: list[str]) -> str | None:
        """The step an activity or child belongs to: the one the engine had in hand when
        it scheduled it (the record comes first, in the same workflow task): one that
        runs or waits, or the last one recorded if the event is of its kind (a lost
        side's step, skipped, then reads the survivor)."""
        busy, last, _ = self.at(event_id)
        if busy:
            return busy[-1]
        return last if last in candidates else None

    def current(self, event_id: int) -> str | None:
        """The step the run was in: one busy, else the last one begun."""
        busy, last, _ = self.at(event_id)
        return busy[-1] if busy else last


class Timeline:
    """Places a recorded run's events on its timeline; the steps themselves are the
    engine's records (records/reconstruct.py), the signals' verdicts too."""

    def __init__(self, run: RunHistory, out: Reconstruction) -> None:
        self.run, self.out = run, out
        self.steps: dict[str, StepTrack] = {s.id: s for s in out.steps}
        self.hand = InHand(run.step_records)
        self.labels: dict[int, str] = {}  # activity scheduled event -> its label
        self.booted = False  # the first probe of the pair has come back
        self.aborted = False  # an abort the run took so far
        # The step of the last event placed on one: a timer or a fence goes with it.
        self.last: str | None = None

    def place(self) -> None:
        run = self.run
        self.note(run.started_at, 1, "(run)", start_text(run))
        for _, phase, obj in events_in_order(run):
            if isinstance(obj, ActivityCall):
                self.on_activity(obj) if phase == 0 else self.on_activity_end(obj)
            elif isinstance(obj, ChildCall):
                self.on_child(obj) if phase == 0 else self.on_child_end(obj)
            elif isinstance(obj, SignalRecord):
                self.on_signal(obj)
            elif isinstance(obj, TimerRecord):
                obj.step = self.last
                self.out.entries.append(timer_entry(obj))
        end = close_entry(run, self.out.abort is not None)
        if end is not None:
            self.out.entries.append(end)
        self.out.entries.sort(key=lambda x: (x.event_id, x.at))

    def note(self, at: datetime, eid: int, step: str, text: str, level: str = "info") -> None:
        self.out.entries.append(entry(at, eid, step, text, level))

    def started(self, event_id: int) -> bool:
        """The run has walked into its steps (its first read of the pair is back)."""
        return self.booted or self.hand.current(event_id) is not None

    def label_of(self, a: ActivityCall) -> str:
        eid = a.scheduled_event
        if not self.steps:
            return "(run)"
        if self.aborted:
            busy, _, status = self.hand.at(eid)
            cur = busy[-1] if busy else None
            if not (cur is not None and status[cur] == "running" and cur in activity_steps(a)):
                return "(abort)"  # after an abort: reading where the devices ended up
        if not self.started(eid) and a.type in BOOTSTRAP_ACTIVITIES:
            return "(bootstrap)"
        step = self.hand.step_of(eid, activity_steps(a))
        a.step = step if step in self.steps else None  # (a record of a step not in the table)
        if a.step is None and self.started(eid) and a.type not in BETWEEN_STEPS:
            self.out.approximate.append(
                f"activity {a.type} (event {eid}) belongs to no step the engine had in hand"
            )
        return a.step or "(between steps)"

    def on_activity(self, a: ActivityCall) -> None:
        label = self.label_of(a)
        if a.step is not None:
            self.steps[a.step].events.append(a.scheduled_event)
            self.last = a.step
        self.labels[a.scheduled_event] = label
        self.note(a.scheduled_at, a.scheduled_event, label, activity_text(a))

    def on_activity_end(self, a: ActivityCall) -> None:
        assert a.end_event is not None and a.ended_at is not None
        label = a.step or self.labels.get(a.scheduled_event, "(run)")
        self.out.entries += activity_end(a, label)
        if a.type == "probe_pair":
            self.booted = True
        if a.step is None:
            return
        s = self.steps[a.step]
        s.events.append(a.end_event)
        if a.type == "probe_pair" and s.id in CLIENT_STEPS and s.clients is None:
            s.clients = []  # the clients step read the pair; its children (if any) follow
        seen = not_verified(a, a.step) if a.outcome == "completed" else None
        if seen is not None:
            self.note(a.ended_at, a.end_event, a.step, f"{a.step}: {seen}", "warning")

    def on_child(self, c: ChildCall) -> None:
        if c.workflow_type == "fence":
            self.note(
                c.initiated_at, c.initiated_event, self.last or "(run)", fence_started_text(c)
            )
            return
        if c.workflow_type not in CLIENT_CHILDREN:
            self.note(c.initiated_at, c.initiated_event, "(run)", other_started_text(c))
            return
        host = c.host or c.workflow_id
        if self.steps:
            c.step = self.hand.step_of(c.initiated_event, list(CLIENT_STEPS)) or self.last
        s = self.steps.get(c.step) if c.step else None
        if s is not None:
            self.last = s.id
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
        self.note(c.initiated_at, c.initiated_event, c.step or "(run)", client_started_text(c))

    def on_child_end(self, c: ChildCall) -> None:
        assert c.end_event is not None and c.ended_at is not None
        if c.workflow_type == "fence":
            return  # the fence outlives the switch; its end is not in this history
        if c.workflow_type not in CLIENT_CHILDREN:
            self.out.entries.append(other_ended(c))
            return
        self.out.entries.append(client_ended(c))
        s = self.steps.get(c.step) if c.step else None
        if s is None:
            return
        s.events.append(c.end_event)
        ct = s.client(c.host or c.workflow_id)
        if ct is None:
            return
        took_s = (c.ended_at - c.initiated_at).total_seconds()
        ct.ended_at, ct.seconds = c.ended_at, c.seconds if c.seconds is not None else took_s
        if c.ok:
            ct.status, ct.message, ct.error = "done", c.message, None
        else:
            ct.status, ct.error = "failed", c.error
            ct.earlier_errors.append(c.error or "failed")

    def on_signal(self, sig: SignalRecord) -> None:
        """A signal as the run took it (its verdict is the engine's, read before)."""
        s = self.steps.get(sig.step)
        if sig.verdict == "accepted" and sig.name == "decide" and sig.action == "abort":
            self.aborted = True
            if self.out.abort is None:
                self.out.abort = sig
        elif sig.verdict == "accepted" and s is not None:
            self.last = s.id
            s.events.append(sig.event_id)
            s.signals.append(sig.event_id)
            if sig.name == "decide" and s.clients is not None:
                self.on_client_decision(sig, s)
        self.out.entries.append(signal_entry(sig, self.steps))

    def on_client_decision(self, sig: SignalRecord, s: StepTrack) -> None:
        """A decision for a step's failed clients: skipped, or switched again at once."""
        for c in s.failed_clients:
            if sig.client not in (None, c.host):
                continue
            if sig.action == "skip":
                c.status = "skipped"
                c.message = outcomes.client_skipped(sig.operator, sig.reason)
            else:
                c.status = "switching"
