"""A run read from its workflow history alone: no query, no worker, no server needed.

The history (as `temporal workflow show --output json` prints it, or as the server hands
it to `fetch_history`) is the record of what happened: the run's input, every activity
with its input, result or the device's error text, every child workflow (one per client
switch), every signal (who confirmed, approved or decided what, with their note or
reason), timers, and how the run ended. `parse_history` decodes it with the worker's data
converter into a `RunHistory`; `reconstruct` walks the events the way the checklist
engine (workflows/checklist.py) walks its steps and gives each step its status, who did
it and the exact event times of its start and end.

When the run completed, its result is the engine's own `Checklist`; the report uses it for
step outcomes and `check_against_checklist` compares it with the reconstruction. For runs
that did not complete (failed, terminated, still running when exported) the
reconstruction is all there is; mapping activities to steps is then approximate, and the
`approximate` notes say where.
"""

from __future__ import annotations

import bisect
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from google.protobuf.json_format import ParseError
from google.protobuf.message import Message
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, StartChildWorkflowExecutionFailedCause
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec

from activities.models import ClientBatchResult, ClientSwitchResult
from inventory.models import Side, other
from wire.payloads import REASONS
from wire.payloads import reason as undecodable_reason
from workflows import outcomes
from workflows.checklist import REJECTED_RECORDS, STEP_RECORDS
from workflows.kinds import KINDS
from workflows.limits import MAX_NAME, cut
from workflows.models import (
    WAITS_FOR_OPERATOR,
    Checklist,
    ClientBatchInput,
    ClientSwitchInput,
    Decision,
    OperatorSignal,
    RejectedSignal,
    StepDef,
    StepRecord,
    StepStatus,
)
from workflows.outcomes import Outcome
from workflows.steps import (
    NOT_UNPLANNED,
    VERIFY_ACTIVITIES,
    lost_side_steps,
    steps_for_activity,
)

T = TypeVar("T", bound=BaseModel)

RunStatus = Literal[
    "completed", "failed", "terminated", "canceled", "timed-out", "continued-as-new", "running"
]
# The checklist's run state for a run that ended some other way (as `amsm show` says it).
STATE_OF_STATUS = {
    "failed": "failed",
    "timed-out": "failed",
    "terminated": "aborted",
    "canceled": "aborted",
}
BOOTSTRAP_ACTIVITIES = ("get_timing", "get_capabilities", "probe_pair", "fences_waiting")
CLIENT_STEPS = ("switch-clients", "switch-pilots", "move-editors")
# Activities the engine runs between two steps (restore reads the asset counts for the
# approve-overwrite gate's message before the gate starts).
BETWEEN_STEPS = ("dsm_asset_counts",)


class HistoryError(Exception):
    """A history that cannot be read: one line saying what and where. `code` is the exit
    status: 2 (usage) for a file that is missing or not a history, 1 otherwise."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# -- small helpers ------------------------------------------------------------------------
def event_type_name(e: HistoryEvent) -> str:
    """EVENT_TYPE_ACTIVITY_TASK_SCHEDULED -> ActivityTaskScheduled."""
    name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
    return "".join(w.capitalize() for w in name.split("_"))


def event_time(e: HistoryEvent) -> datetime:
    return e.event_time.ToDatetime(tzinfo=UTC)


def decode_payload(payload: Payload) -> Any:
    """A payload's JSON value, decoded by the worker's data converter."""
    try:
        return pydantic_data_converter.payload_converter.from_payloads([payload], None)[0]
    except Exception:  # not JSON (binary/protobuf payloads): say what it is
        meta = payload.metadata.get("encoding", b"").decode(errors="replace")
        return f"<{meta or 'unknown'} payload, {len(payload.data)} bytes>"


def decode_value(payloads: Payloads | None) -> Any:
    """The value of the first payload (None when there is none)."""
    if payloads is None or not payloads.payloads:
        return None
    return decode_payload(payloads.payloads[0])


def as_model(value: Any, model: type[T]) -> T | None:
    """`value` as `model`, or None when it does not fit (an older or newer shape)."""
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def failure_text(f: Failure) -> str:
    """The device's own error text: the innermost application failure's message,
    after the wrapping message when they differ (timeouts, child failures)."""
    outer = f.message
    inner = f
    while inner.HasField("cause"):
        inner = inner.cause
    if inner is not f and inner.message and inner.message != outer:
        return f"{outer}: {inner.message}" if outer else inner.message
    return outer or "(no message)"


def failure_type(f: Failure) -> str | None:
    cur: Failure | None = f
    while cur is not None:
        if cur.HasField("application_failure_info") and cur.application_failure_info.type:
            return cur.application_failure_info.type
        cur = cur.cause if cur.HasField("cause") else None
    return None


def summarize(value: Any, limit: int = 160) -> str:
    """One line for an activity's input or result."""
    if value is None:
        return ""
    if isinstance(value, dict):
        if isinstance(value.get("message"), str):
            return value["message"]
        if "clips" in value and "host" in value:
            return f"{len(value['clips'])} orphan clip(s) on {value['host']}"
        if "running" in value and "host" in value:
            state = "running" if value["running"] else "not running"
            main = f", copies from {value['main']}" if value.get("main") else ""
            return f"{value['host']}: {state}{main}"
        if "counts" in value:
            return "asset counts " + ", ".join(f"{h} {n}" for h, n in value["counts"].items())
        if "dsm" in value and "clients" in value:
            return _summarize_status(value)
        shown = {k: v for k, v in value.items() if k != "pair" and v not in (None, [], {})}
        text = ", ".join(f"{k}={_short(v)}" for k, v in shown.items())
    else:
        text = _short(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str)


def _summarize_status(value: dict[str, Any]) -> str:
    dsm = value.get("dsm") or {}
    parts = [
        f"DSM {d.get('host', side)} {d.get('mode') or 'unknown'}"
        for side, d in sorted(dsm.items())
        if isinstance(d, dict)
    ]
    sides: dict[str, int] = {}
    for c in value.get("clients") or []:
        key = c.get("side") or "unknown"
        sides[key] = sides.get(key, 0) + 1
    parts += [f"{n} client(s) on {s}" for s, n in sorted(sides.items())]
    return "pair read: " + ", ".join(parts)


def _took(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"


# -- what the history holds ----------------------------------------------------------------
class ActivityCall(BaseModel):
    scheduled_event: int
    activity_id: str
    type: str
    input: Any = None
    scheduled_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_event: int | None = None
    attempt: int = 1
    outcome: Literal["running", "completed", "failed", "timed-out", "canceled"] = "running"
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    # When the last attempt was not the first: what the attempt before it failed with.
    last_failure: str | None = None
    step: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.scheduled_at).total_seconds()


class ChildCall(BaseModel):
    initiated_event: int
    workflow_id: str
    workflow_type: str
    run_id: str | None = None
    input: Any = None
    host: str | None = None
    to: Side | None = None
    initiated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_event: int | None = None
    outcome: Literal[
        "running", "completed", "failed", "timed-out", "canceled", "terminated", "not-started"
    ] = "running"
    result: Any = None
    ok: bool | None = None
    message: str | None = None
    seconds: float | None = None
    error: str | None = None
    step: str | None = None


class SignalRecord(BaseModel):
    """An operator's confirm, approve or decide: a signal, or an accepted update (the CLI
    sends updates: `confirm-step`, `approve-step`, `decide-step`)."""

    event_id: int
    at: datetime
    name: str  # confirm, approve, decide (or whatever else was sent)
    payload: Any = None
    identity: str = ""
    channel: Literal["signal", "update"] = "signal"
    update_id: str | None = None
    # The workflow task that handled an update (its WorkflowTaskStarted event); a signal is
    # handled by the first workflow task after its event.
    task_event: int | None = None
    update_error: str | None = None
    # Why the workflow refused an update it accepted (its UpdateResult's reason; in runs
    # recorded before, the text "refused: why").
    update_refused: str | None = None
    # Why the payload does not fit (the engine rejects it as malformed).
    malformed: str | None = None
    step: str = ""
    operator: str = "unknown"
    note: str | None = None
    action: str | None = None
    reason: str | None = None
    client: str | None = None
    clients: list[str] | None = None
    # Judged by the reconstruction, as the engine would: accepted, rejected (with the
    # engine's reason), or ignored (a second abort).
    verdict: Literal["accepted", "rejected", "ignored", "unknown"] = "unknown"
    rejection: str | None = None

    @property
    def via(self) -> str:
        """Where the signal came from, from the sender's identity."""
        if self.identity.startswith("temporal-cli"):
            return "temporal CLI"
        if "ui" in self.identity.lower() and "@" not in self.identity:
            return "Web UI"
        return self.identity


class TimerRecord(BaseModel):
    event_id: int
    timer_id: str
    started_at: datetime
    seconds: float | None = None
    ended_at: datetime | None = None
    outcome: Literal["running", "fired", "canceled"] = "running"
    step: str | None = None


class RunHistory(BaseModel):
    source: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str = ""
    input: Any = None
    memo: dict[str, Any] = Field(default_factory=dict)
    parent_workflow_id: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    last_event_at: datetime
    event_count: int
    status: RunStatus = "running"
    result: Any = None
    checklist: Checklist | None = None
    close_event: int | None = None
    close_message: str | None = None
    close_type: str | None = None
    activities: list[ActivityCall] = Field(default_factory=list)
    children: list[ChildCall] = Field(default_factory=list)
    signals: list[SignalRecord] = Field(default_factory=list)
    timers: list[TimerRecord] = Field(default_factory=list)
    # Each step's changes as the engine recorded them (runs since `record-step-outcomes`),
    # and the signals it rejected (with the event that records them).
    step_records: list[StepRecord] = Field(default_factory=list)
    rejection_records: list[tuple[int, RejectedSignal]] = Field(default_factory=list)
    rejected_total: int = 0  # as the last rejection record counts them
    patches: list[str] = Field(default_factory=list)
    decode_warnings: list[str] = Field(default_factory=list)
    # Workflow tasks that completed: (WorkflowTaskStarted event id, its time). The
    # workflow's clock (`workflow.now()`) is the time its task started.
    task_starts: list[tuple[int, datetime]] = Field(default_factory=list)
    # Event id -> (type name, time), for naming events in messages.
    event_index: dict[int, tuple[str, datetime]] = Field(default_factory=dict)

    @property
    def seconds(self) -> float:
        end = self.ended_at or self.last_event_at
        return (end - self.started_at).total_seconds()

    def task_at(self, started_event_id: int) -> datetime | None:
        entry = self.event_index.get(started_event_id)
        return entry[1] if entry else None

    def task_after(self, event_id: int) -> datetime | None:
        """The clock of the first completed workflow task after `event_id`: when the
        workflow saw that event (what `workflow.now()` said while handling it)."""
        ids = [i for i, _ in self.task_starts]
        k = bisect.bisect_right(ids, event_id)
        return self.task_starts[k][1] if k < len(self.task_starts) else None


# -- reading histories ---------------------------------------------------------------------
def history_from_json(
    text: str | dict[str, Any], name: str, where: str | None = None
) -> WorkflowHistory:
    """A history from its JSON; `name` becomes its workflow id, `where` names it in errors."""
    where = where or name
    try:
        history = WorkflowHistory.from_json(name, text)
    except (ParseError, ValueError, TypeError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HistoryError(f"{where}: not a workflow history ({first})") from None
    if not history.events:
        raise HistoryError(f"{where}: the history has no events")
    if not history.events[0].HasField("workflow_execution_started_event_attributes"):
        raise HistoryError(f"{where}: the first event is not WorkflowExecutionStarted")
    return history


def load_history_file(path: str | Path) -> WorkflowHistory:
    """A history exported with `amsm history export` or `temporal workflow show -o json`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise HistoryError(f"{p}: cannot read it ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HistoryError(f"{p}: not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict) or "events" not in data:
        raise HistoryError(
            f"{p}: not a workflow history (expected an object with 'events', as "
            "`temporal workflow show --output json` writes)"
        )
    return history_from_json(data, p.stem, str(p))


# -- encrypted payloads (wire/codec.py) ----------------------------------------------------
PAYLOAD = "temporal.api.common.v1.Payload"
PAYLOADS = "temporal.api.common.v1.Payloads"
FAILURE = "temporal.api.failure.v1.Failure"
ENCRYPTED = b"binary/encrypted"


def encryption_keys(history: WorkflowHistory) -> set[str]:
    """The key ids of the encrypted payloads in the history (empty: none encrypted)."""
    found: set[str] = set()

    def visit(msg: Message) -> None:
        if msg.DESCRIPTOR.full_name == PAYLOAD:
            meta = msg.metadata  # type: ignore[attr-defined]
            if meta.get("encoding") == ENCRYPTED:
                found.add(meta.get("encryption-key-id", b"?").decode(errors="replace"))
            return
        for field, value in msg.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                for v in value.values():
                    if isinstance(v, Message):
                        visit(v)
            elif field.is_repeated:
                for v in value:
                    visit(v)
            else:
                visit(value)

    for e in history.events:
        visit(e)
    return found


async def decode_history(history: WorkflowHistory, codec: PayloadCodec | None) -> WorkflowHistory:
    """The history with every payload decoded by `codec` (the worker's payload codec), and
    failure messages restored from their encoded attributes. Without a codec: as it is."""
    if codec is None:
        return history
    events = []
    for e in history.events:
        copy = HistoryEvent()
        copy.CopyFrom(e)
        await _decode(copy, codec)
        events.append(copy)
    return WorkflowHistory(history.workflow_id, events)


async def _decrypt(codec: PayloadCodec, payloads: list[Payload]) -> list[Payload]:
    """Encrypted payloads decoded, the others as they are (a history is read, not acted
    on: search attributes are never encrypted, and a run may predate the key). One the
    codec could not decode (its marker, wire/payloads.py) raises, in a fixed text."""
    out = []
    for p in payloads:
        if p.metadata.get("encoding") != ENCRYPTED:
            out.append(p)
            continue
        [d] = await codec.decode([p])
        why = undecodable_reason(d)
        if why is not None:
            kid = p.metadata.get("encryption-key-id", b"").decode(errors="replace")
            if why == REASONS["unknown-key"] and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", kid):
                why = f"payload encrypted with key id {kid!r}, which is not in the key file"
            raise ValueError(why)
        out.append(d)
    return out


async def _decode(msg: Message, codec: PayloadCodec) -> None:
    for field, value in msg.ListFields():
        mt = field.message_type
        if mt is None:
            continue
        if mt.GetOptions().map_entry:
            value_type = mt.fields_by_name["value"].message_type
            for key in list(value.keys()):
                if value_type is not None and value_type.full_name == PAYLOAD:
                    value[key].CopyFrom((await _decrypt(codec, [value[key]]))[0])
                elif value_type is not None:
                    await _decode(value[key], codec)
        elif mt.full_name == PAYLOADS:
            decoded = await _decrypt(codec, list(value.payloads))
            del value.payloads[:]
            value.payloads.extend(decoded)
        elif mt.full_name == PAYLOAD:
            if field.is_repeated:
                decoded = await _decrypt(codec, list(value))
                del value[:]
                value.extend(decoded)
            else:
                value.CopyFrom((await _decrypt(codec, [value]))[0])
        elif field.is_repeated:
            for item in value:
                await _decode(item, codec)
        else:
            await _decode(value, codec)
    if msg.DESCRIPTOR.full_name == FAILURE and msg.HasField("encoded_attributes"):  # type: ignore[attr-defined]
        attrs = decode_payload(msg.encoded_attributes)  # type: ignore[attr-defined]
        if isinstance(attrs, dict):
            if isinstance(attrs.get("message"), str):
                msg.message = attrs["message"]  # type: ignore[attr-defined]
            if isinstance(attrs.get("stack_trace"), str):
                msg.stack_trace = attrs["stack_trace"]  # type: ignore[attr-defined]


async def readable(
    history: WorkflowHistory, codec: PayloadCodec | None, where: str
) -> WorkflowHistory:
    """The history ready to read: decoded with the codec; a clear error when its payloads
    are encrypted and there is no key, or the key file lacks the key they were written with."""
    keys = encryption_keys(history)
    if keys and codec is None:
        raise HistoryError(
            f"{where}: the payloads are encrypted (key id {', '.join(sorted(keys))}); pass "
            "--codec-key-file FILE or set AMSM_CODEC_KEY_FILE"
        )
    try:
        return await decode_history(history, codec)
    except Exception as e:  # the codec's own words: wrong key, tampered ciphertext
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HistoryError(f"{where}: cannot decrypt the payloads ({first})") from None


def parse_history(history: WorkflowHistory, source: str = "") -> RunHistory:
    """Decode every event that says what happened."""
    try:
        return _parse(history, source or history.workflow_id)
    except HistoryError:
        raise
    except Exception as e:  # a history this code does not understand: say so, in one line
        raise HistoryError(
            f"{source or history.workflow_id}: cannot read the history ({type(e).__name__}: {e})",
            code=1,
        ) from None


def _parse(history: WorkflowHistory, source: str) -> RunHistory:
    events = list(history.events)
    first = events[0]
    st = first.workflow_execution_started_event_attributes
    memo = {k: decode_payload(v) for k, v in st.memo.fields.items()}
    run = RunHistory(
        source=source,
        workflow_id=history.workflow_id,
        run_id=st.original_execution_run_id or st.first_execution_run_id,
        workflow_type=st.workflow_type.name,
        task_queue=st.task_queue.name,
        input=decode_value(st.input),
        memo=memo,
        parent_workflow_id=st.parent_workflow_execution.workflow_id or None,
        started_at=event_time(first),
        last_event_at=event_time(events[-1]),
        event_count=len(events),
    )
    acts: dict[int, ActivityCall] = {}
    # A client-batch child stands for several clients: one ChildCall per client.
    children: dict[int, list[ChildCall]] = {}
    timers: dict[str, TimerRecord] = {}
    started_wft: dict[int, datetime] = {}
    wft_of_scheduled: dict[int, int] = {}  # WorkflowTaskScheduled id -> its Started id
    updates: dict[str, SignalRecord] = {}
    for e in events:
        at = event_time(e)
        run.event_index[e.event_id] = (event_type_name(e), at)
        kind = e.WhichOneof("attributes")
        if kind == "workflow_task_started_event_attributes":
            started_wft[e.event_id] = at
            wft_of_scheduled[e.workflow_task_started_event_attributes.scheduled_event_id] = (
                e.event_id
            )
        elif kind == "workflow_task_completed_event_attributes":
            sid = e.workflow_task_completed_event_attributes.started_event_id
            if sid in started_wft:
                run.task_starts.append((sid, started_wft[sid]))
        elif kind == "workflow_properties_modified_event_attributes":
            fields = e.workflow_properties_modified_event_attributes.upserted_memo.fields
            if STEP_RECORDS in fields:
                _step_records(run, e.event_id, decode_payload(fields[STEP_RECORDS]))
            if REJECTED_RECORDS in fields:
                _rejected_records(run, e.event_id, decode_payload(fields[REJECTED_RECORDS]))
        elif kind == "activity_task_scheduled_event_attributes":
            a = e.activity_task_scheduled_event_attributes
            acts[e.event_id] = ActivityCall(
                scheduled_event=e.event_id,
                activity_id=a.activity_id,
                type=a.activity_type.name,
                input=decode_value(a.input),
                scheduled_at=at,
            )
            run.activities.append(acts[e.event_id])
        elif kind == "activity_task_started_event_attributes":
            a2 = e.activity_task_started_event_attributes
            call = acts.get(a2.scheduled_event_id)
            if call is not None:
                call.started_at, call.attempt = at, a2.attempt or 1
                if a2.HasField("last_failure"):
                    call.last_failure = failure_text(a2.last_failure)
        elif kind in (
            "activity_task_completed_event_attributes",
            "activity_task_failed_event_attributes",
            "activity_task_timed_out_event_attributes",
            "activity_task_canceled_event_attributes",
        ):
            _activity_end(e, kind, at, acts)
        elif kind == "start_child_workflow_execution_initiated_event_attributes":
            c = e.start_child_workflow_execution_initiated_event_attributes
            inp = decode_value(c.input)
            batch = as_model(inp, ClientBatchInput) if isinstance(inp, dict) else None
            targets: list[tuple[str | None, Side | None]]
            if batch is not None and "clients" in inp:
                targets = [(t.host, t.to) for t in batch.clients]
            else:
                cs = as_model(inp, ClientSwitchInput)
                targets = [(cs.host, cs.to) if cs else (None, None)]
            calls = [
                ChildCall(
                    initiated_event=e.event_id,
                    workflow_id=c.workflow_id,
                    workflow_type=c.workflow_type.name,
                    input=inp,
                    host=host,
                    to=to,
                    initiated_at=at,
                )
                for host, to in targets
            ]
            children[e.event_id] = calls
            run.children.extend(calls)
        elif kind is not None and kind.startswith("child_workflow_execution_"):
            _child_event(e, kind, at, children)
        elif kind == "start_child_workflow_execution_failed_event_attributes":
            f = e.start_child_workflow_execution_failed_event_attributes
            for ch in children.get(f.initiated_event_id, []):
                ch.outcome, ch.ended_at, ch.end_event = "not-started", at, e.event_id
                ch.error = f"the child workflow could not start ({_enum_name(f.cause)})"
        elif kind == "workflow_execution_signaled_event_attributes":
            run.signals.append(_signal(e, at))
        elif kind == "workflow_execution_update_accepted_event_attributes":
            rec = _update(e, at, wft_of_scheduled, started_wft)
            run.signals.append(rec)
            if rec.update_id:
                updates[rec.update_id] = rec
        elif kind == "workflow_execution_update_completed_event_attributes":
            done = e.workflow_execution_update_completed_event_attributes
            upd = updates.get(done.meta.update_id)
            if upd is not None and done.outcome.HasField("failure"):
                upd.update_error = failure_text(done.outcome.failure)
            elif upd is not None:
                answer = decode_value(done.outcome.success)
                if isinstance(answer, dict) and answer.get("accepted") is False:
                    upd.update_refused = str(answer.get("reason") or "")  # an UpdateResult
                elif isinstance(answer, str) and answer.startswith("refused: "):
                    # Recorded before updates answered with an UpdateResult.
                    upd.update_refused = answer.removeprefix("refused: ")
        elif kind == "timer_started_event_attributes":
            t = e.timer_started_event_attributes
            timers[t.timer_id] = TimerRecord(
                event_id=e.event_id,
                timer_id=t.timer_id,
                started_at=at,
                seconds=t.start_to_fire_timeout.ToTimedelta().total_seconds(),
            )
            run.timers.append(timers[t.timer_id])
        elif kind in ("timer_fired_event_attributes", "timer_canceled_event_attributes"):
            tid = getattr(e, kind).timer_id
            if tid in timers:
                timers[tid].ended_at = at
                timers[tid].outcome = "fired" if kind.startswith("timer_fired") else "canceled"
        elif kind == "marker_recorded_event_attributes":
            m = e.marker_recorded_event_attributes
            if m.marker_name == "core_patch" and "patch-data" in m.details:
                data = decode_value(m.details["patch-data"])
                if isinstance(data, dict) and data.get("id"):
                    run.patches.append(str(data["id"]))
        elif kind is not None and kind.startswith("workflow_execution_") and _closes(kind):
            _close(run, e, kind, at)
    return run


def _step_records(run: RunHistory, event_id: int, value: Any) -> None:
    """The records of one upsert; one that does not read is a warning, not a guess."""
    for item in value if isinstance(value, list) else [value]:
        try:
            rec = StepRecord.model_validate({**item, "event_id": event_id})
        except (TypeError, ValidationError) as e:
            run.decode_warnings.append(f"event {event_id}: a step record does not read: {e}")
            continue
        run.step_records.append(rec)


def _rejected_records(run: RunHistory, event_id: int, value: Any) -> None:
    """The signals the engine rejected since its last record: what and why, as it said."""
    last = value.get("last") if isinstance(value, dict) else None
    if isinstance(value, dict) and isinstance(value.get("total"), int):
        run.rejected_total = max(run.rejected_total, value["total"])
    for item in last if isinstance(last, list) else []:
        try:
            rec = RejectedSignal.model_validate(item)
        except (TypeError, ValidationError) as e:
            run.decode_warnings.append(f"event {event_id}: a rejection record does not read: {e}")
            continue
        run.rejection_records.append((event_id, rec))


def _enum_name(value: Any) -> str:
    try:
        return StartChildWorkflowExecutionFailedCause.Name(value).lower().replace("_", " ")
    except ValueError:
        return str(value)


def _activity_end(e: HistoryEvent, kind: str, at: datetime, acts: dict[int, ActivityCall]) -> None:
    attrs = getattr(e, kind)
    call = acts.get(attrs.scheduled_event_id)
    if call is None:
        return
    call.ended_at, call.end_event = at, e.event_id
    if kind == "activity_task_completed_event_attributes":
        call.outcome, call.result = "completed", decode_value(attrs.result)
    elif kind == "activity_task_canceled_event_attributes":
        call.outcome = "canceled"
    else:
        call.outcome = "failed" if kind == "activity_task_failed_event_attributes" else "timed-out"
        call.error, call.error_type = failure_text(attrs.failure), failure_type(attrs.failure)


def _child_event(
    e: HistoryEvent, kind: str, at: datetime, children: dict[int, list[ChildCall]]
) -> None:
    attrs = getattr(e, kind)
    calls = children.get(attrs.initiated_event_id, [])
    if kind == "child_workflow_execution_started_event_attributes":
        for ch in calls:
            ch.started_at, ch.run_id = at, attrs.workflow_execution.run_id
        return
    result = (
        decode_value(attrs.result)
        if kind == "child_workflow_execution_completed_event_attributes"
        else None
    )
    batch = as_model(result, ClientBatchResult) if isinstance(result, dict) else None
    by_host = {r.host.lower(): r for r in batch.results} if batch else {}
    for ch in calls:
        ch.ended_at, ch.end_event = at, e.event_id
        if kind == "child_workflow_execution_completed_event_attributes":
            ch.outcome, ch.result = "completed", result
            r = (
                by_host.get((ch.host or "").lower())
                if batch
                else as_model(result, ClientSwitchResult)
            )
            if r is not None:
                ch.ok, ch.message, ch.seconds = r.ok, r.message, r.seconds
                ch.error = None if r.ok else r.message
        elif kind == "child_workflow_execution_failed_event_attributes":
            ch.outcome, ch.ok, ch.error = "failed", False, failure_text(attrs.failure)
        elif kind == "child_workflow_execution_timed_out_event_attributes":
            ch.outcome, ch.ok, ch.error = "timed-out", False, "the client switch timed out"
        elif kind == "child_workflow_execution_canceled_event_attributes":
            ch.outcome, ch.ok, ch.error = "canceled", False, "the client switch was canceled"
        elif kind == "child_workflow_execution_terminated_event_attributes":
            ch.outcome, ch.ok, ch.error = "terminated", False, "the client switch was terminated"


UPDATE_SIGNALS = {"confirm-step": "confirm", "approve-step": "approve", "decide-step": "decide"}


def _signal(e: HistoryEvent, at: datetime) -> SignalRecord:
    a = e.workflow_execution_signaled_event_attributes
    rec = SignalRecord(event_id=e.event_id, at=at, name=a.signal_name, identity=a.identity)
    if a.input.payloads:
        rec.payload = decode_payload(a.input.payloads[0])
        _fill(rec, rec.payload)
    else:
        rec.malformed = "no payload"
    return rec


def _update(
    e: HistoryEvent, at: datetime, wft_of_scheduled: dict[int, int], started: dict[int, datetime]
) -> SignalRecord:
    a = e.workflow_execution_update_accepted_event_attributes
    req = a.accepted_request
    name = req.input.name
    rec = SignalRecord(
        event_id=e.event_id,
        at=at,
        name=UPDATE_SIGNALS.get(name, name),
        identity=req.meta.identity,
        channel="update",
        update_id=req.meta.update_id,
    )
    seq = a.accepted_request_sequencing_event_id
    rec.task_event = wft_of_scheduled.get(seq) or max(
        (i for i in started if i < e.event_id), default=None
    )
    rec.payload = decode_value(req.input.args)
    _fill(rec, rec.payload)
    return rec


def _fill(rec: SignalRecord, payload: Any) -> None:
    """Who and what, as the workflow reads the payload (a malformed one is rejected)."""
    model: type[OperatorSignal] | type[Decision]
    if rec.name in ("confirm", "approve"):
        model = OperatorSignal
    elif rec.name == "decide":
        model = Decision
    else:
        return
    try:
        data = TypeAdapter(dict).validate_python(payload)
        value = model.model_validate(data)
    except ValidationError as e:
        rec.malformed = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in e.errors()
        )[:300]
        return
    if isinstance(value, OperatorSignal):
        rec.step, rec.operator, rec.note, rec.clients = (
            value.step,
            value.operator,
            value.note,
            value.clients,
        )
    else:
        rec.step, rec.operator, rec.action = value.step, value.operator, value.action
        rec.reason, rec.client = value.reason, value.client


CLOSING = {
    "workflow_execution_completed_event_attributes": "completed",
    "workflow_execution_failed_event_attributes": "failed",
    "workflow_execution_terminated_event_attributes": "terminated",
    "workflow_execution_canceled_event_attributes": "canceled",
    "workflow_execution_timed_out_event_attributes": "timed-out",
    "workflow_execution_continued_as_new_event_attributes": "continued-as-new",
}


def _closes(kind: str) -> bool:
    return kind in CLOSING


def _close(run: RunHistory, e: HistoryEvent, kind: str, at: datetime) -> None:
    attrs = getattr(e, kind)
    run.status = CLOSING[kind]  # type: ignore[assignment]
    run.ended_at, run.close_event = at, e.event_id
    if kind == "workflow_execution_completed_event_attributes":
        run.result = decode_value(attrs.result)
        if isinstance(run.result, dict) and "steps" in run.result:
            run.checklist = as_model(run.result, Checklist)
            if run.checklist is None:
                run.decode_warnings.append(
                    f"event {e.event_id}: the run's result does not fit today's Checklist; "
                    "the report is built from the events"
                )
    elif kind == "workflow_execution_failed_event_attributes":
        run.close_message, run.close_type = failure_text(attrs.failure), failure_type(attrs.failure)
    elif kind == "workflow_execution_terminated_event_attributes":
        who = f" by {attrs.identity}" if attrs.identity else ""
        run.close_message = f"terminated{who}: {attrs.reason or 'no reason given'}"
    elif kind == "workflow_execution_canceled_event_attributes":
        run.close_message = "canceled"
    elif kind == "workflow_execution_timed_out_event_attributes":
        run.close_message = "the run timed out"
    elif kind == "workflow_execution_continued_as_new_event_attributes":
        run.close_message = f"continued as new run {attrs.new_execution_run_id}"


# -- what the run was: its step table and direction -----------------------------------------
def step_table(workflow_type: str, inp: Any) -> list[StepDef]:
    """Today's step table for the run's workflow and input (empty when unknown)."""
    kind = KINDS.get(workflow_type)
    if kind is None or not isinstance(inp, dict) or inp.get(kind.side) not in ("X", "Y"):
        return []
    return kind.steps(inp[kind.side])


def direction(workflow_type: str, inp: Any) -> str:
    """The run's direction in the manual's words."""
    if not isinstance(inp, dict):
        return ""
    kind = KINDS.get(workflow_type)
    if kind is not None:
        side = inp.get(kind.side)
        return kind.direction(*kind.sides(side)) if side in ("X", "Y") else ""
    to = inp.get("to")
    if workflow_type == "client-switch" and to in ("X", "Y"):
        return f"{inp.get('host', '?')} to {to}"
    if workflow_type == "control" and inp.get("control"):
        words = [str(inp["control"]), str(inp.get("side") or "")]
        return " ".join(w for w in [*words, *map(str, inp.get("hosts") or [])] if w)
    return ""


# -- walking the steps ------------------------------------------------------------------------
class ClientTrack(BaseModel):
    host: str
    to: Side | None = None
    status: Literal["pending", "switching", "done", "failed", "skipped"] = "pending"
    attempts: int = 0
    message: str | None = None
    error: str | None = None
    seconds: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    workflow_ids: list[str] = Field(default_factory=list)
    # Errors of attempts that were retried.
    earlier_errors: list[str] = Field(default_factory=list)


class StepTrack(BaseModel):
    id: str
    kind: str
    title: str
    status: StepStatus = "pending"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    operator: str | None = None
    note: str | None = None
    message: str | None = None
    error: str | None = None
    automatic: bool = False
    passed_over: bool = False
    # As the engine records them (workflows/outcomes.py): from its records where the
    # history has them (`recorded`), else from what the events show.
    outcome: Outcome | None = None
    reason: str | None = None
    recorded: bool = False
    clients: list[ClientTrack] | None = None
    events: list[int] = Field(default_factory=list)
    # Signals that reached this step and were taken: confirmations and decisions.
    signals: list[int] = Field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def client(self, host: str) -> ClientTrack | None:
        return next((c for c in self.clients or [] if c.host.lower() == host.lower()), None)

    @property
    def failed_clients(self) -> list[ClientTrack]:
        return [c for c in self.clients or [] if c.status == "failed"]

    @property
    def needs_operator(self) -> bool:
        return self.status in WAITS_FOR_OPERATOR or bool(self.failed_clients)


class TimelineEntry(BaseModel):
    at: datetime
    event_id: int
    step: str  # a step id, or "(bootstrap)", "(between steps)", "(abort)", "(run)"
    text: str
    level: Literal["info", "warning", "error"] = "info"


class Reconstruction(BaseModel):
    steps: list[StepTrack]
    state: str  # the checklist's RunState as the events show it
    entries: list[TimelineEntry] = Field(default_factory=list)
    abort: SignalRecord | None = None
    signals: list[SignalRecord] = Field(default_factory=list)
    # Where the mapping of events to steps had to guess.
    approximate: list[str] = Field(default_factory=list)

    def step(self, step_id: str) -> StepTrack:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def activity_steps(call: ActivityCall) -> list[str]:
    """The steps an activity can belong to (the engine's step table, by activity)."""
    return steps_for_activity(call.type, call.input if isinstance(call.input, dict) else {})


def reconstruct(run: RunHistory, defs: list[StepDef] | None = None) -> Reconstruction:
    """Walk the events as the checklist engine walks its steps.

    `defs` is the run's step table: the completed run's own checklist when there is one,
    else today's table for the workflow (`step_table`).
    """
    if defs is None:
        if run.checklist is not None:
            defs = [StepDef(id=s.id, kind=s.kind, title=s.title) for s in run.checklist.steps]
        else:
            defs = step_table(run.workflow_type, run.input)
    rec = _Walk(run, defs).walk()
    rec.signals = run.signals
    if run.step_records:
        _as_recorded(run, rec)
    return rec


def _as_recorded(run: RunHistory, rec: Reconstruction) -> None:
    """Each step as the engine recorded it (a run since `record-step-outcomes`): its
    status, outcome, who and the texts, and when it started and ended by the engine's own
    clock. The walk still maps the events to steps for the timeline and follows each
    client from its child workflow."""
    by_id = {s.id: s for s in rec.steps}
    # Where the run started from: a continuation's checklist (its records are in the
    # histories before), else every step pending.
    resume = as_model(run.input.get("resume"), Checklist) if isinstance(run.input, dict) else None
    carried = {s.id: s for s in resume.steps} if resume is not None else {}
    for t in rec.steps:
        c = carried.get(t.id)
        t.status = c.status if c else "pending"
        t.outcome, t.reason = (c.outcome, c.reason) if c else (None, None)
        t.operator, t.note = (c.operator, c.note) if c else (None, None)
        t.message, t.error = (c.message, c.error) if c else (None, None)
        t.passed_over = t.outcome == "passed-over"
        t.started_at = datetime.fromisoformat(c.started_at) if c and c.started_at else None
        t.ended_at = datetime.fromisoformat(c.ended_at) if c and c.ended_at else None
        t.recorded = c is not None and c.status != "pending"
    for r in run.step_records:
        s = by_id.get(r.step)
        if s is None:
            rec.approximate.append(f"event {r.event_id} records a step {r.step!r} not in the table")
            continue
        s.status, s.outcome, s.reason, s.operator = r.status, r.outcome, r.reason, r.operator
        s.note, s.message, s.error = r.note, r.message, r.error
        s.passed_over = r.outcome == "passed-over"
        at = datetime.fromisoformat(r.at)
        if r.status == "pending":
            s.started_at = s.ended_at = None
        elif r.status in ("done", "skipped"):
            s.started_at, s.ended_at = (s.started_at if s.recorded else None) or at, at
        elif not s.recorded or s.ended_at is not None:
            s.started_at, s.ended_at = at, None  # started (again, after a retry)
        s.recorded = True
    if run.status != "completed" and run.status not in STATE_OF_STATUS:
        rec.state = "awaiting-operator" if any(s.needs_operator for s in rec.steps) else "running"


class _Walk:
    def __init__(self, run: RunHistory, defs: list[StepDef]) -> None:
        self.run = run
        self.steps = [StepTrack(id=d.id, kind=d.kind, title=d.title) for d in defs]
        self.index = {s.id: i for i, s in enumerate(self.steps)}
        self.p = -1  # the step the run is in; -1 before the first
        # When the workflow last saw the run move on (the next step starts then).
        self.last_progress: datetime | None = None
        self.abort: SignalRecord | None = None
        self.inflight: dict[int, str | None] = {}  # activity/child event -> step
        self.out = Reconstruction(steps=self.steps, state="running")
        self.messages: dict[str, list[str]] = {}
        self.bootstrap_done = False  # the first probe of the pair has come back
        self.operators: set[str] = set()  # who may act (get_capabilities); empty: anyone
        self.labels: dict[int, str] = {}  # activity scheduled event -> its timeline label
        self.lost: set[str] = set()  # unplanned switch: steps skipped, their side lost
        # The rejections the engine recorded, not yet matched to their signal. When it
        # recorded its steps and every rejection of this run (a continuation's count goes
        # on from the run before), a signal without one was accepted.
        self.rejections = list(run.rejection_records)
        resume = run.input.get("resume") if isinstance(run.input, dict) else None
        before = resume.get("rejected_total", 0) if isinstance(resume, dict) else 0
        since = run.rejected_total - before if run.rejection_records else 0
        self.verdicts_recorded = bool(run.step_records) and len(run.rejection_records) == since

    # -- helpers -------------------------------------------------------------------------
    @property
    def cur(self) -> StepTrack | None:
        return self.steps[self.p] if 0 <= self.p < len(self.steps) else None

    def note(self, at: datetime, eid: int, step: str, text: str, level: str = "info") -> None:
        self.out.entries.append(
            TimelineEntry(at=at, event_id=eid, step=step, text=text, level=level)  # type: ignore[arg-type]
        )

    def clock(self, event_id: int, fallback: datetime) -> datetime:
        return self.run.task_after(event_id) or fallback

    def busy(self, step: StepTrack) -> bool:
        return any(s == step.id for s in self.inflight.values())

    def settled(self, step: StepTrack | None) -> bool:
        """Done with its work: the engine has gone on to the next step."""
        return step is None or (step.status in ("done", "skipped") and not self.busy(step))

    def effective(self, j: int) -> str:
        """The status step j has now, in the engine's eyes."""
        s = self.steps[j]
        if j == self.p + 1 and self.settled(self.cur) and self.started:
            if s.kind == "gate":
                return "awaiting-approval"
            if s.kind == "manual":
                return "awaiting-confirmation"
        return s.status

    @property
    def started(self) -> bool:
        """The run has walked into its steps (bootstrap is over)."""
        return self.p >= 0 or self.bootstrap_done

    def enter(self, j: int, e_id: int, at: datetime, why: str) -> StepTrack:
        """The run moves on to step j (the steps in between were passed over)."""
        if j == self.p:
            return self.steps[j]
        start = self.last_progress or at
        cur = self.cur
        if cur is not None and not self.settled(cur):
            self.out.approximate.append(
                f"event {e_id} ({why}) was taken for step {self.steps[j].id} while "
                f"{cur.id} was still {cur.status}"
            )
        for k in range(self.p + 1, j):
            s = self.steps[k]
            if s.status == "pending":
                s.status, s.passed_over, s.outcome = "skipped", True, "passed-over"
                s.started_at = s.ended_at = start
                s.note = "passed over: no events for this step"
                self.out.approximate.append(
                    f"step {s.id} has no events before {self.steps[j].id}: taken as passed over"
                )
        self.p = j
        s = self.steps[j]
        if s.started_at is None:
            s.started_at = start
        return s

    def step_of(self, event_id: int, candidates: list[str]) -> int | None:
        """The step an activity or child belongs to: where the engine recorded its steps,
        the one it had in hand when it scheduled the event (the record comes first, in the
        same workflow task): one that runs or waits, or the last one recorded if the event
        is of its kind (a lost side's step, skipped, then reads the survivor); else the
        next step that can run it (by its type)."""
        if not self.run.step_records:
            return self.find(candidates)
        in_hand: dict[str, str] = {}
        last: str | None = None
        for r in self.run.step_records:
            if r.event_id is not None and r.event_id > event_id:
                break
            in_hand[r.step] = r.status
            last = r.step if r.status != "pending" else last
        busy = [k for k, st in in_hand.items() if st not in ("pending", "done", "skipped")]
        if busy:
            return self.index.get(busy[-1])
        return self.index.get(last) if last in candidates else None

    def find(self, candidates: list[str]) -> int | None:
        lo = max(self.p, 0)
        for j in range(lo, len(self.steps)):
            if self.steps[j].id in candidates:
                return j
        return None

    def progress(self, when: datetime) -> None:
        self.last_progress = when

    def finish(self, s: StepTrack, when: datetime) -> None:
        s.ended_at = when

    def seen(self, sig: SignalRecord) -> datetime:
        """When the workflow handled a signal or update."""
        if sig.task_event is not None:
            return self.run.task_at(sig.task_event) or sig.at
        return self.clock(sig.event_id, sig.at)

    # -- the walk -------------------------------------------------------------------------
    def walk(self) -> Reconstruction:
        run = self.run
        items: list[tuple[int, int, Any]] = []
        for a in run.activities:
            items.append((a.scheduled_event, 0, a))
            if a.end_event:
                items.append((a.end_event, 1, a))
        for c in run.children:
            items.append((c.initiated_event, 0, c))
            if c.end_event:
                items.append((c.end_event, 1, c))
        for sig in run.signals:
            items.append((sig.event_id, 0, sig))
        for t in run.timers:
            items.append((t.event_id, 0, t))
        items.sort(key=lambda x: (x[0], x[1]))
        self.note(run.started_at, 1, "(run)", self._start_text())
        for eid, phase, obj in items:
            if isinstance(obj, ActivityCall):
                self.on_activity(obj) if phase == 0 else self.on_activity_end(obj)
            elif isinstance(obj, ChildCall):
                self.on_child(obj) if phase == 0 else self.on_child_end(obj)
            elif isinstance(obj, SignalRecord):
                self.on_signal(obj)
            elif isinstance(obj, TimerRecord):
                obj.step = self.cur.id if self.cur else None
                secs = f" ({obj.seconds:g} s)" if obj.seconds else ""
                self.note(obj.started_at, eid, obj.step or "(run)", f"timer{secs}: {obj.outcome}")
        self.on_close()
        self.out.entries.sort(key=lambda x: (x.event_id, x.at))
        return self.out

    def _start_text(self) -> str:
        run = self.run
        inp = run.input if isinstance(run.input, dict) else {}
        # A control's input names its operator.
        who = inp.get("initiator") or inp.get("operator") or run.memo.get("initiator") or "unknown"
        what = direction(run.workflow_type, run.input)
        return f"{run.workflow_type} started{' (' + what + ')' if what else ''} by {who}"

    def on_activity(self, a: ActivityCall) -> None:
        cur = self.cur
        if not self.steps:
            label = "(run)"
        elif self.abort is not None and not (
            cur is not None and cur.status == "running" and self.find(activity_steps(a)) == self.p
        ):
            label = "(abort)"  # after an abort: reading where the devices ended up
        elif not self.started and a.type in BOOTSTRAP_ACTIVITIES:
            label = "(bootstrap)"
        else:
            j = self.step_of(a.scheduled_event, activity_steps(a))
            if j is not None:
                s = self.enter(j, a.scheduled_event, a.scheduled_at, a.type)
            elif cur is not None and not self.settled(cur):
                s = cur  # an activity inside the step (e.g. a read before the real work)
            else:
                s = None
                if self.started and a.type not in BETWEEN_STEPS:
                    self.out.approximate.append(
                        f"activity {a.type} (event {a.scheduled_event}) belongs to no step"
                    )
            if s is not None:
                a.step = s.id
                if s.status in ("failed", "pending", "awaiting-confirmation", "awaiting-approval"):
                    self.messages[s.id] = []
                if a.type in ("insync_run", "allsync_run"):
                    s.automatic, s.operator = True, outcomes.AUTOMATIC
                s.status, s.error = "running", None
                s.events.append(a.scheduled_event)
                self.inflight[a.scheduled_event] = s.id
            label = a.step or "(between steps)"
        text = f"{a.type} {summarize(a.input)}".rstrip()
        self.labels[a.scheduled_event] = label
        self.note(a.scheduled_at, a.scheduled_event, label, text)

    def on_activity_end(self, a: ActivityCall) -> None:
        assert a.end_event is not None and a.ended_at is not None
        self.inflight.pop(a.scheduled_event, None)
        label = a.step or self.labels.get(a.scheduled_event, "(run)")
        took = f" ({_took(a.seconds)})" if a.seconds is not None else ""
        retried = f", attempt {a.attempt}" if a.attempt > 1 else ""
        if a.outcome == "completed":
            self.note(a.ended_at, a.end_event, label, f"{a.type} done{took}: {summarize(a.result)}")
        elif a.outcome == "canceled":
            self.note(a.ended_at, a.end_event, label, f"{a.type} canceled{took}", "warning")
        else:
            self.note(
                a.ended_at,
                a.end_event,
                label,
                f"{a.type} {a.outcome}{took}{retried}: {a.error}",
                "error",
            )
        if a.last_failure:
            self.note(
                a.started_at or a.ended_at,
                a.end_event,
                label,
                f"{a.type} needed {a.attempt} attempts; attempt {a.attempt - 1} failed: "
                f"{a.last_failure}",
                "warning",
            )
        when = self.clock(a.end_event, a.ended_at)
        self.progress(when)
        if a.type == "probe_pair" and not self.started:
            self.bootstrap_done = True
            self.pass_over_unplanned(when)
        if a.type == "get_capabilities" and isinstance(a.result, dict):
            self.operators = {str(x).lower() for x in a.result.get("operators") or []}
        if a.step is None:
            return
        s = self.steps[self.index[a.step]]
        s.events.append(a.end_event)
        if a.outcome in ("failed", "timed-out") and self.on_lost_side(a, s):
            s.status, s.outcome = "skipped", "side-lost"
            s.reason = outcomes.side_lost_reason(a.error or "")
            s.note = outcomes.skipped_note(s.reason)
            self.lost.add(s.id)
            self.finish(s, when)
            return
        if a.outcome in ("failed", "timed-out"):
            s.status, s.error = "failed", a.error
            return
        if a.outcome != "completed":
            return
        if s.id in self.lost:  # stop-replication: the surviving side's own processes
            s.status = "skipped"
            also = f"; on {a.input.get('side')}: {summarize(a.result)}"
            s.note, s.reason = f"{s.note}{also}", f"{s.reason}{also}"
            return
        if a.type in VERIFY_ACTIVITIES and isinstance(a.result, dict):
            running, host = bool(a.result.get("running")), str(a.result.get("host", "?"))
            seen = outcomes.tool_seen(
                VERIFY_ACTIVITIES[a.type], s.id.startswith("start-"), running, host
            )
            if seen is None:
                s.status, s.message, s.outcome = "done", outcomes.VERIFIED, "verified"
                self.finish(s, when)
            else:
                s.status = "awaiting-confirmation"
                s.message = outcomes.not_verified(seen)
                self.note(a.ended_at, a.end_event, s.id, f"{s.id}: {s.message}", "warning")
            return
        if s.id in CLIENT_STEPS and a.type == "probe_pair":
            # the clients step read the pair; the children (if any) come next
            if not self.busy(s) and not s.clients:
                s.status, s.message, s.clients = "done", outcomes.NO_CLIENTS, []
                s.outcome = "done"
                self.finish(s, when)
            return
        msg = summarize(a.result)
        if msg:
            self.messages.setdefault(s.id, []).append(msg)
            s.message = "; ".join(self.messages[s.id])
        if not self.busy(s) and s.clients is None:
            s.status = "done"
            s.outcome = "automatic" if s.automatic else "done"
            self.finish(s, when)
        if a.type == "find_orphans" and isinstance(a.result, dict) and not a.result.get("clips"):
            self.pass_over(when)

    # -- unplanned switches (workflows/unplanned.py) ------------------------------------------
    @property
    def unplanned(self) -> dict[str, Any] | None:
        inp = self.run.input
        if self.run.workflow_type == "switch" and isinstance(inp, dict) and inp.get("unplanned"):
            return inp
        return None

    def pass_over_unplanned(self, when: datetime) -> None:
        """The steps an unplanned switch does not do are passed over once it has read the pair."""
        inp = self.unplanned
        if inp is None:
            return
        to = str(inp.get("to"))
        for step_id in NOT_UNPLANNED:
            j = self.index.get(step_id)
            if j is None or self.steps[j].status != "pending":
                continue
            s = self.steps[j]
            s.status, s.passed_over, s.outcome = "skipped", True, "passed-over"
            s.note = outcomes.not_unplanned_note(other(to), to)  # type: ignore[arg-type]
            s.started_at = s.ended_at = when

    def on_lost_side(self, a: ActivityCall, s: StepTrack) -> bool:
        """In an unplanned switch, a failed one-try at the lost side skips its step."""
        inp = self.unplanned
        if inp is None or not isinstance(a.input, dict):
            return False
        lost = other(str(inp.get("to")))  # type: ignore[arg-type]
        return a.input.get("side") == lost and s.id in lost_side_steps(lost)

    def pass_over(self, when: datetime) -> None:
        """restore with no orphans: the engine passes over the purge gate and the purge."""
        for step_id, why in outcomes.NO_ORPHANS.items():
            j = self.index.get(step_id)
            if j is None or self.steps[j].status != "pending":
                continue
            s = self.steps[j]
            s.status, s.note, s.passed_over, s.outcome = "skipped", why, True, "passed-over"
            s.started_at = s.ended_at = when
            self.p = max(self.p, j)

    def on_child(self, c: ChildCall) -> None:
        if c.workflow_type == "fence":
            side = c.input.get("side") if isinstance(c.input, dict) else "?"
            self.note(
                c.initiated_at,
                c.initiated_event,
                self.cur.id if self.cur else "(run)",
                f"fence on {side} started ({c.workflow_id}): it fences {side} the moment it "
                "answers again",
            )
            return
        host = c.host or c.workflow_id
        j = self.step_of(c.initiated_event, list(CLIENT_STEPS))
        cur = self.cur
        s: StepTrack | None
        if j is not None:
            s = self.enter(j, c.initiated_event, c.initiated_at, f"child {host}")
        else:
            s = cur
        if s is not None:
            c.step = s.id
            s.status = "running"
            s.clients = s.clients if s.clients is not None else []
            ct = s.client(host)
            if ct is None:
                ct = ClientTrack(host=host, to=c.to)
                s.clients.append(ct)
            ct.status, ct.error = "switching", None
            ct.attempts += 1
            ct.started_at = c.initiated_at
            ct.workflow_ids.append(c.workflow_id)
            s.events.append(c.initiated_event)
            self.inflight[c.initiated_event] = s.id
        to = f" to {c.to}" if c.to else ""
        self.note(
            c.initiated_at, c.initiated_event, c.step or "(run)", f"{host}: switch{to} started"
        )

    def on_child_end(self, c: ChildCall) -> None:
        assert c.end_event is not None and c.ended_at is not None
        if c.workflow_type == "fence":
            return  # the fence outlives the switch; its end is not in this history
        self.inflight.pop(c.initiated_event, None)
        host = c.host or c.workflow_id
        took = (c.ended_at - c.initiated_at).total_seconds()
        if c.ok:
            self.note(c.ended_at, c.end_event, c.step or "(run)", f"{host}: {c.message}")
        else:
            self.note(
                c.ended_at,
                c.end_event,
                c.step or "(run)",
                f"{host}: client switch failed after {_took(took)}: {c.error}",
                "error",
            )
        when = self.clock(c.end_event, c.ended_at)
        self.progress(when)
        if c.step is None:
            return
        s = self.steps[self.index[c.step]]
        s.events.append(c.end_event)
        ct = s.client(host)
        if ct is not None:
            ct.ended_at, ct.seconds = c.ended_at, c.seconds if c.seconds is not None else took
            if c.ok:
                ct.status, ct.message, ct.error = "done", c.message, None
            else:
                ct.status, ct.error = "failed", c.error
                ct.earlier_errors.append(c.error or "failed")
            if c.outcome != "completed":  # the child itself failed: the step fails
                s.status, s.error = "failed", c.error
                return
        self._clients_settled(s, when)

    def _clients_settled(self, s: StepTrack, when: datetime) -> None:
        clients = s.clients or []
        if self.busy(s) or any(c.status in ("switching", "failed") for c in clients):
            return
        s.message = outcomes.clients_switched(
            [c.seconds or 0 for c in clients if c.status == "done"],
            [c.host for c in clients if c.status == "skipped"],
        )
        s.status, s.outcome = "done", "done"
        self.finish(s, when)

    def recorded_rejection(self, sig: SignalRecord) -> str | None:
        """The engine's own reason, where it recorded rejecting this signal (the first
        record after it of the same signal, step and operator)."""
        step, who = ("?", "?") if sig.malformed is not None else (sig.step, sig.operator)
        want = (cut(sig.name, MAX_NAME), cut(step, MAX_NAME), cut(who, MAX_NAME))
        for n, (eid, r) in enumerate(self.rejections):
            if eid > sig.event_id and (r.signal, r.step, r.operator) == want:
                del self.rejections[n]
                return r.reason
        return None

    def on_signal(self, sig: SignalRecord) -> None:
        recorded = self.recorded_rejection(sig) if self.rejections else None
        if recorded is not None:
            if sig.malformed is not None:
                sig.step, sig.operator = "?", "?"
            self.reject(sig, recorded)  # as the engine said it
        elif sig.malformed is not None and sig.name in ("confirm", "approve", "decide"):
            sig.step, sig.operator = "?", "?"
            self.reject(sig, f"malformed payload: {sig.malformed}")
        elif sig.update_refused is not None:
            self.reject(sig, sig.update_refused)  # the workflow's own answer
        elif self.operators and sig.operator.lower() not in self.operators:
            self.reject(sig, f"{sig.operator} is not an operator of this pair")
        elif sig.name in ("confirm", "approve"):
            self.on_confirm(sig)
        elif sig.name == "decide":
            self.on_decide(sig)
        else:
            sig.verdict, sig.rejection = "rejected", f"the workflow has no signal {sig.name!r}"
        if recorded is None and self.verdicts_recorded and sig.verdict == "rejected":
            # The engine did not reject it: the events alone misjudged it.
            self.out.approximate.append(
                f"signal {sig.name} {sig.step} (event {sig.event_id}) was accepted by the "
                f"workflow, but the events before it suggest: {sig.rejection}"
            )
            sig.verdict, sig.rejection = "accepted", None
        who = f" by {sig.operator}"
        if sig.name == "decide":
            target = f"{sig.step} {sig.client}" if sig.client else sig.step
            text = f"decide {sig.action} {target}{who}".replace("  ", " ")
            text += f": {sig.reason}" if sig.reason else ""
        else:
            text = f"{sig.name} {sig.step}{who}" + (f': "{sig.note}"' if sig.note else "")
            if sig.clients:
                text += f" (clients {', '.join(sig.clients)})"
        if sig.via and sig.via != sig.identity:
            text += f" (via {sig.via})"
        level = "info"
        if sig.verdict == "rejected":
            text += f" -- REJECTED: {sig.rejection}"
            level = "warning"
        elif sig.verdict == "ignored":
            text += " -- ignored: the run is already aborting"
        if sig.update_error:
            text += f" -- the update failed: {sig.update_error}"
        if sig.channel == "update" and sig.verdict == "rejected" and not sig.update_refused:
            self.out.approximate.append(
                f"update {sig.name} {sig.step} (event {sig.event_id}) was accepted by the "
                f"workflow, but the events before it suggest: {sig.rejection}"
            )
        label = sig.step if sig.step in self.index else "(run)"
        self.note(sig.at, sig.event_id, label, text, level)

    def reject(self, sig: SignalRecord, reason: str) -> None:
        sig.verdict, sig.rejection = "rejected", reason

    def on_confirm(self, sig: SignalRecord) -> None:
        kind = sig.name
        want = {"confirm": "awaiting-confirmation", "approve": "awaiting-approval"}[kind]
        j = self.index.get(sig.step)
        if j is None:
            return self.reject(sig, f"no step {sig.step!r} in this workflow")
        s = self.steps[j]
        status = self.effective(j)
        if status != want:
            if s.kind == "auto":
                reason = f"{s.id} is automatic; it cannot be {kind}ed"
            elif kind == "confirm" and s.kind == "gate":
                reason = f"{s.id} is a gate: use approve"
            elif kind == "approve" and s.kind == "manual":
                reason = f"{s.id} is a manual step: use confirm"
            else:
                reason = f"{s.id} is {status}, not {want}"
            return self.reject(sig, reason)
        sig.verdict = "accepted"
        s = self.enter(j, sig.event_id, sig.at, f"{kind} {sig.step}")
        s.operator, s.note = sig.operator, sig.note
        s.status, s.outcome = "done", "approved" if s.kind == "gate" else "confirmed"
        s.events.append(sig.event_id)
        s.signals.append(sig.event_id)
        self.progress(self.seen(sig))
        self.finish(s, self.seen(sig))
        return None

    def on_decide(self, sig: SignalRecord) -> None:
        action = sig.action
        if action is None:
            return self.reject(sig, "not a decision (step, action, operator, reason)")
        if action in ("skip", "abort") and not (sig.reason or "").strip():
            return self.reject(sig, f"{action} needs a reason")
        if action == "abort":
            if self.abort is None:
                self.abort, sig.verdict = sig, "accepted"
                self.out.abort = sig
            else:
                sig.verdict = "ignored"
            return None
        j = self.index.get(sig.step)
        if j is None:
            return self.reject(sig, f"no step {sig.step!r} in this workflow")
        s = self.steps[j]
        status = self.effective(j)
        if s.clients is not None and (sig.client or s.failed_clients):
            targets = [c for c in s.failed_clients if sig.client in (None, c.host)]
            if not targets:
                failed = ", ".join(c.host for c in s.failed_clients) or "none"
                reason = f"no failed client {sig.client or ''} in {s.id} (failed: {failed})"
                return self.reject(sig, reason.replace("  ", " "))
            sig.verdict = "accepted"
            for c in targets:
                if action == "skip":
                    c.status, c.message = (
                        "skipped",
                        outcomes.client_skipped(sig.operator, sig.reason),
                    )
                else:
                    c.status = "switching"  # the engine starts it again right away
            s.events.append(sig.event_id)
            s.signals.append(sig.event_id)
            self.progress(self.seen(sig))
            self._clients_settled(s, self.seen(sig))
            return None
        waiting = status in ("awaiting-confirmation", "awaiting-approval")
        if status == "failed" or (action == "skip" and waiting):
            sig.verdict = "accepted"
            s = self.enter(j, sig.event_id, sig.at, f"decide {action} {sig.step}")
            s.events.append(sig.event_id)
            s.signals.append(sig.event_id)
            self.progress(self.seen(sig))
            if action == "skip":
                s.status, s.operator, s.note = (
                    "skipped",
                    sig.operator,
                    outcomes.skipped_note(sig.reason),
                )
                s.outcome, s.reason = "skipped", sig.reason
                self.finish(s, self.seen(sig))
            else:
                s.status = "running"
            return None
        return self.reject(sig, f"{s.id} is {status}; only a failed step can be retried or skipped")

    def on_close(self) -> None:
        run = self.run
        if run.status == "completed":
            if self.abort is not None:
                self.out.state = "aborted"
                for s in self.steps:
                    if s.status in (
                        "awaiting-confirmation",
                        "awaiting-approval",
                        "running",
                        "failed",
                    ):
                        s.status, s.outcome = "skipped", "aborted"
                        s.note = outcomes.aborted_note(s.note)
            else:
                self.out.state = "completed"
            nxt = self.p + 1
            if (
                self.abort is None
                and not run.step_records  # else the records say what each step became
                and nxt < len(self.steps)
                and run.workflow_type in ("switch", "split", "split-switch", "restore")
                and self.started
            ):
                self.out.approximate.append(
                    f"the run completed but steps from {self.steps[nxt].id} on have no events"
                )
        elif run.status == "continued-as-new":
            self.out.state = "completed"
        else:
            # Not completed (still running, failed, terminated...): the step after the last
            # one that finished was waiting for the operator, if it is a manual step or gate.
            if 0 <= self.p + 1 < len(self.steps) and self.started:
                j = self.p + 1
                eff = self.effective(j)
                if eff.startswith("await"):
                    s = self.steps[j]
                    s.status = eff  # type: ignore[assignment]
                    if s.started_at is None:
                        s.started_at = self.last_progress or run.last_event_at
            waiting = any(s.needs_operator for s in self.steps)
            if run.status in STATE_OF_STATUS:
                self.out.state = STATE_OF_STATUS[run.status]
            else:
                self.out.state = "awaiting-operator" if waiting else "running"
        if run.close_event is not None and run.ended_at is not None:
            end = run.status + (f": {run.close_message}" if run.close_message else "")
            if run.status == "completed" and run.checklist is not None:
                end += f" ({run.checklist.state}: {run.checklist.message or ''})"
            elif run.status == "completed" and self.abort is not None:
                end += " (aborted)"
            level = "info" if run.status in ("completed", "continued-as-new") else "error"
            self.note(run.ended_at, run.close_event, "(run)", f"run {end}", level)


# -- comparing with the engine's own record ------------------------------------------------
def _secs(ts: datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") if ts is not None else None


def check_against_checklist(rec: Reconstruction, checklist: Checklist) -> list[str]:
    """Where the events and the run's own checklist disagree (empty: they agree)."""
    out: list[str] = []
    by_id = {s.id: s for s in rec.steps}
    for cs in checklist.steps:
        es = by_id.get(cs.id)
        if es is None:
            out.append(f"step {cs.id}: in the checklist, not in the events' step table")
            continue
        if es.status != cs.status:
            out.append(f"step {cs.id}: checklist says {cs.status}, the events say {es.status}")
        if cs.operator and es.operator and cs.operator != es.operator:
            out.append(
                f"step {cs.id}: checklist says by {cs.operator}, the events say {es.operator}"
            )
        for what, want, got in (
            ("started", cs.started_at, _secs(es.started_at)),
            ("ended", cs.ended_at, _secs(es.ended_at)),
        ):
            if want and got and want != got:
                out.append(f"step {cs.id}: checklist says {what} {want}, the events say {got}")
        for cc in cs.clients or []:
            ec = es.client(cc.host)
            if ec is None:
                out.append(f"step {cs.id}: client {cc.host} has no child workflow in the events")
            elif ec.status != cc.status:
                out.append(
                    f"step {cs.id}: client {cc.host} is {cc.status} in the checklist, "
                    f"{ec.status} in the events"
                )
    accepted = [
        s
        for s in rec.signals
        if s.name == "decide" and s.verdict == "accepted" and s.action is not None
    ]
    if len(accepted) != len(checklist.decisions):
        out.append(
            f"{len(checklist.decisions)} decision(s) in the checklist, "
            f"{len(accepted)} accepted decide signal(s) in the events"
        )
    rejected = [s for s in rec.signals if s.verdict == "rejected"]
    if len(rejected) != len(checklist.rejected):
        out.append(
            f"{len(checklist.rejected)} rejected signal(s) in the checklist, "
            f"{len(rejected)} judged rejected from the events"
        )
    return out
