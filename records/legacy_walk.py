"""The walk of a run's events, frozen: it judges each step from the events alone, the way
the checklist engine (workflows/checklist.py) walks its steps, for the runs of big
workflows recorded before the engine kept its step records (memo `amsm-steps`, patch
`record-step-outcomes`; tests/histories/v1..v5 hold such runs). A run with those records
is read from them (records/reconstruct.py), never walked here.

Signals are judged by the engine's own rule book (workflows/rules.py), never by a copy;
the timeline's sentences are records/timeline.py's. Mapping activities to steps is
approximate, and the `approximate` notes say where. Imported only by
records/reconstruct.py (tests/unit/test_rooms.py pins it).
"""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from inventory.models import other
from records.history import (
    ActivityCall,
    ChildCall,
    RunHistory,
    SignalRecord,
    TimerRecord,
    summarize,
)
from records.timeline import (
    BETWEEN_STEPS,
    BOOTSTRAP_ACTIVITIES,
    CLIENT_STEPS,
    activity_end,
    activity_steps,
    activity_text,
    client_ended,
    client_started_text,
    close_entry,
    entry,
    events_in_order,
    fence_started_text,
    not_verified,
    signal_entry,
    start_text,
    timer_entry,
)
from records.tracks import STATE_OF_STATUS, ClientTrack, Reconstruction, StepTrack
from workflows import outcomes, rules
from workflows.kinds import KINDS
from workflows.models import StepDef
from workflows.steps import NOT_UNPLANNED, VERIFY_ACTIVITIES, lost_side_steps


class Walk:
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
        # The walk acts on a signal the moment it takes it; the engine holds it until its
        # workflow task has handled every signal that came with it. What it holds, by step:
        # the task, and the step as the engine saw it then (a second one in that task is
        # judged against that, as held: workflows/rules.py `taken` and `decided`).
        self.held_confirms: dict[str, tuple[int, rules.StepView]] = {}
        self.held_decisions: dict[str, tuple[int, rules.StepView]] = {}
        self.task_ids = [i for i, _ in run.task_starts]
        # The gates a skip may pass (the kind's row; any other only an approval passes).
        kind = KINDS.get(run.workflow_type)
        self.gates = dict(kind.gates) if kind is not None else {}

    # -- helpers -------------------------------------------------------------------------
    @property
    def cur(self) -> StepTrack | None:
        return self.steps[self.p] if 0 <= self.p < len(self.steps) else None

    def note(self, at: datetime, eid: int, step: str, text: str, level: str = "info") -> None:
        self.out.entries.append(entry(at, eid, step, text, level))

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

    def find(self, candidates: list[str]) -> int | None:
        """The next step that can run an activity or child (by its type)."""
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
        self.note(run.started_at, 1, "(run)", start_text(run))
        for _, phase, obj in events_in_order(run):
            if isinstance(obj, ActivityCall):
                self.on_activity(obj) if phase == 0 else self.on_activity_end(obj)
            elif isinstance(obj, ChildCall):
                self.on_child(obj) if phase == 0 else self.on_child_end(obj)
            elif isinstance(obj, SignalRecord):
                self.on_signal(obj)
            elif isinstance(obj, TimerRecord):
                obj.step = self.cur.id if self.cur else None
                self.out.entries.append(timer_entry(obj))
        self.on_close()
        self.out.entries.sort(key=lambda x: (x.event_id, x.at))
        return self.out

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
            j = self.find(activity_steps(a))
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
        self.labels[a.scheduled_event] = label
        self.note(a.scheduled_at, a.scheduled_event, label, activity_text(a))

    def on_activity_end(self, a: ActivityCall) -> None:
        assert a.end_event is not None and a.ended_at is not None
        self.inflight.pop(a.scheduled_event, None)
        label = a.step or self.labels.get(a.scheduled_event, "(run)")
        self.out.entries += activity_end(a, label)
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
            seen = not_verified(a, s.id)
            if seen is None:
                s.status, s.message, s.outcome = "done", outcomes.VERIFIED, "verified"
                self.finish(s, when)
            else:
                s.status, s.message = "awaiting-confirmation", seen
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
            label = self.cur.id if self.cur else "(run)"
            self.note(c.initiated_at, c.initiated_event, label, fence_started_text(c))
            return
        host = c.host or c.workflow_id
        j = self.find(list(CLIENT_STEPS))
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
        label = c.step or "(run)"
        self.note(c.initiated_at, c.initiated_event, label, client_started_text(c))

    def on_child_end(self, c: ChildCall) -> None:
        assert c.end_event is not None and c.ended_at is not None
        if c.workflow_type == "fence":
            return  # the fence outlives the switch; its end is not in this history
        self.inflight.pop(c.initiated_event, None)
        host = c.host or c.workflow_id
        took = (c.ended_at - c.initiated_at).total_seconds()
        self.out.entries.append(client_ended(c))
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

    def on_signal(self, sig: SignalRecord) -> None:
        if sig.name not in rules.SIGNALS:
            sig.step, sig.operator = "?", "?"
            self.reject(sig, rules.unknown_signal_refusal(sig.name))
        elif sig.malformed is not None:
            sig.step, sig.operator = "?", "?"
            self.reject(sig, f"malformed payload: {sig.malformed}")
        elif sig.update_refused is not None:
            self.reject(sig, sig.update_refused)  # the workflow's own answer
        elif (refusal := rules.operator_refusal(self.operators, sig.operator)) is not None:
            self.reject(sig, refusal)
        elif sig.name in ("confirm", "approve"):
            self.on_confirm(sig)
        else:
            self.on_decide(sig)
        if sig.channel == "update" and sig.verdict == "rejected" and not sig.update_refused:
            self.out.approximate.append(
                f"update {sig.name} {sig.step} (event {sig.event_id}) was accepted by the "
                f"workflow, but the events before it suggest: {sig.rejection}"
            )
        self.out.entries.append(signal_entry(sig, self.index))

    def reject(self, sig: SignalRecord, reason: str) -> None:
        sig.verdict, sig.rejection = "rejected", reason

    def view(self, step_id: str) -> rules.StepView | None:
        """A step as the engine would see it now (workflows/rules.py), None if none."""
        j = self.index.get(step_id)
        return None if j is None else rules.view(self.steps[j], self.effective(j))

    def task_of(self, sig: SignalRecord) -> int | None:
        """The workflow task that handles a signal (the first after it; one not handled
        yet: the next). None for an update (the history says how each one was taken)."""
        if sig.channel != "signal":
            return None
        return bisect.bisect_right(self.task_ids, sig.event_id)

    def held(
        self, held: dict[str, tuple[int, rules.StepView]], sig: SignalRecord
    ) -> rules.StepView | None:
        """The step as the engine saw it when it took a signal of the same kind for it in
        the task that handles this one too (it still holds that one then)."""
        task, seen = held.get(sig.step, (None, None))
        return seen if task is not None and task == self.task_of(sig) else None

    def on_confirm(self, sig: SignalRecord) -> None:
        kind = sig.name
        before = self.view(sig.step)
        held = self.held(self.held_confirms, sig)
        if held is not None:
            refusal = rules.signal_refusal(kind, sig.step, held, taken=True)
        else:
            refusal = rules.signal_refusal(kind, sig.step, before)
        if refusal is not None:
            return self.reject(sig, refusal)
        sig.verdict = "accepted"
        task = self.task_of(sig)
        if task is not None and before is not None:
            self.held_confirms[sig.step] = (task, before)
        s = self.enter(self.index[sig.step], sig.event_id, sig.at, f"{kind} {sig.step}")
        s.operator, s.note = sig.operator, sig.note
        s.status, s.outcome = "done", "approved" if s.kind == "gate" else "confirmed"
        s.events.append(sig.event_id)
        s.signals.append(sig.event_id)
        self.progress(self.seen(sig))
        self.finish(s, self.seen(sig))
        return None

    def on_decide(self, sig: SignalRecord) -> None:
        before = self.view(sig.step)
        held = self.held(self.held_decisions, sig) if sig.action != "abort" else None
        refusal = rules.decision_refusal(
            sig,
            held or before,
            aborting_by=self.abort.operator if self.abort is not None else None,
            gate_skippable=sig.step in self.gates,
            decided=held is not None,
        )
        if refusal is not None:
            return self.reject(sig, refusal)
        sig.verdict = "accepted"
        if sig.action == "abort":
            self.abort = self.out.abort = sig
            return None
        task = self.task_of(sig)
        if task is not None and before is not None and held is None:
            self.held_decisions[sig.step] = (task, before)
        j = self.index[sig.step]
        s = self.steps[j]
        if s.clients is not None and (sig.client or s.failed_clients):
            for c in s.failed_clients:
                if sig.client not in (None, c.host):
                    continue
                if sig.action == "skip":
                    c.status = "skipped"
                    c.message = outcomes.client_skipped(sig.operator, sig.reason)
                else:
                    c.status = "switching"  # the engine starts it again right away
            s.events.append(sig.event_id)
            s.signals.append(sig.event_id)
            self.progress(self.seen(sig))
            self._clients_settled(s, self.seen(sig))
            return None
        s = self.enter(j, sig.event_id, sig.at, f"decide {sig.action} {sig.step}")
        s.events.append(sig.event_id)
        s.signals.append(sig.event_id)
        self.progress(self.seen(sig))
        if sig.action == "skip":
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
        end = close_entry(run, self.abort is not None)
        if end is not None:
            self.out.entries.append(end)
