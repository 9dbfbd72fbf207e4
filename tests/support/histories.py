"""Committed histories and histories built from them, for the history, report and codec
tests: the committed runs of tests/histories/v1, cut short, with a signal added, or with
a step that failed."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from records.history import RunHistory, history_from_json, load_history_file, parse_history

# The histories these tests were written against (recorded before four patches).
HISTORIES = Path(__file__).parents[1] / "histories" / "v1"


def events_of(name: str) -> list[dict[str, Any]]:
    return json.loads((HISTORIES / name).read_text())["events"]


def until(events: list[dict[str, Any]], last: int) -> list[dict[str, Any]]:
    return [e for e in events if int(e["eventId"]) <= last]


def event(events: list[dict[str, Any]], event_id: int) -> dict[str, Any]:
    return next(e for e in events if int(e["eventId"]) == event_id)


def payload(value: Any) -> dict[str, Any]:
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(json.dumps(value).encode()).decode(),
    }


def decoded(p: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(p["data"]))


def signal(eid: int, at: str, name: str, value: Any, identity: str = "4242@ops") -> dict[str, Any]:
    return {
        "eventId": str(eid),
        "eventTime": at,
        "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        "workflowExecutionSignaledEventAttributes": {
            "signalName": name,
            "input": {"payloads": [payload(value)]},
            "identity": identity,
        },
    }


def run_of(events: list[dict[str, Any]], name: str = "synthetic.json") -> RunHistory:
    return parse_history(history_from_json({"events": events}, name), name)


def committed(name: str) -> RunHistory:
    return parse_history(load_history_file(HISTORIES / name), name)


def failed_replication(skip: bool = False) -> list[dict[str, Any]]:
    """switch-x-to-y with start-replication failing (and, if `skip`, skipped by the lead)."""
    events = until(events_of("switch-x-to-y.json"), 131)
    done = event(events, 128)
    assert event(events, 126)["activityTaskScheduledEventAttributes"]["activityType"] == {
        "name": "dsm_start_replication"
    }
    failed = {
        "eventId": "128",
        "eventTime": done["eventTime"],
        "eventType": "EVENT_TYPE_ACTIVITY_TASK_FAILED",
        "activityTaskFailedEventAttributes": {
            "failure": {
                "message": "dsm-y: replication failed; last counts {'dsm-y': 120, 'dsm-x': 0}",
                "applicationFailureInfo": {"type": "ReplicationFailed"},
            },
            "scheduledEventId": "126",
            "startedEventId": "127",
            "retryState": "RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED",
        },
    }
    events[events.index(done)] = failed
    if skip:
        events.append(
            signal(
                132,
                "2026-11-25T09:38:35Z",
                "decide",
                {
                    "step": "start-replication",
                    "action": "skip",
                    "operator": "lead",
                    "reason": "started by hand from the console",
                },
            )
        )
    return events
