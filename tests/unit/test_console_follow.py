"""The console's reading of histories (api/follow.py): the pair watch's readings
taken from its events, with the time the watch gives them, and which events may change
a run's checklist."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from api.follow import WatchReadings, changes_checklist, step_records
from tests.unit.test_console_gates import status
from wire.codec import data_converter


def event(
    event_id: int, kind: int, at: str = "2026-12-01T10:00:00.700", **attrs: object
) -> HistoryEvent:
    e = HistoryEvent(event_id=event_id, event_type=kind)  # type: ignore[arg-type]
    e.event_time.FromDatetime(datetime.fromisoformat(at))
    for name, fields in attrs.items():
        getattr(e, name).MergeFrom(type(getattr(e, name))(**fields))  # type: ignore[arg-type]
    return e


async def test_a_reading_is_the_probe_activitys_result_at_its_workflow_tasks_time() -> None:
    conv = data_converter(None)
    (payload,) = await conv.encode([status(118, 120)])
    scheduled = {"activity_type": {"name": "probe_pair"}}
    other = {"activity_type": {"name": "get_timing"}}
    events = [
        event(3, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, "2026-12-01T10:00:00.400"),
        event(
            5,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            activity_task_scheduled_event_attributes=other,
        ),
        event(9, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, "2026-12-01T10:00:15.900"),
        event(
            11,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            activity_task_scheduled_event_attributes=scheduled,
        ),
        event(
            13,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            activity_task_completed_event_attributes={
                "scheduled_event_id": 11,
                "result": {"payloads": [payload]},
            },
        ),
        # get_timing's end is not a reading
        event(
            14,
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            activity_task_failed_event_attributes={"scheduled_event_id": 5},
        ),
    ]
    readings = WatchReadings(conv)
    got = await readings.feed(events[:4])
    assert got == []  # scheduled, not yet done
    got = await readings.feed(events[4:])
    assert len(got) == 1
    event_id, reading = got[0]
    assert event_id == 13 and reading is not None
    st, read_at = reading
    assert st == status(118, 120)
    # workflow.now() of the task that scheduled it, as workflows/watch.py writes read_at
    want = datetime(2026, 12, 1, 10, 0, 15, 900000, tzinfo=UTC).isoformat(timespec="seconds")
    assert read_at == want == "2026-12-01T10:00:15+00:00"


async def test_a_reading_that_failed_is_said_so_by_its_event() -> None:
    readings = WatchReadings(data_converter(None))
    scheduled = {"activity_type": {"name": "probe_pair"}}
    got = await readings.feed(
        [
            event(
                11,
                EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                activity_task_scheduled_event_attributes=scheduled,
            ),
            event(
                12,
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                activity_task_timed_out_event_attributes={"scheduled_event_id": 11},
            ),
        ]
    )
    assert got == [(12, None)]


def test_only_a_completed_workflow_task_or_the_close_may_change_a_checklist() -> None:
    assert not changes_checklist([])
    assert not changes_checklist(
        [
            event(7, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
            event(8, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
            event(9, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
        ]
    )
    assert changes_checklist([event(10, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)])
    assert changes_checklist([event(10, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)])


async def test_step_records_are_read_from_the_runs_memo_events() -> None:
    conv = data_converter(None)
    recs = [
        {"step": "stop-insync", "at": "2026-12-01T10:00:00.250+00:00", "status": "done",
         "outcome": "done", "operator": "ann", "note": "stopped by hand"},
        {"step": "insync-y-main", "at": "2026-12-01T10:00:00.250+00:00", "status": "running"},
    ]  # fmt: skip
    (payload,) = await conv.encode([recs])
    (other,) = await conv.encode([{"total": 1, "last": []}])
    (bad,) = await conv.encode([["not a record"]])
    events = [
        event(20, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        event(
            21,
            EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
            workflow_properties_modified_event_attributes={
                "upserted_memo": {"fields": {"amsm-steps": payload, "amsm-rejected": other}}
            },
        ),
        event(
            22,
            EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
            workflow_properties_modified_event_attributes={
                "upserted_memo": {"fields": {"amsm-steps": bad}}
            },
        ),
    ]
    got = await step_records(conv, events)
    assert [(e, r.step, r.status) for e, r in got] == [
        (21, "stop-insync", "done"),
        (21, "insync-y-main", "running"),
    ]
    assert got[0][1].operator == "ann" and got[0][1].note == "stopped by hand"
