"""`amsm watch RUN`: follow a run live in the terminal: each frame is the run as `amsm show`
prints it (client/render.py render_run), each switching client's stage asked of its child
workflow and shown under its step; rich draws the frame again in place."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text
from temporalio.client import Client

from api.runs import resolve_run
from api.show import RunView, client_stages, view_of
from client.render import render_run
from inventory.models import Inventory
from workflows.view import next_action


def add(sub: Any) -> None:
    s = sub.add_parser("watch", help="follow a run's checklist live")
    s.add_argument("run", metavar="RUN", nargs="?", default="current")
    s.add_argument(
        "--follow", action="store_true", help="keep going when the run waits for the operator"
    )
    s.add_argument("--interval", type=float, default=1.0)
    s.set_defaults(handler=run, reads=True, notice=False)


def frame(view: RunView, stages: dict[str, str]) -> Text:
    """One frame of `amsm watch`: the run as `amsm show` prints it, with the stages."""
    return Text(render_run(view, stages))


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    handle = await resolve_run(temporal, inv, args.run)
    console = Console()
    view = await view_of(temporal, inv, handle)
    with Live(frame(view, {}), console=console, refresh_per_second=4) as live:
        while True:
            view = await view_of(temporal, inv, handle)
            c = view.checklist
            live.update(frame(view, await client_stages(temporal, c)))
            if c.state not in ("running", "awaiting-operator"):
                break
            if c.state == "awaiting-operator" and not args.follow:
                break
            await asyncio.sleep(args.interval)
    if c.state == "awaiting-operator":
        console.print(f"The run waits for you: {next_action(c)}", soft_wrap=True)
        return 0
    console.print(f"The run ended: {c.state}. {c.message or ''}", soft_wrap=True)
    return 0 if c.state == "completed" else 1
