"""`amsm report`, `amsm history export` and `amsm replay`: what happened in a run, from its
workflow history.

    amsm report RUN|FILE.json [--format md|html] [-o FILE] [--json]
    amsm history export RUN [-o FILE.json|-] [--json]
    amsm replay FILE|DIR ... [--json]
    amsm replay --timeline FILE ... [--json]

`report` and `history export` read the history from Temporal (RUN as `amsm show` takes
it); `report FILE.json` and `replay` need no server. The main parser gets these
commands from `add_history_commands`, and both the server path
(`client.commands.run_command`) and the local path (`client.cli.dispatch`, when
`needs_server(args)` is false) call `run_history_command`.

Exit status: 0 ok, 1 failed (a replay mismatch, an unreadable history, Temporal
unreachable), 2 bad usage (no such file or run). Errors are one line: what, where.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from client.runs import resolve_run
from client.session import CliError
from records.history import (
    HistoryError,
    load_history_file,
    parse_history,
    readable,
)
from records.replay import expand_paths, replay_paths
from records.report import Report, build_report, render_html, render_markdown, render_timeline

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2  # as client.cli


from client.history_args import (  # noqa: E402,F401 - the parser lives there, light
    HISTORY_COMMANDS,
    add_history_commands,
    is_history_file,
    needs_server,
)


async def run_history_command(client: Any, inv: Any, args: argparse.Namespace) -> int:
    """Run `report`, `history export` or `replay`. `client` (a temporalio Client) and `inv`
    (the Inventory) may be None for the commands that need no server."""
    from temporalio.service import RPCError

    try:
        if args.command == "replay":
            if args.timeline:
                return await timeline_command(args)
            return await replay_command(args)
        if args.command == "report":
            return await report_command(client, inv, args)
        if args.command == "history":
            if getattr(args, "history_command", None) != "export":
                raise CliError("amsm history: choose export (amsm history export RUN)", EXIT_USAGE)
            return await export_command(client, inv, args)
    except HistoryError as e:
        raise CliError(str(e), e.code) from None
    except CliError:
        raise
    except RPCError as e:
        raise CliError(f"amsm {args.command}: Temporal refused: {e.message}") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # never a traceback: say what broke, in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise CliError(f"amsm {args.command}: {type(e).__name__}: {first}".rstrip(": ")) from None
    raise CliError(f"unknown command {args.command}", EXIT_USAGE)


def _need_server(client: Any, inv: Any, what: str) -> None:

    if client is None or inv is None:
        raise CliError(f"{what} reads the run from Temporal: it needs the server and the inventory")


def codec_of(args: argparse.Namespace) -> Any:
    """The worker's payload codec (--codec-key-file, AMSM_CODEC_KEY_FILE, AMSM_CODEC_KEY), or
    None when payloads are not encrypted."""
    from wire.codec import CodecConfigError, load_codec

    try:
        return load_codec(getattr(args, "codec_key_file", None))
    except CodecConfigError as e:
        raise HistoryError(str(e)) from None


def emit_json(data: Any) -> None:
    print(json.dumps(data, default=str))


def write_output(path: str | None, text: str) -> str | None:
    """Write `text` to `path` ('-' or None: stdout). Returns the path written, if any."""
    if path in (None, "-"):
        sys.stdout.write(text)
        return None
    assert path is not None
    p = Path(path)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as e:
        raise HistoryError(f"{p}: cannot write it ({e.strerror or e})", code=EXIT_FAIL) from None
    return str(p)


# -- fetching a run's history from Temporal ---------------------------------------------------
async def fetch_history(client: Any, inv: Any, run: str) -> WorkflowHistory:
    from temporalio.service import RPCError

    handle = await resolve_run(client, inv, run, controls=True)
    try:
        history = await handle.fetch_history()
    except RPCError as e:
        what = f"run {handle.run_id}" if handle.run_id else f"workflow {handle.id}"
        raise CliError(f"no such run: {what} ({e.message})", EXIT_USAGE) from None
    if not history.events:
        raise CliError(f"run {run}: the server returned no events", EXIT_FAIL)
    return history


# -- report ---------------------------------------------------------------------------------
async def report_of_file(path: str, codec: Any = None) -> Report:
    history = await readable(load_history_file(path), codec, path)
    return build_report(parse_history(history, Path(path).name))


async def report_command(client: Any, inv: Any, args: argparse.Namespace) -> int:
    codec = codec_of(args)
    if is_history_file(args.run):
        report = await report_of_file(args.run, codec)
    else:
        _need_server(client, inv, "amsm report RUN")
        history = await fetch_history(client, inv, args.run)
        where = f"run {history.run_id} of workflow {history.workflow_id}"
        history = await readable(history, codec, where)
        report = build_report(parse_history(history, f"workflow {history.workflow_id}"))
    fmt = args.format or (
        "html" if (args.output or "").lower().endswith((".html", ".htm")) else "md"
    )
    text = render_html(report) if fmt == "html" else render_markdown(report)
    if args.json:
        written = write_output(args.output, text) if args.output not in (None, "-") else None
        data = report.model_dump(mode="json")
        if written:
            data["output"] = written
        emit_json(data)
        return EXIT_OK
    written = write_output(args.output, text)
    if written:
        print(
            f"wrote {written}: {fmt} report of {report.workflow_type} run {report.run_id} "
            f"({report.state}; {len(report.errors)} error(s), {len(report.warnings)} warning(s))"
        )
    return EXIT_OK


# -- history export -------------------------------------------------------------------------
async def export_command(client: Any, inv: Any, args: argparse.Namespace) -> int:
    _need_server(client, inv, "amsm history export")
    history = await fetch_history(client, inv, args.run)
    run_id = history.run_id
    text = history.to_json()
    if not text.endswith("\n"):
        text += "\n"
    path = args.output or f"{history.workflow_id}-{run_id}.json"
    written = write_output(path, text)
    if written is None:
        return EXIT_OK
    info = {
        "file": written,
        "workflow_id": history.workflow_id,
        "run_id": run_id,
        "workflow_type": history.events[
            0
        ].workflow_execution_started_event_attributes.workflow_type.name,
        "events": len(history.events),
    }
    if args.json:
        emit_json(info)
    else:
        print(
            f"exported run {run_id} ({info['workflow_type']}, {info['events']} events) to {written}"
        )
    return EXIT_OK


async def replay_command(args: argparse.Namespace) -> int:
    files = expand_paths(args.paths)
    outcomes = await replay_paths(files, codec=codec_of(args))
    if args.json:
        emit_json(
            {
                "ok": all(o.ok for o in outcomes),
                "histories": [o.model_dump(mode="json") for o in outcomes],
            }
        )
    else:
        for o in outcomes:
            print(o.line)
        bad = sum(not o.ok for o in outcomes)
        if len(outcomes) > 1:
            print(
                f"{len(outcomes) - bad} of {len(outcomes)} histories replay"
                + (f"; {bad} do not" if bad else "")
            )
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAIL


# -- timeline -------------------------------------------------------------------------------
async def timeline_command(args: argparse.Namespace) -> int:
    files = expand_paths(args.paths)
    codec = codec_of(args)
    reports = [await report_of_file(str(p), codec) for p in files]
    if args.json:
        data = [r.model_dump(mode="json") for r in reports]
        emit_json(data[0] if len(data) == 1 else data)
        return EXIT_OK
    print("\n".join(render_timeline(r) for r in reports), end="")
    return EXIT_OK
