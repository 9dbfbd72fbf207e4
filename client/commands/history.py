"""`amsm history export RUN [-o FILE.json|-] [--json]`: write a run's history as
`temporal workflow show --output json` does (what `amsm report FILE` and `amsm replay`
read)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.runs import fetch_history, one_line_errors
from client.session import EXIT_OK, EXIT_USAGE, CliError, emit, write_output
from inventory.models import Inventory


def add(sub: Any) -> None:
    s = sub.add_parser("history", help="workflow histories: export")
    s.set_defaults(local=choose)
    actions = s.add_subparsers(dest="history_command", metavar="ACTION")
    e = actions.add_parser(
        "export",
        help="write a run's history as `temporal workflow show --output json` does",
    )
    e.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'current')")
    e.add_argument(
        "-o",
        "--output",
        metavar="FILE.json",
        help="where to write it ('-' for stdout; default <workflow id>-<run id>.json)",
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(local=None, handler=export, notice=False)


async def choose(args: argparse.Namespace) -> int:
    raise CliError("amsm history: choose export (amsm history export RUN)", EXIT_USAGE)


async def export(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    with one_line_errors(args.command):
        history = await fetch_history(temporal, inv, args.run)
        run_id = history.run_id
        text = history.to_json()
        if not text.endswith("\n"):
            text += "\n"
        path = args.output or f"{history.workflow_id}-{run_id}.json"
        written = write_output(path, text)
        if written is None:
            return EXIT_OK
        started = history.events[0].workflow_execution_started_event_attributes
        info = {
            "file": written,
            "workflow_id": history.workflow_id,
            "run_id": run_id,
            "workflow_type": started.workflow_type.name,
            "events": len(history.events),
        }
        emit(
            args,
            info,
            f"exported run {run_id} ({info['workflow_type']}, {info['events']} events) to {written}",
        )
        return EXIT_OK
