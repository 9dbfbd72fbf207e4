"""`amsm show RUN`: a run's checklist (and its fence, after an unplanned switch)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.show import show
from client.render import render_run
from client.session import EXIT_OK, emit
from inventory.models import Inventory


def add(sub: Any) -> None:
    s = sub.add_parser("show", help="show a run's checklist")
    s.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'current')")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run, reads=True, notice=False)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    view = await show(temporal, inv, args.run)
    emit(args, view.to_json(), render_run(view))
    return EXIT_OK
