"""`amsm report RUN|FILE.json [--format md|html] [-o FILE] [--json]`: the run report a
shift lead files after a run, from its workflow history alone: read from Temporal (RUN as
`amsm show` takes it), or from a file `amsm history export` wrote (no server needed).

Exit status: 0 ok, 1 failed (an unreadable history, Temporal unreachable), 2 bad usage
(no such file or run). Errors are one line: what, where.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from temporalio.client import Client

from api.report import report_of_file, report_of_run
from api.runs import one_line_errors
from client.runs import codec_of
from client.session import EXIT_OK, emit, write_output
from inventory.models import Inventory
from records.report import Report
from records.report_render import render_html, render_markdown


def add(sub: Any) -> None:
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
    s.set_defaults(
        handler=run, local=local, offline=lambda args: is_history_file(args.run), notice=False
    )


def is_history_file(run: str) -> bool:
    """RUN names an exported history: a *.json, or a path to an existing file."""
    return run.lower().endswith(".json") or ("/" in run and Path(run).is_file())


async def local(args: argparse.Namespace) -> int:
    """The report of an exported history file."""
    with one_line_errors(args.command):
        return show(args, await report_of_file(args.run, codec_of(args)))


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """The report of a run, its history read from Temporal."""
    report = await report_of_run(temporal, inv, args.run, codec_of(args), args.command)
    with one_line_errors(args.command):
        return show(args, report)


def show(args: argparse.Namespace, report: Report) -> int:
    fmt = args.format or (
        "html" if (args.output or "").lower().endswith((".html", ".htm")) else "md"
    )
    text = render_html(report) if fmt == "html" else render_markdown(report)
    if args.json:
        written = write_output(args.output, text) if args.output not in (None, "-") else None
        data = report.model_dump(mode="json")
        if written:
            data["output"] = written
        emit(args, data, "")
        return EXIT_OK
    written = write_output(args.output, text)
    if written:
        print(
            f"wrote {written}: {fmt} report of {report.workflow_type} run {report.run_id} "
            f"({report.state}; {len(report.errors)} error(s), {len(report.warnings)} warning(s))"
        )
    return EXIT_OK
