"""Following a workflow's history as the Temporal server writes it, for the console's live
stream (console/pairs.py): GetWorkflowExecutionHistory with `wait_new_event`, a long poll
the server answers as soon as an event is written (or, empty, when its long-poll interval
ends, 20 s by default), so the console hears of a change at once and asks nothing of the
worker while nothing happens. And a workflow's run as the server describes it (`RunMark`),
the current run's checklist asked only when that changed, and the pair watch's status
likewise: every Temporal call the live stream makes is here; the console holds none.

Also what a run's steps became, from its history: the run writes every change of a step
as a record in its memo (workflows/checklist.py STEP_RECORDS; one WorkflowProperties
Modified event per workflow task), so a step's new status shows before the worker is
asked for the whole checklist. And the pair watch's readings, read from its history: each
reading is the result of its `probe_pair` activity, written by the server in
ActivityTaskCompleted, and the time the watch gives it is its workflow task's
(workflow.now(): the WorkflowTaskStarted event before the activity was scheduled;
workflows/watch.py), so the console draws the same reading as the watch's `status` query
without asking the worker for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, timedelta
from typing import NamedTuple

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from api.refusal import Refused
from api.runs import fetch_checklist, read_watched_status, resolve_run
from inventory.models import Inventory
from inventory.status import PairStatus
from workflows.checklist import STEP_RECORDS
from workflows.models import Checklist, StepRecord
from workflows.watch import watch_workflow_id

# Longer than the server's long-poll interval (frontend history.longPollExpirationInterval,
# 20 s by default): an empty page then comes back before this gives up.
LONG_POLL = timedelta(seconds=40)

WATCH_READING = "probe_pair"  # the watch's activity (activities/probe.py)

CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}

# An activity that did not complete, and where its attributes are.
ENDED_BADLY = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


async def pages(
    temporal: Client, workflow_id: str, run_id: str
) -> AsyncIterator[list[HistoryEvent]]:
    """The run's history page by page: first what it holds, then each page as the server
    writes it (empty pages too, when a long poll ends quiet). Ends after the close event."""
    token = b""
    while True:
        resp = await temporal.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=temporal.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                next_page_token=token,
                wait_new_event=True,
                skip_archival=True,
            ),
            retry=True,
            timeout=LONG_POLL,
        )
        events = list(resp.history.events)
        yield events
        if not resp.next_page_token or any(e.event_type in CLOSED for e in events):
            return
        token = resp.next_page_token


def changes_checklist(events: Iterable[HistoryEvent]) -> bool:
    """Whether these events may have changed what the run's `progress` query answers:
    a workflow's state changes only in its workflow tasks (each ends in
    WorkflowTaskCompleted), and at its close. A query asked before that task completes
    may still answer the state before it, so the other events are not a reason to ask."""
    return any(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED or e.event_type in CLOSED
        for e in events
    )


class WatchReadings:
    """Reads the pair watch's readings out of its history's events, in order."""

    def __init__(self, converter: DataConverter) -> None:
        self.converter = converter
        self._task_started: str | None = None  # workflow.now() of the current task
        self._scheduled: dict[int, str | None] = {}  # probe_pair's scheduled event: its time

    async def feed(
        self, events: Iterable[HistoryEvent]
    ) -> list[tuple[int, tuple[PairStatus, str] | None]]:
        """The readings among these events, in order: (the event's id, the status with
        the time the watch gave it), or None for a reading that failed (its words are
        the watch's own, in its view)."""
        out: list[tuple[int, tuple[PairStatus, str] | None]] = []
        for e in events:
            t = e.event_type
            if t == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                when = e.event_time.ToDatetime().replace(tzinfo=UTC)
                self._task_started = when.isoformat(timespec="seconds")
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                if e.activity_task_scheduled_event_attributes.activity_type.name == WATCH_READING:
                    self._scheduled[e.event_id] = self._task_started
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                a = e.activity_task_completed_event_attributes
                if a.scheduled_event_id in self._scheduled:
                    read_at = self._scheduled.pop(a.scheduled_event_id)
                    (st,) = await self.converter.decode(list(a.result.payloads), [PairStatus])
                    out.append((e.event_id, (st, read_at or "")))
            elif t in ENDED_BADLY:
                scheduled = getattr(e, ENDED_BADLY[t]).scheduled_event_id
                if scheduled in self._scheduled:
                    del self._scheduled[scheduled]
                    out.append((e.event_id, None))
        return out


async def step_records(
    converter: DataConverter, events: Iterable[HistoryEvent]
) -> list[tuple[int, StepRecord]]:
    """The step records among these events, in order, with the event that keeps them. A
    record that cannot be read (not this console's key, another shape) is left out: the
    checklist query says it in full a moment later."""
    out: list[tuple[int, StepRecord]] = []
    for e in events:
        if e.event_type != EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            continue
        fields = e.workflow_properties_modified_event_attributes.upserted_memo.fields
        if STEP_RECORDS not in fields:
            continue
        try:
            (items,) = await converter.decode([fields[STEP_RECORDS]])
            out.extend((e.event_id, StepRecord.model_validate(i)) for i in items)
        except Exception:  # noqa: BLE001 (the query is the whole truth; this is a head start)
            continue
    return out


# -- what the live stream asks ----------------------------------------------------------------
class RunMark(NamedTuple):
    """A workflow's run as the server describes it: which run, how many events its history
    holds, and its status ("running", "completed", "continued_as_new", ...). Every change
    of what the run answers is written in its history: an unchanged mark is an unchanged
    run."""

    run_id: str
    history_length: int
    status: str

    @property
    def open(self) -> bool:
        return self.status == "running"


async def _mark(temporal: Client, workflow_id: str) -> RunMark:
    try:
        desc = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as e:
        found = e.status != RPCStatusCode.NOT_FOUND
        what = f"workflow {workflow_id} cannot be described: {e.message}"
        raise Refused(what, "refused" if found else "not-found") from None
    return RunMark(desc.run_id, desc.history_length, _status_word(desc.status))


def _status_word(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


async def run_mark(temporal: Client, inv: Inventory) -> RunMark:
    """The pair's current run (workflow amsm-<pair>), as the server describes it."""
    return await _mark(temporal, inv.workflow_id)


async def watch_mark(temporal: Client, inv: Inventory) -> RunMark:
    """The pair watch's run, as the server describes it."""
    return await _mark(temporal, watch_workflow_id(inv.workflow_id))


async def current_checklist(
    temporal: Client, inv: Inventory, unless: RunMark | None = None
) -> tuple[RunMark | None, Checklist | None]:
    """The current run's mark (None when it cannot be described) and its checklist asked
    of the worker, unless the mark is UNLESS: then no checklist (None) is asked."""
    handle = await resolve_run(temporal, inv, "current")
    try:
        desc = await handle.describe()
        mark: RunMark | None = RunMark(desc.run_id, desc.history_length, _status_word(desc.status))
    except RPCError:
        mark = None  # fetch_checklist says what is wrong
    if mark is not None and mark == unless:
        return mark, None
    return mark, await fetch_checklist(handle)


async def watched_status(
    temporal: Client, inv: Inventory, unless: RunMark | None = None
) -> tuple[RunMark | None, tuple[PairStatus, str] | None]:
    """The pair watch's mark (None when it cannot be described) and the status it last
    read with a line saying when (api/runs.py read_watched_status), unless the mark is
    UNLESS: then no status (None) is asked."""
    try:
        mark: RunMark | None = await watch_mark(temporal, inv)
    except Refused:
        mark = None  # read_watched_status says what is wrong
    if mark is not None and mark == unless:
        return mark, None
    return mark, await read_watched_status(temporal, inv)


async def _pages(
    temporal: Client, workflow_id: str, run_id: str
) -> AsyncIterator[list[HistoryEvent]]:
    try:
        async for events in pages(temporal, workflow_id, run_id):
            yield events
    except RPCError as e:
        raise Refused(f"the history of {workflow_id} cannot be read: {e.message}") from None


async def follow_run(
    temporal: Client, inv: Inventory, run_id: str
) -> AsyncIterator[tuple[list[tuple[int, StepRecord]], bool]]:
    """The current run's history as the server writes it, page by page (an empty page when
    a long poll ends quiet): the step records in each page, with the event that keeps
    each, and whether the page may have changed the checklist. Ends when the run closes."""
    async for events in _pages(temporal, inv.workflow_id, run_id):
        yield await step_records(temporal.data_converter, events), changes_checklist(events)


async def follow_watch(
    temporal: Client, inv: Inventory, run_id: str
) -> AsyncIterator[list[tuple[int, tuple[PairStatus, str] | None]]]:
    """The pair watch's readings as the server writes them, page by page (WatchReadings
    .feed of each page)."""
    readings = WatchReadings(temporal.data_converter)
    async for events in _pages(temporal, watch_workflow_id(inv.workflow_id), run_id):
        yield await readings.feed(events)
