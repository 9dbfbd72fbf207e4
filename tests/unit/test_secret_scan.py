"""The secret scan can fail: secrets planted where a history keeps payloads are found,
where the JSON text of the history (payloads in base64) did not show them (issue 14,
item 12)."""

from __future__ import annotations

import base64
import json
import os

import pytest
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from tests.support import secret_scan as scan
from wire.codec import AesGcmCodec

SECRET = "Zq8-lab-dsm-password-4711xyz"


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def history(*events: HistoryEvent) -> WorkflowHistory:
    for i, e in enumerate(events, 1):
        e.event_id = i
    return WorkflowHistory("wf", list(events))


def found(h: WorkflowHistory, decrypt: scan.Decrypt | None = None) -> list[str]:
    return scan.leaked([SECRET], [t for e in h.events for t in scan.texts(e, decrypt)])


def activity_result(p: Payload) -> HistoryEvent:
    e = HistoryEvent()
    e.activity_task_completed_event_attributes.result.CopyFrom(Payloads(payloads=[p]))
    return e


def test_a_secret_in_an_activity_result_is_found_though_the_json_hides_it() -> None:
    h = history(activity_result(json_payload({"message": f"logged on with {SECRET}"})))
    assert SECRET not in h.to_json()  # what the old scan searched: base64
    assert found(h) == [SECRET[:6] + "..."]


@pytest.mark.parametrize(
    "where",
    [
        "workflow-input",
        "signal",
        "update",
        "nested-failure-cause",
        "failure-details",
        "heartbeat-details",
        "memo",
        "search-attribute",
        "header",
        "base64-in-a-string",
        "json-escaped",
    ],
)
def test_secrets_are_found_in_every_place_a_payload_lives(where: str) -> None:
    p = json_payload({"note": SECRET})
    e = HistoryEvent()
    secret = SECRET
    if where == "workflow-input":
        e.workflow_execution_started_event_attributes.input.payloads.append(p)
    elif where == "signal":
        e.workflow_execution_signaled_event_attributes.input.payloads.append(p)
    elif where == "update":
        req = e.workflow_execution_update_accepted_event_attributes.accepted_request
        req.input.args.payloads.append(p)
    elif where == "nested-failure-cause":
        inner = Failure(message="Encoded failure", encoded_attributes=p)
        outer = Failure(message="activity failed", cause=inner)
        e.activity_task_failed_event_attributes.failure.CopyFrom(outer)
    elif where == "failure-details":
        f = e.workflow_execution_failed_event_attributes.failure
        f.application_failure_info.details.payloads.append(p)
    elif where == "heartbeat-details":
        f = e.activity_task_timed_out_event_attributes.failure
        f.timeout_failure_info.last_heartbeat_details.payloads.append(p)
    elif where == "memo":
        e.workflow_execution_started_event_attributes.memo.fields["note"].CopyFrom(p)
    elif where == "search-attribute":
        sa = e.workflow_execution_started_event_attributes.search_attributes
        sa.indexed_fields["AmsmInitiator"].CopyFrom(p)
    elif where == "header":
        e.workflow_execution_started_event_attributes.header.fields["x"].CopyFrom(p)
    elif where == "base64-in-a-string":
        hidden = base64.b64encode(f"user:{SECRET}".encode()).decode()
        e.activity_task_completed_event_attributes.result.payloads.append(
            json_payload({"blob": hidden})
        )
    elif where == "json-escaped":
        secret = "pässwörd-ünïcode-" + SECRET
        e.activity_task_completed_event_attributes.result.payloads.append(
            Payload(
                metadata={"encoding": b"json/plain"},
                data=json.dumps({"note": secret}, ensure_ascii=True).encode(),
            )
        )
    h = history(e)
    assert secret not in h.to_json()
    assert scan.leaked([secret], [t for ev in h.events for t in scan.texts(ev)]), where


async def test_encrypted_payloads_are_searched_decrypted() -> None:
    codec = AesGcmCodec({"k1": os.urandom(32)}, "k1")
    [enc] = await codec.encode([json_payload({"note": SECRET})])
    h = history(activity_result(enc))
    assert found(h) == []  # ciphertext: nothing to see without the key
    assert found(h, codec.decode_one) == [SECRET[:6] + "..."]


def test_a_clean_history_passes() -> None:
    h = history(activity_result(json_payload({"message": "DSM dsm-x set to main"})))
    assert found(h) == []
