"""The readiness watch: its schedule (on or off, its interval) and its latest verdict,
the one line `amsm status` and the console show, and turning it on and off (`amsm
readiness`; the schedule is made and changed here only)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.readiness import Readiness, latest_verdict
from api.check import time_limit
from api.refusal import Refused
from inventory.models import Inventory, other, readiness_schedule_id
from inventory.status import PairStatus
from workflows.readiness import ReadinessInput, ReadinessWorkflow

# `amsm status` waits this long for the schedule, then says it could not read it.
READ_SECONDS = 5.0
# A verdict older than this many intervals is overdue: the checks stopped (no worker).
OVERDUE_INTERVALS = 2


class ReadinessView(BaseModel):
    """The watch: `on`, its interval, the last verdict (None before the first check ends),
    and `error` when the schedule could not be read (then nothing else is known)."""

    schedule_id: str
    on: bool = False
    paused: bool = False  # on, but paused from the Web UI or `temporal schedule toggle`
    interval: float | None = None
    task_queue: str | None = None
    run_limit: float | None = None  # a check's time limit, seconds
    last: Readiness | None = None
    next_check: datetime | None = None
    error: str | None = None

    def overdue(self, now: datetime) -> bool:
        if not (self.on and self.last and self.interval):
            return False
        late = timedelta(seconds=OVERDUE_INTERVALS * self.interval)
        return now - self.last.checked_at > late

    def to_json(self) -> dict[str, Any] | None:
        """The `readiness` object of `amsm status --json`: null when off."""
        if not self.on and self.error is None:
            return None
        r = self.last
        return {
            "ready": r.ready if r else None,
            "problems": r.problems if r else None,
            "checked_at": r.checked_at.isoformat() if r else None,
            "since": r.since.isoformat() if r else None,
            "interval": self.interval,
            "paused": self.paused,
            "error": self.error or (r.error if r else None),
        }


async def read_readiness(temporal: Client, inv: Inventory) -> ReadinessView:
    """The watch's schedule and its latest verdict (activities/readiness.py: one
    DescribeSchedule and, usually, one result), within READ_SECONDS; never raises:
    what went wrong is in `error`."""
    sid = readiness_schedule_id(inv.pair)
    try:
        desc, last = await asyncio.wait_for(latest_verdict(temporal, inv.pair), READ_SECONDS)
    except RPCError as e:
        return ReadinessView(schedule_id=sid, error=f"cannot read {sid}: {e.message}")
    except Exception as e:  # a timeout, a codec: say so, never fail `status`
        return ReadinessView(
            schedule_id=sid, error=f"cannot read {sid}: {str(e) or type(e).__name__}"
        )
    if desc is None:
        return ReadinessView(schedule_id=sid)
    view = ReadinessView(schedule_id=sid, on=True, last=last, paused=desc.schedule.state.paused)
    intervals = desc.schedule.spec.intervals
    if intervals:
        view.interval = intervals[0].every.total_seconds()
    action = desc.schedule.action
    if isinstance(action, ScheduleActionStartWorkflow):
        view.task_queue = action.task_queue
        if action.execution_timeout:
            view.run_limit = action.execution_timeout.total_seconds()
    if desc.info.next_action_times:
        view.next_check = desc.info.next_action_times[0]
    return view


# -- the line of `amsm status` ---------------------------------------------------------
def at(when: datetime, now: datetime) -> str:
    """04:00 today (UTC, as every time amsm shows), the date before it on another day."""
    when = when.astimezone(UTC)
    if when.date() == now.astimezone(UTC).date():
        return when.strftime("%H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def every(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def target_of(status: PairStatus | None) -> str | None:
    """The side a switch would go to now: the backup of a mirrored pair (none when split
    or inconsistent)."""
    if status is None:
        return None
    mode, main, _ = status.derived
    return other(main) if mode == "mirrored" and main else None


def readiness_line(view: ReadinessView, status: PairStatus | None, now: datetime) -> str:
    if view.error and view.last is None:
        return f"readiness: unknown: {view.error}"
    if not view.on:
        return "readiness: off"
    r = view.last
    if r is None:
        return (
            f"readiness: on (every {every(view.interval or 0)}), the first check has not ended yet"
        )
    if r.ready:
        to = target_of(status)
        line = f"readiness: ready{f' for a switch to {to}' if to else ''} (checked {at(r.checked_at, now)})"
    elif r.error:
        line = f"readiness: not ready: the check did not run ({r.error}), since {at(r.since, now)}"
    else:
        n = f"{r.problems} problem" + ("" if r.problems == 1 else "s")
        line = f"readiness: not ready: {n}, since {at(r.since, now)} (checked {at(r.checked_at, now)}; amsm check names them)"
    if view.paused:
        line += "; PAUSED: no check runs (amsm readiness on resumes it)"
    elif view.overdue(now):
        line += f"; OVERDUE: no check since, though it runs every {every(view.interval or 0)} (is the pair's worker running?)"
    return line


# -- turning it on and off --------------------------------------------------------
def run_limit(inv: Inventory) -> timedelta:
    """One check's time limit: the site check's own (as `amsm check` waits), and the
    verdict's reading and keeping."""
    return timedelta(seconds=time_limit(inv) + 120)


def schedule_of(inv: Inventory, operator: str, last: Readiness | None = None) -> Schedule:
    """The watch's schedule; `last`: the verdict of the schedule it replaces."""
    interval = timedelta(seconds=inv.timing.readiness_interval)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReadinessWorkflow.run,
            ReadinessInput(pair=inv.pair, last=last),
            id=readiness_schedule_id(inv.pair),
            task_queue=inv.queue,
            execution_timeout=run_limit(inv),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(
            # One check at a time; a check missed while the server was down runs once on
            # its return, not as a burst.
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=interval,
        ),
        state=ScheduleState(note=f"readiness watch of pair {inv.pair}, turned on by {operator}"),
    )


async def turn_on(temporal: Client, inv: Inventory, operator: str) -> str:
    """Make the schedule (the first check at once). A watch already on as the inventory
    says is left alone; one with another interval, queue or time limit, or paused, is
    made anew with the verdict it had carried in (`since` goes on) and checks at once.
    Never an update of the schedule: every change of a schedule is a signal to it, which
    the server's limit on signals in one run counts, and the checks' own ends use them up
    (docs/site/survey-check-readiness.md)."""
    sid = readiness_schedule_id(inv.pair)
    seconds = inv.timing.readiness_interval
    view = await read_readiness(temporal, inv)
    if view.error and not view.on:
        raise Refused(f"the readiness watch of pair {inv.pair}: {view.error}")
    was = ""
    if view.on:
        same = (
            view.interval == seconds
            and view.task_queue == inv.queue
            and view.run_limit == run_limit(inv).total_seconds()
        )
        if same and not view.paused:
            return f"readiness watch of pair {inv.pair} was on: a check every {every(seconds)}"
        await turn_off(temporal, inv)
        was = " (made anew: it was " + (
            "paused)" if same else f"every {every(view.interval or 0)}, on {view.task_queue})"
        )
    try:
        await temporal.create_schedule(
            sid, schedule_of(inv, operator, view.last), trigger_immediately=True
        )
    except ScheduleAlreadyRunningError:
        # Someone turned it on at the same moment.
        return f"readiness watch of pair {inv.pair} was on"
    except RPCError as e:
        raise Refused(
            f"the readiness watch of pair {inv.pair} could not start: {e.message}"
        ) from None
    return (
        f"readiness watch of pair {inv.pair} on: a check every {every(seconds)}, the first now{was}"
    )


async def turn_off(temporal: Client, inv: Inventory) -> str:
    sid = readiness_schedule_id(inv.pair)
    try:
        await temporal.get_schedule_handle(sid).delete()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return f"readiness watch of pair {inv.pair} was off"
        raise Refused(
            f"the readiness watch of pair {inv.pair} could not be turned off: {e.message}"
        ) from None
    return f"readiness watch of pair {inv.pair} off (schedule {sid} deleted)"


async def readiness(
    temporal: Client, inv: Inventory, verb: str, operator: str
) -> tuple[str, ReadinessView]:
    """`on`, `off` or `status` of the pair's readiness watch: what was done (a sentence,
    empty for `status`) and the watch as it is now. Only an operator turns it on or off."""
    if verb != "status" and not inv.may_act(operator):
        raise Refused(
            f"{operator} is not an operator of pair {inv.pair}: only an operator turns "
            "the readiness watch on or off (inventory `operators:`)"
        )
    if verb == "on":
        said = await turn_on(temporal, inv, operator)
    elif verb == "off":
        said = await turn_off(temporal, inv)
    else:
        said = ""
    view = await read_readiness(temporal, inv)
    if view.error and verb == "status":
        raise Refused(f"the readiness watch of pair {inv.pair}: {view.error}")
    return said, view
