"""`amsm watch RUN`: follow a run's checklist live in the terminal (rich), each switching
client's stage asked of its child workflow."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from api.runs import fetch_checklist, resolve_run
from api.show import client_stages
from inventory.models import Inventory
from workflows.models import Checklist, StepState
from workflows.view import STATUS_MARK, next_action, waited

STYLE = {
    "done": "green",
    "running": "yellow",
    "failed": "bold red",
    "awaiting-confirmation": "bold cyan",
    "awaiting-approval": "bold magenta",
    "skipped": "dim",
    "pending": "dim",
}


def add(sub: Any) -> None:
    s = sub.add_parser("watch", help="follow a run's checklist live")
    s.add_argument("run", metavar="RUN", nargs="?", default="current")
    s.add_argument(
        "--follow", action="store_true", help="keep going when the run waits for the operator"
    )
    s.add_argument("--interval", type=float, default=1.0)
    s.set_defaults(handler=run, reads=True, notice=False)


def _elapsed(s: StepState, now: str) -> str:
    if not s.started_at:
        return ""
    return waited(s.started_at, s.ended_at or now)


def render_watch(c: Checklist, stages: dict[str, str]) -> Group:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    head = Text(f"{c.title}   run {c.run_id}\n", style="bold")
    head.append(f"state: {c.state}   initiator: {c.initiator}   started {c.started_at}")
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for col in ("", "#", "step", "kind", "status", "time", "by / note"):
        table.add_column(col)
    for n, s in enumerate(c.steps, 1):
        status: str = s.status
        if s.clients:
            done = sum(1 for x in s.clients if x.status == "done")
            status += f" ({done}/{len(s.clients)} done, {s.pending_clients} pending)"
        note = " ".join(x for x in (s.operator or "", s.note or s.error or "") if x)
        table.add_row(
            STATUS_MARK[s.status], str(n), s.id, s.kind,
            Text(status, style=STYLE.get(s.status, "")), _elapsed(s, now), note,
        )  # fmt: skip
    parts: list[object] = [head, table]
    for s in c.steps:
        if not s.clients or s.status == "pending":
            continue
        ct = Table(title=f"{s.id}: clients", box=None, header_style="bold", title_justify="left")
        for col in ("client", "stage", "time", "error"):
            ct.add_column(col)
        for x in s.clients:
            stage = stages.get(x.host, x.status) if x.status == "switching" else x.status
            took = f"{x.seconds:.1f} s" if x.seconds is not None else ""
            ct.add_row(x.host, Text(stage, style=STYLE.get(x.status, "")), took, x.error or "")
        parts.append(ct)
    action = next_action(c)
    if action and c.state in ("running", "awaiting-operator"):
        parts.append(Text(f"\nWaiting for you. Next: {action}", style="bold cyan"))
    return Group(*parts)  # type: ignore[arg-type]


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    handle = await resolve_run(temporal, inv, args.run)
    console = Console()
    c = await fetch_checklist(handle)
    with Live(render_watch(c, {}), console=console, refresh_per_second=4) as live:
        while True:
            c = await fetch_checklist(handle)
            live.update(render_watch(c, await client_stages(temporal, c)))
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
