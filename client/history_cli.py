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
import contextlib
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from client.history import (
    HistoryError,
    encryption_keys,
    event_type_name,
    load_history_file,
    parse_history,
    readable,
)
from client.report import Report, build_report, render_html, render_markdown, render_timeline
from client.runs import resolve_run
from client.session import CliError

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
    from workers.codec import CodecConfigError, load_codec

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


# -- replay --------------------------------------------------------------------------------
class ReplayOutcome(BaseModel):
    file: str
    ok: bool
    workflow_type: str = ""
    run_id: str = ""
    events: int = 0
    event_id: int | None = None
    event_type: str | None = None
    mismatch: str | None = None

    @property
    def line(self) -> str:
        if self.ok:
            return f"{self.file}: ok ({self.workflow_type}, {self.events} events)"
        if self.event_id is not None:
            return f"{self.file}: event {self.event_id} ({self.event_type}): {self.mismatch}"
        return f"{self.file}: {self.mismatch}"


def expand_paths(paths: Sequence[str]) -> list[Path]:
    """FILEs as given, DIRs as their *.json files (sorted); unknown paths are usage errors."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(x for x in p.glob("*.json") if x.is_file())
            if not found:
                raise HistoryError(f"{p}: no *.json histories in this directory")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise HistoryError(f"{p}: no such file or directory")
    return out


_QUIET_RUNTIME: Any = None


def quiet_runtime() -> Any:
    """A Temporal runtime that does not log the replay's failing workflow tasks to stderr."""
    global _QUIET_RUNTIME
    if _QUIET_RUNTIME is None:
        from temporalio.runtime import Runtime, TelemetryConfig

        _QUIET_RUNTIME = Runtime(telemetry=TelemetryConfig(logging=None, metrics=None))
    return _QUIET_RUNTIME


@contextlib.contextmanager
def quiet_sdk_logs() -> Iterator[None]:
    """The SDK logs a traceback for each failed activation; the replay reports it instead."""
    log = logging.getLogger("temporalio")
    before = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(before)


def make_replayer(workflows: Sequence[type] | None = None, codec: Any = None) -> Any:
    """A replayer with the worker's workflows and data converter (pydantic, and the payload
    codec when payloads are encrypted)."""
    from temporalio.worker import Replayer

    from workers.codec import data_converter

    if workflows is None:
        from workers.worker import WORKFLOWS

        workflows = WORKFLOWS
    return Replayer(
        workflows=workflows, data_converter=data_converter(codec), runtime=quiet_runtime()
    )


async def replay_paths(
    paths: Sequence[str | Path], workflows: Sequence[type] | None = None, codec: Any = None
) -> list[ReplayOutcome]:
    """Replay each history file against `workflows` (default: the worker's WORKFLOWS), all
    in one replay worker; a failure is then located by `locate_mismatch`."""
    replayer = make_replayer(workflows, codec)
    outcomes: list[ReplayOutcome] = []
    todo: list[tuple[ReplayOutcome, WorkflowHistory]] = []
    for path in paths:
        p = Path(path)
        try:
            history = load_history_file(p)
            if codec is None and encryption_keys(history):
                await readable(history, None, str(p))  # raises: it needs the key
        except HistoryError as e:
            outcomes.append(
                ReplayOutcome(file=str(p), ok=False, mismatch=str(e).split(": ", 1)[-1])
            )
            continue
        started = history.events[0].workflow_execution_started_event_attributes
        out = ReplayOutcome(
            file=str(p),
            ok=True,
            workflow_type=started.workflow_type.name,
            run_id=history.run_id,
            events=len(history.events),
        )
        outcomes.append(out)
        todo.append((out, history))

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for _, h in todo:
            yield h

    failures: list[BaseException | None] = []
    with quiet_sdk_logs():
        async with replayer.workflow_replay_iterator(histories()) as results:
            async for result in results:
                failures.append(result.replay_failure)
        for (out, history), failure in zip(todo, failures, strict=True):
            if failure is not None:
                await explain(replayer, out, history, failure)
    return outcomes


async def explain(
    replayer: Any, out: ReplayOutcome, history: WorkflowHistory, failure: BaseException
) -> None:
    message = failure_message(failure)
    event_id = await locate_mismatch(replayer, history, message)
    out.ok, out.mismatch, out.event_id = False, message, event_id
    if event_id is not None:
        ev = next((e for e in history.events if e.event_id == event_id), None)
        out.event_type = event_type_name(ev) if ev is not None else None


def failure_message(failure: BaseException) -> str:
    """The replay failure's own message, without the SDK's wrapping."""
    text = str(failure)
    m = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    if m:
        text = m.group(1).replace('\\"', '"').replace("\\'", "'").replace("\\\\", "\\")
    text = text.splitlines()[0] if text else type(failure).__name__
    return text.strip()


EVENT_ID_PATTERNS = (
    r"HistoryEvent\(\s*id:\s*(\d+)",
    r"event[_ ]id[:= ]+(\d+)",
    r"\bevent (\d+)\b",
)


async def locate_mismatch(replayer: Any, history: WorkflowHistory, message: str) -> int | None:
    """The event the replay failed at: named in the message, else found by replaying
    ever longer prefixes of the history (one per workflow task) to find the first
    workflow task whose commands do not match, then the command event the message names."""
    events = list(history.events)
    ids = {e.event_id for e in events}
    for pat in EVENT_ID_PATTERNS:
        m = re.search(pat, message)
        if m and int(m.group(1)) in ids:
            return int(m.group(1))
    if "is not registered" in message or "not registered on this worker" in message:
        return events[0].event_id
    starts = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]

    async def fails(k: int) -> bool:
        prefix = WorkflowHistory(history.workflow_id, events[: starts[k] + 1])
        r = await replayer.replay_workflow(prefix, raise_on_replay_failure=False)
        return r.replay_failure is not None

    lo, hi = 0, len(starts)  # find the first prefix that fails; len(starts) = the whole history
    while lo < hi:
        mid = (lo + hi) // 2
        if await fails(mid):
            hi = mid
        else:
            lo = mid + 1
    # The commands of the workflow task before prefix `lo` ended did not match: they are
    # the events after that task's WorkflowTaskCompleted.
    begin = starts[lo - 1] + 1 if lo > 0 else 0
    end = starts[lo] if lo < len(starts) else len(events)
    window = events[begin:end]
    completed = next(
        (
            i
            for i, e in enumerate(window)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ),
        None,
    )
    commands = [
        e
        for e in (window[completed + 1 :] if completed is not None else window)
        if e.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
    ]
    quoted = set(re.findall(r"'([^']+)'", message)) | set(re.findall(r'"([^"]+)"', message))
    for e in commands:
        if quoted & set(command_names(e)):
            return e.event_id
    if commands:
        return commands[0].event_id
    if completed is not None:
        return window[completed].event_id
    return window[0].event_id if window else None


def command_names(e: Any) -> list[str]:
    """The names a nondeterminism message uses for a command event."""
    kind = e.WhichOneof("attributes")
    a = getattr(e, kind) if kind else None
    if a is None:
        return []
    names = []
    for attr in ("activity_type", "workflow_type"):
        if hasattr(a, attr):
            names.append(getattr(a, attr).name)
    for attr in ("activity_id", "workflow_id", "timer_id", "marker_name", "signal_name"):
        if hasattr(a, attr) and getattr(a, attr):
            names.append(str(getattr(a, attr)))
    return names


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
