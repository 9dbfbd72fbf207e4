"""`amsm status`: the pair like the manual's console, once or live (`--watch`)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text
from temporalio.client import Client

from client.fence import read_fence
from client.readiness import read_readiness, readiness_line
from client.render import render_fence, render_status
from client.runs import current_status
from client.session import EXIT_OK, CliError, emit
from inventory.models import Inventory
from inventory.status import PairStatus


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


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if args.watch:
        return await watch_status(client, inv, args)
    st, when = await current_status(client, inv, args)
    data, text = await status_view(client, inv, st, when)
    emit(args, data, text)
    return EXIT_OK


async def status_view(
    client: Client, inv: Inventory, st: PairStatus, when: str | None
) -> tuple[dict[str, Any], str]:
    """`amsm status` of a status read (`when`: the watch's reading, and when): its JSON
    object and its text, the waiting fence and the readiness verdict with them. The web
    console answers the same JSON (console/pairs.py)."""
    data, text = st.to_json(), render_status(st)
    if when:
        data["read"] = when
        text = f"{text}\n\n({when})"
    # A fence that still waits on a lost side is part of the pair's state (a side that
    # answers again goes to backup at once).
    try:
        view = await read_fence(client, inv.pair)
    except CliError:
        view = None
    waiting = view if view is not None and view.state.status == "waiting" else None
    data["fence"] = waiting.model_dump(mode="json") if waiting else None
    if waiting:
        text += "\n\n" + render_fence(waiting)
    # The readiness watch and its last verdict (DescribeSchedule and, usually, one result;
    # 5 s at most): never a failure of status.
    ready = await read_readiness(client, inv)
    data["readiness"] = ready.to_json()
    text += "\n\n" + readiness_line(ready, st, datetime.now(UTC))
    return data, text


async def watch_status(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    console = Console()

    async def shown() -> str:
        st, when = await current_status(client, inv, args)
        ready = await read_readiness(client, inv)
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
