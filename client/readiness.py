"""The readiness watch as the CLI sees it: its schedule (on or off, its interval) and its
latest verdict, and the one line `amsm status` shows. The schedule is made and changed by
`amsm readiness` (commands/readiness.py) only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError

from activities.readiness import Readiness, latest_verdict
from inventory.models import Inventory, other, readiness_schedule_id
from inventory.status import PairStatus

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


async def read_readiness(client: Client, inv: Inventory) -> ReadinessView:
    """The watch's schedule and its latest verdict (activities/readiness.py: one
    DescribeSchedule and, usually, one result), within READ_SECONDS; never raises:
    what went wrong is in `error`."""
    sid = readiness_schedule_id(inv.pair)
    try:
        desc, last = await asyncio.wait_for(latest_verdict(client, inv.pair), READ_SECONDS)
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
