"""`amsm show RUN`: a run's checklist (and its fence, after an unplanned switch)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from client.fence import read_fence
from client.render import render_fence
from client.runs import fetch_checklist, resolve_run
from client.session import EXIT_OK, emit
from inventory.models import Inventory
from workflows.view import render_text


def add(sub: Any) -> None:
    s = sub.add_parser("show", help="show a run's checklist")
    s.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'current')")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run, reads=True, notice=False)


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    data, text = await show_data(client, inv, args.run)
    emit(args, data, text)
    return EXIT_OK


async def show_data(client: Client, inv: Inventory, run: str) -> tuple[dict[str, Any], str]:
    """RUN's `show --json` object and its text (the web console answers the same)."""
    c = await fetch_checklist(await resolve_run(client, inv, run))
    data, text = c.model_dump(mode="json"), render_text(c)
    if c.fence is not None:
        view = await read_fence(client, inv.pair, c.fence)
        data["fence_state"] = view.model_dump(mode="json") if view else None
        text += "\n\n" + (render_fence(view) if view else f"fence {c.fence.workflow_id}: not found")
    return data, text
