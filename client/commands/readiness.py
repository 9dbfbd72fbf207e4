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
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from api.readiness import ReadinessView, at, every, readiness
from client.session import EXIT_OK, default_operator, emit
from inventory.models import Inventory

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


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    said, view = await readiness(temporal, inv, args.verb, args.operator)
    data = {**view.model_dump(mode="json"), "readiness": view.to_json()}
    text = render(inv, view, datetime.now(UTC))
    emit(args, data, f"{said}\n{text}" if said else text)
    return EXIT_OK


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
        if r.next_blackout:
            lines.append(f"  at that check: {r.next_blackout}")
        for n in r.named:
            lines.append(f"    {n}")
        if r.problems > len(r.named) and not r.error:
            lines.append(f"    ... {r.problems - len(r.named)} more: amsm check lists them")
        if view.overdue(now) and not view.paused:
            lines.append("  OVERDUE: no check for two intervals; is the pair's worker running?")
    if view.next_check:
        lines.append(f"  next check {at(view.next_check, now)}")
    return "\n".join(lines)
