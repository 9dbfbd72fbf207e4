"""`amsm status`: the pair like the manual's console, once or live (`--watch`)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.live import Live
from rich.text import Text
from temporalio.client import Client

from api.readiness import read_readiness, readiness_line
from api.status import StatusView, pair_status, status
from client.render import render_fence, render_scheduled, render_squatters, render_status
from client.session import EXIT_OK, default_operator, emit
from inventory.models import Inventory


def add(sub: Any) -> None:
    s = sub.add_parser("status", help="show the pair like the manual's console")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    s.add_argument("--interval", type=float, default=5.0, help="seconds between reads (--watch)")
    s.add_argument(
        "--cached",
        action="store_true",
        help="what the pair's watch last read (a query; what viewers always get)",
    )
    s.set_defaults(handler=run, reads=True)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if args.watch:
        return await watch_status(temporal, inv, args)
    view = await status(temporal, inv, default_operator(), args.cached)
    emit(args, view.to_json(), render_view(view, inv.zone))
    return EXIT_OK


def render_view(view: StatusView, zone: ZoneInfo) -> str:
    """`amsm status` as text: the pair, when it was read, the waiting fence (and the
    squatters that pretend to be one), the
    readiness line, the scheduled runs (their times in the facility's `zone`)."""
    text = render_status(view.status)
    if view.when:
        text = f"{text}\n\n({view.when})"
    if view.fence:
        text += "\n\n" + render_fence(view.fence)
    elif view.fence_error:
        text += (
            f"\n\nfence: cannot be read ({view.fence_error}); "
            "no start may make a side main until it is (amsm fence)"
        )
    if view.squatters:
        text += "\n\n" + render_squatters(view.squatters)
    text += "\n\n" + readiness_line(view.readiness, view.status, datetime.now(UTC))
    filed = render_scheduled(view.scheduled, zone)
    return text + ("\n\n" + filed if filed else "")


async def watch_status(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    console = Console()

    async def shown() -> str:
        st, when = await pair_status(temporal, inv, default_operator(), args.cached)
        ready = await read_readiness(temporal, inv)
        return (
            render_status(st)
            + (f"\n\n({when})" if when else "")
            + "\n\n"
            + readiness_line(ready, st, datetime.now(UTC))
        )

    with Live(Text(await shown()), console=console, refresh_per_second=1) as live:
        while True:
            await asyncio.sleep(args.interval)
            live.update(Text(await shown()))
