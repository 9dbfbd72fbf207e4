"""`amsm readiness on|off|status [--json]`: the readiness watch, a Temporal Schedule that
runs the site check every `timing.readiness_interval` seconds (workflows/readiness.py)
and keeps its last verdict for `amsm status` and the worker's metrics.

`on` makes the schedule and runs the first check at once; on a watch already on with
another interval it makes the schedule anew, carrying its verdict on (`since` stays),
and leaves it alone otherwise.
`off` deletes the schedule (a check under way ends on its own). `status` says which, the
interval and the last verdict."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

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

from activities.readiness import Readiness
from client.commands.check import time_limit
from client.readiness import ReadinessView, at, every, read_readiness
from client.session import EXIT_OK, CliError, default_operator, emit
from inventory.models import Inventory, readiness_schedule_id
from workflows.readiness import ReadinessInput, ReadinessWorkflow

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


async def turn_on(client: Client, inv: Inventory, operator: str) -> str:
    """Make the schedule (the first check at once). A watch already on as the inventory
    says is left alone; one with another interval, queue or time limit, or paused, is
    made anew with the verdict it had carried in (`since` goes on) and checks at once.
    Never an update of the schedule: every change of a schedule is a signal to it, which
    the server's limit on signals in one run counts, and the checks' own ends use them up
    (README, 'The readiness watch')."""
    sid = readiness_schedule_id(inv.pair)
    seconds = inv.timing.readiness_interval
    view = await read_readiness(client, inv)
    if view.error and not view.on:
        raise CliError(f"the readiness watch of pair {inv.pair}: {view.error}")
    was = ""
    if view.on:
        same = (
            view.interval == seconds
            and view.task_queue == inv.queue
            and view.run_limit == run_limit(inv).total_seconds()
        )
        if same and not view.paused:
            return f"readiness watch of pair {inv.pair} was on: a check every {every(seconds)}"
        await turn_off(client, inv)
        was = " (made anew: it was " + (
            "paused)" if same else f"every {every(view.interval or 0)}, on {view.task_queue})"
        )
    try:
        await client.create_schedule(
            sid, schedule_of(inv, operator, view.last), trigger_immediately=True
        )
    except ScheduleAlreadyRunningError:
        # Someone turned it on at the same moment.
        return f"readiness watch of pair {inv.pair} was on"
    except RPCError as e:
        raise CliError(
            f"the readiness watch of pair {inv.pair} could not start: {e.message}"
        ) from None
    return (
        f"readiness watch of pair {inv.pair} on: a check every {every(seconds)}, the first now{was}"
    )


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
        + ("; PAUSED: no check runs (amsm readiness on resumes it)" if view.paused else "")
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
        if view.overdue(now) and not view.paused:
            lines.append("  OVERDUE: no check for two intervals; is the pair's worker running?")
    if view.next_check:
        lines.append(f"  next check {at(view.next_check, now)}")
    return "\n".join(lines)
