"""The arguments of `report`, `history export` and `replay`: light, so that every other
command starts without loading the history and report modules (client.history_cli)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HISTORY_COMMANDS = ("report", "history", "replay")


# -- the parser -----------------------------------------------------------------------------
def add_history_commands(sub: Any) -> None:
    """Add `report`, `history export` and `replay` to the main parser's subparsers."""
    s = sub.add_parser(
        "report",
        help="the run report: steps, clients, decisions, errors, from the run's history",
        description="Build the report a shift lead files after a run, from the workflow "
        "history alone. RUN is a run id, a unique prefix, 'current', or a history file "
        "exported with `amsm history export` (then no server is needed).",
    )
    s.add_argument("run", metavar="RUN|FILE.json")
    s.add_argument(
        "--format",
        choices=["md", "html"],
        default=None,
        help="markdown or one self-contained HTML file (default: from -o's suffix, else md)",
    )
    s.add_argument("-o", "--output", metavar="FILE", help="write the report here (default stdout)")
    s.add_argument("--json", action="store_true", help="print the report's data as JSON")

    s = sub.add_parser("history", help="workflow histories: export")
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

    s = sub.add_parser(
        "replay",
        help="replay histories against the current workflow code (no server needed)",
        description="Replay each history (FILE, or every *.json in DIR) against the current "
        "workflow code with the worker's data converter. Exit 0 when all replay; otherwise "
        "each failing file is named with the event and the mismatch.",
    )
    s.add_argument("paths", nargs="+", metavar="FILE|DIR")
    s.add_argument(
        "--timeline",
        action="store_true",
        help="print the run's step timeline from the history instead of replaying it",
    )
    s.add_argument("--json", action="store_true")


def needs_server(args: argparse.Namespace) -> bool:
    """Whether the command must reach Temporal (report of a file and replay do not)."""
    if args.command == "replay":
        return False
    if args.command == "report":
        return not is_history_file(args.run)
    return getattr(args, "history_command", None) is not None


def is_history_file(run: str) -> bool:
    """RUN names an exported history: a *.json, or a path to an existing file."""
    return run.lower().endswith(".json") or ("/" in run and Path(run).is_file())


# -- dispatch -------------------------------------------------------------------------------
