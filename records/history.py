"""A run read from its workflow history alone: no query, no worker, no server needed.

The history (as `temporal workflow show --output json` prints it, or as the server hands
it to `fetch_history`) is the record of what happened: the run's input, every activity
with its input, result or the device's error text, every child workflow (one per client
switch), every signal and update (who confirmed, approved or decided what, with their
note or reason), timers, the engine's step and rejection records, and how the run
ended. `parse_history` decodes it with the worker's data converter into a `RunHistory`
(encrypted payloads first through the codec: `readable`); what each step became is
records/reconstruct.py's.
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
from pydantic import BaseModel, Field, ValidationError
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, StartChildWorkflowExecutionFailedCause
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec

from activities.models import ClientBatchResult, ClientSwitchResult
from inventory.models import Side
from wire.payloads import REASONS
from wire.payloads import reason as undecodable_reason
from workflows.checklist import REJECTED_RECORDS, STEP_RECORDS
from workflows.inputs import BadPayload, read_payload
from workflows.kinds import KINDS
from workflows.models import (
    Checklist,
    ClientBatchInput,
    ClientSwitchInput,
    Decision,
    OperatorSignal,
    RejectedSignal,
    StepDef,
    StepRecord,
)
from workflows.signing import STARTED_BY

T = TypeVar("T", bound=BaseModel)

RunStatus = Literal[
    "completed", "failed", "terminated", "canceled", "timed-out", "continued-as-new", "running"
]


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
    # Accepted or rejected (with the engine's reason): as the engine recorded it, or for
    # runs older than its records as the walk judges it (records/reconstruct.py).
    verdict: Literal["accepted", "rejected", "unknown"] = "unknown"
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


def _started(history: WorkflowHistory, source: str, events: list[HistoryEvent]) -> RunHistory:
    """The run as its first event starts it (its input, memo and parent)."""
    first = events[0]
    st = first.workflow_execution_started_event_attributes
    return RunHistory(
        source=source,
        workflow_id=history.workflow_id,
        run_id=st.original_execution_run_id or st.first_execution_run_id,
        workflow_type=st.workflow_type.name,
        task_queue=st.task_queue.name,
        input=decode_value(st.input),
        memo={k: decode_payload(v) for k, v in st.memo.fields.items()},
        parent_workflow_id=st.parent_workflow_execution.workflow_id or None,
        started_at=event_time(first),
        last_event_at=event_time(events[-1]),
        event_count=len(events),
    )


def _parse(history: WorkflowHistory, source: str) -> RunHistory:
    events = list(history.events)
    run = _started(history, source, events)
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
            if STARTED_BY in fields:  # who started it, proven (signed acts)
                run.memo[STARTED_BY] = decode_payload(fields[STARTED_BY])
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
            children[e.event_id] = _child_calls(e, at)
            run.children.extend(children[e.event_id])
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
            _update_completed(e, updates)
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


def _child_calls(e: HistoryEvent, at: datetime) -> list[ChildCall]:
    """A child workflow started: one ChildCall per client it switches (a client-batch
    child stands for several)."""
    c = e.start_child_workflow_execution_initiated_event_attributes
    inp = decode_value(c.input)
    batch = as_model(inp, ClientBatchInput) if isinstance(inp, dict) else None
    targets: list[tuple[str | None, Side | None]]
    if batch is not None and "clients" in inp:
        targets = [(t.host, t.to) for t in batch.clients]
    else:
        cs = as_model(inp, ClientSwitchInput)
        targets = [(cs.host, cs.to) if cs else (None, None)]
    return [
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


def _update_completed(e: HistoryEvent, updates: dict[str, SignalRecord]) -> None:
    """An update answered: its failure, or the refusal in its answer, on its record."""
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
        _fill(rec, a.input.payloads[0])
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
    if req.input.args.payloads:
        _fill(rec, req.input.args.payloads[0])
    return rec


def _fill(rec: SignalRecord, payload: Payload) -> None:
    """Who and what, as the workflow reads the payload (a malformed one is rejected, in
    the engine's words: workflows/inputs.py)."""
    model: type[OperatorSignal] | type[Decision]
    if rec.name in ("confirm", "approve"):
        model = OperatorSignal
    elif rec.name == "decide":
        model = Decision
    else:
        return
    try:
        value = read_payload(model, payload, pydantic_data_converter.payload_converter)
    except BadPayload as e:
        rec.malformed = str(e)
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
