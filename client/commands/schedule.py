"""`amsm schedule KIND ... --at TIME`: file a run for its maintenance window; `amsm schedule
list` and `amsm schedule cancel ID` (docs/operators/schedules.md)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from temporalio.client import Client

from api.schedule import cancel, file, scheduled
from client.commands.keys import acting, add_key_option
from client.commands.start import add_kind
from client.render import render_scheduled
from client.session import EXIT_OK, emit
from inventory.models import Inventory
from workflows.kinds import KINDS

# The start options a scheduled run does not take: an unplanned switch is started when a
# side is lost, never for a time, and `--reason` is the schedule's own.
NOT_SCHEDULED = ("unplanned", "reason")


def add(sub: Any) -> None:
    s = sub.add_parser(
        "schedule",
        help="file a run for a time (its maintenance window), list or cancel the filed ones",
    )
    what = s.add_subparsers(dest="scheduled", metavar="WORKFLOW|list|cancel")
    for kind in KINDS.values():
        k = add_kind(what, kind, NOT_SCHEDULED)
        k.add_argument(
            "--at",
            required=True,
            metavar="TIME",
            help="when: ISO 8601 with an offset (2027-03-28T21:30+01:00), or a local time in "
            "the inventory's `timezone` (2027-03-28 21:30)",
        )
        k.add_argument(
            "--window",
            metavar="DURATION",
            help="how long after TIME it may still start (30m, 1h; default: the inventory's "
            "`schedule.window`); past it the run is dropped, never run late",
        )
        k.add_argument("--reason", help="why (shown with the scheduled run)")
        k.add_argument(
            "--operator", default=None, help="who files it (default: AMSM_OPERATOR, the login)"
        )
        add_key_option(k)
        k.add_argument("--json", action="store_true")
        k.set_defaults(handler=run_file, kind=kind.name)
    ls = what.add_parser("list", help="the pair's scheduled runs that still wait")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list, reads=True)
    c = what.add_parser("cancel", help="cancel a scheduled run before it starts")
    c.add_argument("id", metavar="ID", help="the scheduled run's id (`amsm schedule list`)")
    c.add_argument("--reason", required=True, help="why (kept with the scheduled run)")
    c.add_argument(
        "--operator", default=None, help="who cancels it (default: AMSM_OPERATOR, the login)"
    )
    add_key_option(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=run_cancel)


async def run_file(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    # With a key (--key, AMSM_KEY) the filing is signed and made as the key's operator.
    args.operator, key = acting(args, inv)
    row = KINDS[args.kind]
    options = {
        o.name: getattr(args, o.name, o.default) for o in row.options if o.name not in NOT_SCHEDULED
    }
    filed = await file(
        temporal,
        inv,
        args.kind,
        getattr(args, row.side),
        args.operator,
        options,
        args.at,
        args.window,
        args.reason,
        key=key,
    )
    st = filed.state
    local = st.at.astimezone(inv.zone)
    lead = st.at - timedelta(seconds=inv.schedule.lead)
    emit(
        args,
        {"schedule_id": filed.schedule_id, **st.model_dump(mode="json", exclude={"told"})},
        f"scheduled {st.what} on pair {inv.pair} at {local:%Y-%m-%d %H:%M %Z} "
        f"({st.at:%H:%M} UTC), window until {st.window_end.astimezone(inv.zone):%H:%M %Z}\n"
        f"id: {filed.schedule_id}\n"
        + (f"filed by {st.initiator} ({st.proof})\n" if st.proof else "")
        + (
            ""
            if st.checked
            else "no worker has taken it yet: who filed it is checked when one does\n"
        )
        + f"the dry run and the site check run at {lead.astimezone(inv.zone):%Y-%m-%d %H:%M %Z}\n"
        f"see it: amsm schedule list; cancel it: amsm schedule cancel {filed.schedule_id} "
        "--reason TEXT",
    )
    return EXIT_OK


async def run_list(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    found = await scheduled(temporal, inv)
    emit(
        args,
        {"pair": inv.pair, "scheduled": [s.model_dump(mode="json") for s in found]},
        render_scheduled(found, inv.zone) or f"no scheduled runs on pair {inv.pair}",
    )
    return EXIT_OK


async def run_cancel(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    args.operator, key = acting(args, inv)
    st = await cancel(temporal, inv, args.id, args.operator, args.reason, key=key)
    emit(
        args,
        st.model_dump(mode="json"),
        f"cancelled scheduled run {st.schedule_id} ({st.what} at "
        f"{st.at.astimezone(inv.zone):%Y-%m-%d %H:%M %Z}) by {st.cancelled_by}"
        + (f" ({st.cancelled_proof})" if st.cancelled_proof else "")
        + f": {st.why}",
    )
    return EXIT_OK
