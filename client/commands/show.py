"""`amsm show RUN`: a run's checklist (and its fence, after an unplanned switch)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.show import RunView, show
from client.render import render_fence
from client.session import EXIT_OK, emit
from inventory.models import Inventory
from workflows.view import render_text


def add(sub: Any) -> None:
    s = sub.add_parser("show", help="show a run's checklist")
    s.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'current')")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run, reads=True, notice=False)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    view = await show(temporal, inv, args.run)
    emit(args, view.to_json(), render_run(view))
    return EXIT_OK


def render_run(view: RunView) -> str:
    """A run's checklist as text, and its fence's."""
    text = render_text(view.checklist)
    fence = view.checklist.fence
    if fence is not None:
        shown = view.fence_state
        text += "\n\n" + (render_fence(shown) if shown else f"fence {fence.workflow_id}: not found")
    return text
