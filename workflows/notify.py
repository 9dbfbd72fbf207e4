"""Telling people (docs/operators/notifications.md): the workflow decides when, an
activity (activities/notify.py) delivers, and every sentence of a message is made here.

A run whose inventory has `notify` holds one `Notices`. The engine shows it the checklist
each time it publishes (`seen`): a step that starts waiting for a person is told to
`waiting` at once, again every `remind_every` while it still waits (a durable timer,
cancelled the moment the step is acted on), and to `escalation` once after
`escalate_after`; a run that starts, completes, is aborted or fails is told to `runs`.
Other workflows call `tell(audience, subject, body)`.

A delivery that fails never holds or fails a run: each one, delivered or not, is listed
in the checklist (`Checklist.deliveries`). A run that continues as new carries that list,
and its `Notices` goes on from it: what was already told is not told again, and the next
reminder is due when it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.models import FenceState, Notice, NoticeResult, NotifyPlan
    from activities.notify import NotifyActivities
    from workflows.checklist import describe_failure
    from workflows.models import Checklist, Delivery, DeliveryKind, StepState

# Runs started before they told people replay without it (and a run whose inventory has
# no `notify` never asks).
PATCH = "notify"
# A short time limit and few attempts: a dead mail server costs a run nothing but a line.
DELIVERY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=2)),
}
DELIVERIES_KEPT = 100  # the checklist lists the last ones (and counts them all)
ENDED = ("completed", "aborted", "failed")


# -- the sentences ----------------------------------------------------------------------------
def run_link(plan: NotifyPlan, pair: str) -> str | None:
    """The console's page of the pair's run (console/app.py: /pairs/{pair}/run)."""
    return f"{plan.console_url}/pairs/{pair}/run" if plan.console_url else None


def commands(c: Checklist, s: StepState) -> list[str]:
    """The exact commands that act on a waiting step (client/commands: confirm, approve,
    retry, skip)."""
    run = c.run_id
    if s.status == "awaiting-approval":
        return [f"amsm approve {run} {s.id}"]
    if s.status == "awaiting-confirmation":
        return [f"amsm confirm {run} {s.id}", f'amsm skip {run} {s.id} --reason "..."']
    hosts = [cp.host for cp in s.failed_clients]
    if hosts and s.status != "failed":
        return [
            line
            for h in hosts
            for line in (
                f"amsm retry {run} {s.id} --client {h}",
                f'amsm skip {run} {s.id} --client {h} --reason "..."',
            )
        ]
    return [f"amsm retry {run} {s.id}", f'amsm skip {run} {s.id} --reason "..."']


def waits_for(s: StepState) -> str:
    if s.status == "awaiting-approval":
        return "waits for an approval"
    if s.status == "awaiting-confirmation":
        return "waits for a confirmation"
    hosts = [cp.host for cp in s.failed_clients]
    if hosts and s.status != "failed":
        return f"waits for a decision: client(s) {', '.join(hosts)} failed"
    return "failed and waits for a decision (retry or skip)"


def waiting_message(
    plan: NotifyPlan, c: Checklist, s: StepState, since: str, kind: DeliveryKind
) -> tuple[str, str]:
    """The subject and body told about a step that waits for a person."""
    lead = "" if kind == "waiting" else "still "
    alarm = "ESCALATION: " if kind == "escalation" else ""
    subject = f"{alarm}amsm {c.pair}: {c.workflow} step {s.id} {lead}{waits_for(s)}"
    lines = [
        f"Pair {c.pair}, run {c.run_id} ({c.title}), started by {c.initiator}.",
        f"Step {s.id}: {s.title}",
        f"It {lead}{waits_for(s)}, since {since}.",
    ]
    if s.kind == "gate":
        lines.append(f"What approving it does: {s.title}")
    if s.error:
        lines.append(f"The error: {s.error}")
    for cp in s.failed_clients:
        lines.append(f"Client {cp.host}: {cp.error or 'failed'}")
    lines.append("To act on it: " + "  or  ".join(commands(c, s)))
    link = run_link(plan, c.pair)
    if link:
        lines.append(f"In the console: {link}")
    return subject, "\n".join(lines)


def approval_message(plan: NotifyPlan, c: Checklist, s: StepState) -> tuple[str, str]:
    """Told to `waiting` when a gate that needs several people has some of its approvals
    (docs/operators/two-person.md): who approved, and that one more is needed."""
    counted = s.counted
    need = (s.required or 0) - len(counted)
    more = "one more approval is needed" if need == 1 else f"{need} more approvals are needed"
    subject = f"amsm {c.pair}: {c.workflow} step {s.id}: {more}"
    lines = [
        f"Pair {c.pair}, run {c.run_id} ({c.title}), started by {c.initiator}.",
        f"Step {s.id}: {s.title}",
        f"{len(counted)} of {s.required} approvals: "
        + ", ".join(f"{a.operator} at {a.at}" for a in counted)
        + f"; {more}, from another operator with their own key.",
        "To approve it: " + "  or  ".join(commands(c, s)),
    ]
    link = run_link(plan, c.pair)
    if link:
        lines.append(f"In the console: {link}")
    return subject, "\n".join(lines)


def run_message(plan: NotifyPlan, c: Checklist, event: str) -> tuple[str, str]:
    """The subject and body told to `runs` when a run starts or ends."""
    subject = f"amsm {c.pair}: {c.title} {event}"
    lines = [f"Pair {c.pair}, run {c.run_id} ({c.workflow}), started by {c.initiator}: {event}."]
    if c.unplanned_reason:
        lines.append(f"Unplanned: {c.unplanned_reason}")
    if c.message and event != "started":
        lines.append(c.message)
    link = run_link(plan, c.pair)
    if link:
        lines.append(f"In the console: {link}")
    return subject, "\n".join(lines)


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


# -- the timing -------------------------------------------------------------------------------
class Notices:
    """A run's messages: `seen` after each change of its checklist, `tell` for the rest,
    `flush` before the run ends or continues as new (nothing sent is left behind)."""

    def __init__(self, plan: NotifyPlan, checklist: Checklist, changed: Callable[[], None]) -> None:
        self.plan = plan
        self.checklist = checklist
        self.changed = changed  # a delivery recorded: the checklist is drawn again
        self._waiting: dict[str, str] = {}  # step id -> since when it waits
        self._sending = 0
        # The watches and deliveries under way, held until they end (the event loop holds
        # only weak references to its tasks).
        self._tasks: set[asyncio.Future[None]] = set()
        self._told_state = checklist.state if checklist.continued else "running"
        # The approvals told about (step, time of the last that counts), this run or before.
        self._approvals_told = {
            (d.step, d.since) for d in checklist.deliveries if d.kind == "approval"
        }

    @staticmethod
    def attach(
        plan: NotifyPlan | None, checklist: Checklist, changed: Callable[[], None]
    ) -> Notices | None:
        """A run's notices when its inventory has `notify` (old runs never reach the patch)."""
        if plan is None or not workflow.patched(PATCH):
            return None
        return Notices(plan, checklist, changed)

    def started(self) -> None:
        """The run passed its preconditions and walks (not again when it continued)."""
        if not self.checklist.continued:
            self.tell("runs", *run_message(self.plan, self.checklist, "started"))

    def seen(self) -> None:
        """The checklist changed: tell who must know."""
        c = self.checklist
        waiting = {s.id: s for s in c.steps if s.needs_operator}
        for sid in [k for k in self._waiting if k not in waiting]:
            del self._waiting[sid]  # acted on: its watch ends at once
        for sid, s in waiting.items():
            if (
                sid not in self._waiting
                or (s.waiting_since or self._waiting[sid]) != self._waiting[sid]
            ):
                self._waiting[sid] = self._since(s)
                self._keep(self._watch(s, self._waiting[sid]))
        for s in c.steps:
            counted = s.counted
            if s.required is None or not counted or len(counted) >= s.required:
                continue
            if s.status != "awaiting-approval" or (s.id, counted[-1].at) in self._approvals_told:
                continue
            self._approvals_told.add((s.id, counted[-1].at))
            subject, body = approval_message(self.plan, c, s)
            self.tell("waiting", subject, body, "approval", s.id, counted[-1].at)
        if c.state in ENDED and self._told_state != c.state:
            self._told_state = c.state
            self.tell("runs", *run_message(self.plan, c, c.state))

    def tell(
        self,
        audience: str,
        subject: str,
        body: str,
        kind: DeliveryKind = "run",
        step: str | None = None,
        since: str | None = None,
    ) -> None:
        """Send one message (in the background: the run goes on) and record it."""
        self._sending += 1
        self._keep(self._deliver(audience, subject, body, kind, step, since))

    async def flush(self) -> None:
        """Wait until every message sent has its result (each has a short time limit)."""
        await workflow.wait_condition(lambda: self._sending == 0)

    # -- inside -------------------------------------------------------------------------------
    def _keep(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _since(self, s: StepState) -> str:
        """Since when the step waits: its own mark, or (a client that failed in a step still
        running; a run that continued) what was told about this wait before."""
        if s.waiting_since:
            return s.waiting_since
        for d in reversed(self.checklist.deliveries):
            if d.step == s.id and d.kind == "waiting" and d.since:
                return d.since
        return workflow.now().isoformat(timespec="seconds")

    def _told(self, sid: str, since: str) -> list[Delivery]:
        return [d for d in self.checklist.deliveries if d.step == sid and d.since == since]

    async def _watch(self, s: StepState, since: str) -> None:
        """One waiting step: told at once, reminded, escalated, until it is acted on."""
        told = self._told(s.id, since)
        if not any(d.kind == "waiting" for d in told):
            self._tell_step(s, since, "waiting")
        last = max([_at(d.at) for d in told if d.kind != "escalation"], default=workflow.now())
        escalated = any(d.kind == "escalation" for d in told)
        every = timedelta(seconds=self.plan.remind_every)
        escalate_at = _at(since) + timedelta(seconds=self.plan.escalate_after)
        acted = lambda: self._waiting.get(s.id) != since  # noqa: E731
        while not acted():
            due = last + every if escalated else min(last + every, escalate_at)
            wait = max((due - workflow.now()).total_seconds(), 1.0)
            try:
                await workflow.wait_condition(acted, timeout=timedelta(seconds=wait))
                return
            except TimeoutError:
                pass
            now = workflow.now()
            if not escalated and now >= escalate_at:
                escalated = True
                self._tell_step(s, since, "escalation")
            if now >= last + every:
                last = now
                self._tell_step(s, since, "reminder")

    def _tell_step(self, s: StepState, since: str, kind: DeliveryKind) -> None:
        subject, body = waiting_message(self.plan, self.checklist, s, since, kind)
        audience = "escalation" if kind == "escalation" else "waiting"
        self.tell(audience, subject, body, kind, s.id, since)

    async def _deliver(
        self,
        audience: str,
        subject: str,
        body: str,
        kind: DeliveryKind,
        step: str | None,
        since: str | None,
    ) -> None:
        at = workflow.now().isoformat(timespec="seconds")
        try:
            r = await send(self.checklist.pair, audience, subject, body)
        finally:
            self._sending -= 1
        c = self.checklist
        c.deliveries.append(
            Delivery(
                at=at,
                audience=audience,
                kind=kind,
                subject=subject,
                step=step,
                since=since,
                delivered=r.delivered,
                error=r.error,
            )
        )
        c.deliveries_total += 1
        del c.deliveries[:-DELIVERIES_KEPT]
        self.changed()


async def send(pair: str, audience: str, subject: str, body: str) -> NoticeResult:
    """One message through the worker (activities/notify.py): delivered, or why not; never
    an error (a workflow with no checklist, the fence or the readiness watch, calls it
    itself and its log keeps the result)."""
    notice = Notice(pair=pair, audience=audience, subject=subject, body=body)
    try:
        r = await workflow.execute_activity_method(NotifyActivities.notify, notice, **DELIVERY)
    except ActivityError as e:  # no worker took it in time, say: a line, not a failure
        r = NoticeResult(delivered=False, error=f"not delivered: {describe_failure(e)}")
    if r.delivered:
        workflow.logger.info("%s told: %s", audience, subject)
    else:
        workflow.logger.warning("%s not told (%s): %s", audience, subject, r.error)
    return r


def pair_link(plan: NotifyPlan, pair: str) -> str | None:
    """The console's page of the pair (console/app.py: /pairs/{pair})."""
    return f"{plan.console_url}/pairs/{pair}" if plan.console_url else None


def readiness_message(
    plan: NotifyPlan, pair: str, ready: bool, problems: int, named: list[str], since: str
) -> tuple[str, str]:
    """The readiness watch turned not ready, or ready again (told to `readiness`)."""
    if ready:
        subject = f"amsm {pair}: ready again"
        lines = [f"Pair {pair} is ready again since {since}: the site check finds no problem."]
    else:
        subject = f"amsm {pair}: NOT ready ({problems} problem(s))"
        lines = [
            f"Pair {pair} is not ready since {since}: the site check finds {problems} problem(s)."
        ]
        lines += [f"- {n}" for n in named]
        lines.append("To see them all: amsm check")
    link = pair_link(plan, pair)
    if link:
        lines.append(f"In the console: {link}")
    return subject, "\n".join(lines)


def fence_message(plan: NotifyPlan, st: FenceState) -> tuple[str, str]:
    """A fence that waits for its lost side, or that has ended (told to `runs`)."""
    if st.status == "waiting":
        subject = f"amsm {st.pair}: a fence waits for {st.side}"
        lines = [
            f"Pair {st.pair}: the fence on {st.side}, started by {st.started_by} at "
            f"{st.started_at} for: {st.reason}.",
            st.message or "",
            'To end it by hand: amsm fence end --reason "..."',
        ]
    else:
        subject = f"amsm {st.pair}: the fence on {st.side} {st.status}"
        lines = [
            f"Pair {st.pair}: the fence on {st.side} {st.status} at {st.ended_at}.",
            st.message or "",
        ]
    link = pair_link(plan, st.pair)
    if link:
        lines.append(f"In the console: {link}")
    return subject, "\n".join(x for x in lines if x)


# -- `amsm notify test` -----------------------------------------------------------------------
class NotifyTestInput(BaseModel):
    pair: str
    tag: str  # an audience, or Apprise's `all` (every service of the config)
    initiator: str


def test_message(inp: NotifyTestInput) -> tuple[str, str]:
    subject = f"amsm {inp.pair}: a test message to {inp.tag!r}"
    body = (
        f"A test of the notifications of pair {inp.pair}, sent by {inp.initiator} with "
        f"`amsm notify test --tag {inp.tag}`. Nothing waits for you."
    )
    return subject, body


@workflow.defn(name="notify-test")
class NotifyTestWorkflow:
    """One test message through the worker's Apprise config (the CLI never reads it: its
    URLs hold tokens and passwords, and it stays on the worker)."""

    @workflow.run
    async def run(self, inp: NotifyTestInput) -> NoticeResult:
        subject, body = test_message(inp)
        notice = Notice(pair=inp.pair, audience=inp.tag, subject=subject, body=body)
        try:
            return await workflow.execute_activity_method(
                NotifyActivities.notify, notice, **DELIVERY
            )
        except ActivityError as e:
            return NoticeResult(delivered=False, error=f"not delivered: {describe_failure(e)}")
