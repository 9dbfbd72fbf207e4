"""Replay: a history file against the worker's workflows, and where it stops matching.

`replay_paths` replays each file in one replay worker; a failure is located by
`locate_mismatch` (the event the replay failed at).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from records.history import (
    HistoryError,
    encryption_keys,
    event_type_name,
    load_history_file,
    readable,
)


# --------------------------------------------------------------------------------
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

    from wire.codec import data_converter

    if workflows is None:
        from workflows.registry import WORKFLOWS

        workflows = WORKFLOWS
    return Replayer(
        workflows=workflows, data_converter=data_converter(codec), runtime=quiet_runtime()
    )


async def replay_paths(
    paths: Sequence[str | Path], workflows: Sequence[type] | None = None, codec: Any = None
) -> list[ReplayOutcome]:
    """Replay each history file against `workflows` (default: every workflow the worker runs), all
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
