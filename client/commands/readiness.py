"""`amsm readiness on|off|status [--json]`: the readiness watch, a Temporal Schedule that
runs the site check every `timing.readiness_interval` seconds (workflows/readiness.py)
and keeps its last verdict for `amsm status` and the worker's metrics.

`on` makes the schedule and runs the first check at once; on a watch already on it sets
the interval from the inventory again when it differs (the verdicts stay, so does
`since`), and sends nothing when it does not: every change of a schedule is a signal to
it, which the server's limit on signals counts (workflows/server.py).
`off` deletes the schedule (a check under way ends on its own). `status` says which, the
interval and the last verdict."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from temporalio.api.schedule.v1 import Schedule as ScheduleProto
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

from activities.readiness import ReadinessInput
from client.commands.check import time_limit
from client.readiness import ReadinessView, at, every, read_readiness
from client.runs import cause
from client.session import EXIT_OK, CliError, default_operator, emit
from inventory.models import Inventory, readiness_schedule_id
from wire.schedules import ScheduleGone, change_schedule
from workflows.readiness import ReadinessWorkflow
from workflows.server import MAX_SIGNALS

VERBS = ("on", "off", "status")


def add(sub: Any) -> None:
    s = sub.add_parser(
        "readiness",
        help="the readiness watch: the site check on a schedule (on, off, status)",
        description="on: run `amsm check` every timing.readiness_interval seconds (the "
        "first at once) and keep its verdict for `amsm status` and the worker's metrics; "
        "off: stop it; status: on or off, the interval, the last verdict.",
    )
    s.add_argument("verb", choices=VERBS, metavar="on|off|status")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--operator", default=default_operator(), help="who turns it on or off")
    s.set_defaults(handler=run, reads=True)


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if args.verb != "status" and not inv.may_act(args.operator):
        raise CliError(
            f"{args.operator} is not an operator of pair {inv.pair}: only an operator turns "
            "the readiness watch on or off (inventory `operators:`)"
        )
    if args.verb == "on":
        said = await turn_on(client, inv, args.operator)
    elif args.verb == "off":
        said = await turn_off(client, inv)
    else:
        said = ""
    view = await read_readiness(client, inv)
    if view.error and args.verb == "status":
        raise CliError(f"the readiness watch of pair {inv.pair}: {view.error}")
    data = {**view.model_dump(mode="json"), "readiness": view.to_json()}
    text = render(inv, view, datetime.now(UTC))
    emit(args, data, f"{said}\n{text}" if said else text)
    return EXIT_OK


def run_limit(inv: Inventory) -> timedelta:
    """One check's time limit: the site check's own (as `amsm check` waits), and the
    verdict's reading and keeping."""
    return timedelta(seconds=time_limit(inv) + 120)


def schedule_of(inv: Inventory, operator: str) -> Schedule:
    interval = timedelta(seconds=inv.timing.readiness_interval)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReadinessWorkflow.run,
            ReadinessInput(pair=inv.pair),
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


async def turn_on(client: Client, inv: Inventory, operator: str) -> str:
    sid = readiness_schedule_id(inv.pair)
    seconds = inv.timing.readiness_interval
    try:
        await client.create_schedule(sid, schedule_of(inv, operator), trigger_immediately=True)
        return (
            f"readiness watch of pair {inv.pair} on: a check every {every(seconds)}, the first now"
        )
    except ScheduleAlreadyRunningError:
        pass
    except RPCError as e:
        raise CliError(
            f"the readiness watch of pair {inv.pair} could not start: {e.message}"
        ) from None

    def duration(t: timedelta) -> Duration:
        d = Duration()
        d.FromTimedelta(t)
        return d

    def retime(s: ScheduleProto) -> None:
        # Only what the inventory says (the interval, the queue, the time limit): the
        # verdict in the action's input stays, so `since` goes on.
        del s.spec.interval[:]
        s.spec.interval.add().interval.CopyFrom(duration(timedelta(seconds=seconds)))
        start = s.action.start_workflow
        start.task_queue.name = inv.queue
        start.workflow_execution_timeout.CopyFrom(duration(run_limit(inv)))
        s.policies.catchup_window.CopyFrom(duration(timedelta(seconds=seconds)))

    try:
        changed = await change_schedule(client, sid, retime)
    except ScheduleGone:
        # Turned off between the two calls: make it again.
        return await turn_on(client, inv, operator)
    except (RPCError, RuntimeError) as e:
        why = cause(e)
        if "limit for signal events" in why:
            # The server's limit on signals in one run (workflows/server.py) counts every
            # change of a schedule until its scheduler continues as new.
            why += (
                f" (the server takes {MAX_SIGNALS} changes of a schedule at a time; "
                "`amsm readiness off` then `on` makes it anew, with the new interval, "
                "and `since` starts again: README, 'The readiness watch')"
            )
        raise CliError(
            f"the readiness watch of pair {inv.pair} could not be changed: {why}"
        ) from None
    how = "now" if changed else "as it was"
    return f"readiness watch of pair {inv.pair} was on: a check every {every(seconds)} {how}"


async def turn_off(client: Client, inv: Inventory) -> str:
    sid = readiness_schedule_id(inv.pair)
    try:
        await client.get_schedule_handle(sid).delete()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return f"readiness watch of pair {inv.pair} was off"
        raise CliError(
            f"the readiness watch of pair {inv.pair} could not be turned off: {e.message}"
        ) from None
    return f"readiness watch of pair {inv.pair} off (schedule {sid} deleted)"


def render(inv: Inventory, view: ReadinessView, now: datetime) -> str:
    if view.error and view.last is None:
        return f"readiness watch of pair {inv.pair}: unknown: {view.error}"
    if not view.on:
        return f"readiness watch of pair {inv.pair}: off (amsm readiness on)"
    lines = [
        f"readiness watch of pair {inv.pair}: on, every {every(view.interval or 0)} "
        f"(schedule {view.schedule_id})"
    ]
    r = view.last
    if r is None:
        lines.append("  the first check has not ended yet")
    else:
        state = (
            "ready"
            if r.ready
            else f"not ready: {r.problems} problem" + ("" if r.problems == 1 else "s")
        )
        lines.append(
            f"  last check {at(r.checked_at, now)}: {state} ({r.hosts} hosts read, "
            f"{r.warnings} warnings), since {at(r.since, now)}"
        )
        if r.error:
            lines.append(f"  the check did not run: {r.error}")
        for n in r.named:
            lines.append(f"    {n}")
        if r.problems > len(r.named) and not r.error:
            lines.append(f"    ... {r.problems - len(r.named)} more: amsm check lists them")
        if view.overdue(now):
            lines.append("  OVERDUE: no check for two intervals; is the pair's worker running?")
    if view.next_check:
        lines.append(f"  next check {at(view.next_check, now)}")
    return "\n".join(lines)
