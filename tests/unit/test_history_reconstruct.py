"""Reading runs from their histories alone: the committed histories, and histories of runs
that did not complete (cut short, terminated, a failed step), built from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from records import reconstruct as reconstruct_module
from records.history import (
    ActivityCall,
    HistoryError,
    RunHistory,
    SignalRecord,
    load_history_file,
    parse_history,
    step_table,
)
from records.reconstruct import check_against_checklist, reconstruct
from tests.support.histories import (
    HISTORIES,
    committed,
    event,
    events_of,
    failed_replication,
    payload,
    run_of,
    signal,
    until,
)
from workflows import rules
from workflows.models import RejectedSignal, StepRecord

ALL = sorted(HISTORIES.glob("*.json"))
CHECKLIST_RUNS = [p for p in ALL if not p.name.startswith("client-switch")]


# -- the committed histories --------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_every_committed_history_reads(path: Path) -> None:
    run = parse_history(load_history_file(path), path.name)
    assert run.status == "completed" and run.ended_at is not None
    assert run.run_id and run.event_count == len(json.loads(path.read_text())["events"])
    assert run.ended_at > run.started_at
    rec = reconstruct(run)
    assert rec.approximate == []
    if run.workflow_type != "client-switch":
        assert run.checklist is not None
        # The events and the engine's own record agree, to the second.
        assert check_against_checklist(rec, run.checklist) == []


EVERY = sorted(HISTORIES.parent.rglob("*.json"))


@pytest.mark.parametrize("path", EVERY, ids=[str(p.relative_to(HISTORIES.parent)) for p in EVERY])
def test_only_a_run_without_the_engines_records_is_walked(path: Path) -> None:
    """The frozen walk judges the steps of a big workflow's run recorded before the
    engine's step records (v1..v5); every other run is read from its records."""
    run = parse_history(load_history_file(path), path.name)
    walked: list[str] = []
    real = reconstruct_module.Walk

    def spy(r: RunHistory, defs: list[Any]) -> Any:
        walked.append(r.source)
        return real(r, defs)

    with mock.patch.object(reconstruct_module, "Walk", spy):
        rec = reconstruct(run)
    assert walked == ([] if run.step_records or not rec.steps else [path.name])
    assert bool(walked) == (path.parent.name.startswith("v") and bool(rec.steps))


@pytest.mark.parametrize("path", CHECKLIST_RUNS, ids=[p.name for p in CHECKLIST_RUNS])
def test_events_alone_give_the_checklist(path: Path) -> None:
    """Without the result (today's step table, events only) the walk finds what the
    engine recorded: status, who, note, error and every client's outcome."""
    run = parse_history(load_history_file(path), path.name)
    assert run.checklist is not None
    rec = reconstruct(run, step_table(run.workflow_type, run.input))
    assert [s.id for s in rec.steps] == [s.id for s in run.checklist.steps]
    for want, got in zip(run.checklist.steps, rec.steps, strict=True):
        assert (got.status, got.operator, got.note, got.error) == (
            want.status,
            want.operator,
            want.note,
            want.error,
        ), want.id
        assert [(c.host, c.status) for c in got.clients or []] == [
            (c.host, c.status) for c in want.clients or []
        ]
        if want.started_at:
            assert got.started_at is not None
            assert got.started_at.isoformat(timespec="seconds") == want.started_at
    assert rec.state == run.checklist.state


def test_a_switch_read_from_its_events() -> None:
    run = committed("switch-with-client-decisions.json")
    assert run.workflow_type == "switch" and run.input["to"] == "Y"
    assert run.patches == ["verify-manual-steps"]
    types = [a.type for a in run.activities]
    assert types[:2] == ["get_timing", "probe_pair"] and "dsm_start_replication" in types
    # Signals carry who and what; decisions their reason and client.
    decide = [s for s in run.signals if s.name == "decide"]
    assert [(s.action, s.client, s.operator, s.reason) for s in decide] == [
        ("skip", "ED-03", "jo", "broken PSU"),
        ("retry", None, "root", None),
    ]
    # Four child workflows: ED-02's second attempt has its own id.
    assert [c.workflow_id.rsplit("-", 2)[-2:] for c in run.children][-1] == ["02", "2"]
    failed = {c.host: c.error for c in run.children if c.ok is False}
    assert set(failed) == {"ED-02", "ED-03"}
    assert "did not come back within 3 s" in (failed["ED-03"] or "")
    rec = reconstruct(run)
    clients = {c.host: c for c in rec.step("switch-clients").clients or []}
    assert clients["ED-02"].attempts == 2 and clients["ED-02"].status == "done"
    assert clients["ED-02"].earlier_errors and clients["ED-03"].status == "skipped"
    # Every step's times come from the history, in order, each ending where the next starts.
    steps = rec.steps
    for a, b in zip(steps, steps[1:], strict=False):
        assert a.ended_at is not None and b.started_at is not None
        assert a.started_at is not None and a.started_at <= a.ended_at <= b.started_at
    assert steps[0].started_at is not None and steps[0].started_at > run.started_at
    assert steps[-1].ended_at is not None and steps[-1].ended_at <= (run.ended_at or run.started_at)


def test_a_signal_from_the_temporal_cli_says_so() -> None:
    run = committed("switch-x-to-y.json")
    first = run.signals[0]
    assert (first.step, first.operator, first.via) == ("stop-insync", "ui-user", "temporal CLI")


# -- runs that did not complete -------------------------------------------------------------
def test_a_run_still_running_when_exported() -> None:
    """Cut after both client switches failed: the run waits for a decision."""
    run = run_of(until(events_of("switch-with-client-decisions.json"), 107))
    assert run.status == "running" and run.checklist is None and run.ended_at is None
    rec = reconstruct(run)
    assert rec.state == "awaiting-operator"
    s = rec.step("switch-clients")
    assert s.status == "running"
    assert {c.host: c.status for c in s.clients or []} == {
        "ED-01": "done",
        "ED-02": "failed",
        "ED-03": "failed",
    }
    assert rec.step("dsm-y-main").status == "done"
    assert [x.status for x in rec.steps[11:]] == ["pending"] * 7


def test_a_terminated_run() -> None:
    events = until(events_of("switch-with-client-decisions.json"), 107)
    events.append(
        {
            "eventId": "108",
            "eventTime": "2026-11-25T09:38:10.5Z",
            "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED",
            "workflowExecutionTerminatedEventAttributes": {
                "reason": "lab torn down",
                "identity": "admin@ops",
            },
        }
    )
    run = run_of(events)
    assert run.status == "terminated"
    assert run.close_message == "terminated by admin@ops: lab torn down"
    rec = reconstruct(run)
    assert rec.state == "aborted"
    assert rec.entries[-1].text == "run terminated: terminated by admin@ops: lab torn down"


def test_a_failed_step_has_the_device_error() -> None:
    run = run_of(failed_replication())
    call = next(a for a in run.activities if a.type == "dsm_start_replication")
    assert call.outcome == "failed" and call.error_type == "ReplicationFailed"
    assert call.error == "dsm-y: replication failed; last counts {'dsm-y': 120, 'dsm-x': 0}"
    rec = reconstruct(run)
    s = rec.step("start-replication")
    assert (s.status, s.error) == ("failed", call.error)
    assert s.ended_at is None  # a failed step has not ended: it waits for a decision
    assert rec.state == "awaiting-operator"
    errors = [e for e in rec.entries if e.level == "error"]
    assert [e.step for e in errors] == ["start-replication"] and call.error in errors[0].text


def test_a_skipped_step_records_who_and_why() -> None:
    rec = reconstruct(run_of(failed_replication(skip=True)))
    s = rec.step("start-replication")
    assert (s.status, s.operator, s.note) == (
        "skipped",
        "lead",
        "skipped: started by hand from the console",
    )
    assert s.error and s.ended_at is not None
    # start-insync is now waiting for its confirmation.
    assert rec.step("start-insync").status == "awaiting-confirmation"


def test_signals_that_do_not_fit_are_judged_rejected_as_the_engine_would() -> None:
    events = until(events_of("switch-with-client-decisions.json"), 107)
    at = "2026-11-25T09:38:10.01Z"
    for n, (name, value) in enumerate(
        [
            ("confirm", {"step": "check-projects", "operator": "eve"}),
            ("approve", {"step": "stop-insync", "operator": "eve"}),
            ("confirm", {"step": "approve-overwrite", "operator": "eve"}),
            ("confirm", {"step": "no-such-step", "operator": "eve"}),
            ("decide", {"step": "switch-clients", "action": "skip", "operator": "eve"}),
            (
                "decide",
                {"step": "switch-clients", "action": "skip", "client": "ED-01"}
                | {"operator": "eve", "reason": "x"},
            ),
            ("decide", {"step": "dsm-x-backup", "action": "retry", "operator": "eve"}),
            (
                "decide",
                {"step": "switch-clients", "action": "skip", "client": "ED-03"}
                | {"operator": "jo", "reason": "broken PSU"},
            ),
        ],
        start=108,
    ):
        events.append(signal(n, at, name, value))
    run = run_of(events)
    rec = reconstruct(run)
    verdicts = [(s.verdict, s.rejection) for s in run.signals if s.event_id >= 108]
    assert verdicts == [
        ("rejected", "check-projects is pending, not awaiting-confirmation"),
        ("rejected", "stop-insync is a manual step: use confirm"),
        ("rejected", "approve-overwrite is a gate: use approve"),
        ("rejected", "no step 'no-such-step' in this workflow"),
        ("rejected", "skip needs a reason"),
        ("rejected", "no failed client ED-01 in switch-clients (failed: ED-02, ED-03)"),
        ("rejected", "dsm-x-backup is done; only a failed step can be retried or skipped"),
        ("accepted", None),
    ]
    clients = {c.host: c for c in rec.step("switch-clients").clients or []}
    assert clients["ED-03"].status == "skipped"
    assert clients["ED-03"].message == "skipped by jo: broken PSU"
    warned = [e.text for e in rec.entries if e.level == "warning"]
    assert len(warned) == 7 and all("REJECTED" in w for w in warned)


def test_an_abort_ends_the_run_aborted() -> None:
    events = until(events_of("switch-with-client-decisions.json"), 107)
    events.append(
        signal(
            108,
            "2026-11-25T09:38:10.0Z",
            "decide",
            {"action": "abort", "operator": "lead", "reason": "rollback window closed"},
        )
    )
    events.append(
        signal(
            109,
            "2026-11-25T09:38:10.1Z",
            "decide",
            {"action": "abort", "operator": "other", "reason": "twice"},
        )
    )
    events.append(
        {
            "eventId": "110",
            "eventTime": "2026-11-25T09:38:11Z",
            "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
            "workflowExecutionCompletedEventAttributes": {"result": {"payloads": []}},
        }
    )
    run = run_of(events)
    rec = reconstruct(run)
    assert rec.state == "aborted" and rec.abort is not None and rec.abort.operator == "lead"
    # A second abort is refused with the engine's sentence (workflows/rules.py): the walk
    # once called it "ignored", which no engine since the abort's validator says.
    second = [(s.verdict, s.rejection) for s in run.signals if s.event_id >= 108]
    assert second == [("accepted", None), ("rejected", "the run is already aborting (by lead)")]
    s = rec.step("switch-clients")
    assert s.status == "skipped" and s.note == "not done: run aborted"


# -- histories that cannot be read ------------------------------------------------------------
def test_unreadable_histories_say_what_and_where(tmp_path: Path) -> None:
    cases = {
        "missing.json": None,
        "text.json": "not json",
        "list.json": "[1, 2]",
        "empty.json": '{"events": []}',
        "nostart.json": json.dumps({"events": [event(events_of("switch-x-to-y.json"), 5)]}),
    }
    want = {
        "missing.json": "no such file",
        "text.json": "not JSON (line 1",
        "list.json": "not a workflow history (expected an object with 'events'",
        "empty.json": "the history has no events",
        "nostart.json": "the first event is not WorkflowExecutionStarted",
    }
    for name, text in cases.items():
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        with pytest.raises(HistoryError) as e:
            load_history_file(p)
        assert str(e.value).startswith(f"{p}") and want[name] in str(e.value), str(e.value)
        assert "\n" not in str(e.value) and e.value.code == 2


# -- updates (what `amsm confirm/approve/skip/retry` send) and malformed signals -------------
def as_updates(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same run, with every operator signal sent as the CLI sends it now: an update,
    handled by the workflow task right after it (as the signal was)."""
    names = {"confirm": "confirm-step", "approve": "approve-step", "decide": "decide-step"}
    out = []
    for e in events:
        attrs = e.get("workflowExecutionSignaledEventAttributes")
        if not attrs:
            out.append(e)
            continue
        out.append(
            {
                "eventId": e["eventId"],
                "eventTime": e["eventTime"],
                "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
                "workflowExecutionUpdateAcceptedEventAttributes": {
                    "protocolInstanceId": f"u{e['eventId']}",
                    "acceptedRequestMessageId": f"u{e['eventId']}/request",
                    "acceptedRequestSequencingEventId": str(int(e["eventId"]) + 1),
                    "acceptedRequest": {
                        "meta": {"updateId": f"u{e['eventId']}", "identity": "4242@ops"},
                        "input": {"name": names[attrs["signalName"]], "args": attrs["input"]},
                    },
                },
            }
        )
    return out


def test_updates_are_read_like_signals() -> None:
    run = run_of(as_updates(events_of("switch-with-client-decisions.json")))
    assert run.checklist is not None
    assert {s.channel for s in run.signals} == {"update"}
    assert [s.name for s in run.signals][:2] == ["confirm", "confirm"]
    rec = reconstruct(run)
    assert check_against_checklist(rec, run.checklist) == [] and rec.approximate == []
    assert all(s.verdict == "accepted" for s in run.signals)


def test_a_malformed_signal_is_rejected_as_the_engine_does() -> None:
    events = until(events_of("switch-with-client-decisions.json"), 107)
    events.append(signal(108, "2026-11-25T09:38:10Z", "confirm", {"operator": "ui"}))
    events.append(signal(109, "2026-11-25T09:38:10Z", "decide", "retry please"))
    run = run_of(events)
    reconstruct(run)
    bad = [s for s in run.signals if s.event_id >= 108]
    assert [(s.verdict, s.step, s.operator, s.rejection) for s in bad] == [
        ("rejected", "?", "?", "malformed payload: step: Field required"),
        # The engine's own words for a payload that is not an object (workflows/inputs.py).
        ("rejected", "?", "?", "malformed payload: not a JSON object: 1 validation error for "
         "dict[any,any]"),
    ]  # fmt: skip


def test_a_payload_with_many_faults_is_said_as_the_engine_says_it() -> None:
    """One home for the sentence: the first five faults, then how many more."""
    events = until(events_of("switch-with-client-decisions.json"), 107)
    bad = {"step": 1, "operator": 2, "action": "jump", "reason": 3, "client": 4, "clients": 5}
    events.append(signal(108, "2026-11-25T09:38:10Z", "decide", bad))
    run = run_of(events)
    reconstruct(run)
    [sig] = [s for s in run.signals if s.event_id == 108]
    assert sig.malformed is not None and sig.malformed.endswith("; and 1 more")
    assert sig.malformed.count(";") == 5
    assert sig.rejection == f"malformed payload: {sig.malformed}"


REFUSED = "mallory is not an operator of this pair"


@pytest.mark.parametrize(
    "answer",
    [
        {"accepted": False, "reason": REFUSED, "run_id": "r", "step": "switch-clients"},
        f"refused: {REFUSED}",  # what updates answered before the UpdateResult
    ],
)
def test_only_the_pairs_operators_may_act(answer: object) -> None:
    """When the inventory names the operators (get_capabilities), anyone else is refused,
    by signal (recorded as rejected) or by update (the workflow's UpdateResult says so)."""
    events = until(events_of("switch-with-client-decisions.json"), 107)
    scheduled, done = event(events, 5), event(events, 7)
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "get_capabilities"
    caps = {"insync_service": False, "allsync_service": False, "operators": ["tester", "jo"]}
    done["activityTaskCompletedEventAttributes"]["result"]["payloads"] = [payload(caps)]
    at = "2026-11-25T09:38:10Z"
    skip = {"step": "switch-clients", "action": "skip", "client": "ED-03", "reason": "PSU"}
    events.append(signal(108, at, "decide", skip | {"operator": "eve"}))
    events += [
        {
            "eventId": "109",
            "eventTime": at,
            "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "workflowExecutionUpdateAcceptedEventAttributes": {
                "acceptedRequestSequencingEventId": "105",
                "acceptedRequest": {
                    "meta": {"updateId": "u1", "identity": "1@cli"},
                    "input": {
                        "name": "decide-step",
                        "args": {"payloads": [payload(skip | {"operator": "mallory"})]},
                    },
                },
            },
        },
        {
            "eventId": "110",
            "eventTime": at,
            "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED",
            "workflowExecutionUpdateCompletedEventAttributes": {
                "meta": {"updateId": "u1"},
                "outcome": {"success": {"payloads": [payload(answer)]}},
            },
        },
    ]
    events.append(signal(111, at, "decide", skip | {"operator": "JO"}))
    run = run_of(events)
    rec = reconstruct(run)
    late = [s for s in run.signals if s.event_id >= 108]
    assert [(s.operator, s.channel, s.verdict, s.rejection) for s in late] == [
        ("eve", "signal", "rejected", "eve is not an operator of this pair"),
        ("mallory", "update", "rejected", "mallory is not an operator of this pair"),
        ("JO", "signal", "accepted", None),
    ]
    assert rec.approximate == []
    clients = {c.host: c.status for c in rec.step("switch-clients").clients or []}
    assert clients["ED-03"] == "skipped"


# -- runs that recorded their steps (the memo's step records) -------------------------------------
def test_an_activity_is_on_the_step_the_engine_recorded_not_the_one_its_type_suggests() -> None:
    """`browse_stop` belongs to stop-browse by its type; the engine's records say it ran
    while start-browse was in hand (as a retry of a Browse step may), so it is there."""
    t = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    run = RunHistory(
        source="built",
        workflow_id="amsm-pair",
        run_id="r",
        workflow_type="switch",
        input={"pair": "pair", "to": "Y", "initiator": "jo"},
        started_at=t,
        last_event_at=t,
        event_count=40,
        status="terminated",
        close_message="terminated",
    )
    at = t.isoformat()
    run.step_records = [
        StepRecord(step="stop-replication", at=at, status="running", event_id=5),
        StepRecord(step="stop-replication", at=at, status="done", outcome="done", event_id=9),
        StepRecord(step="start-browse", at=at, status="running", event_id=10),
    ]
    run.activities = [
        ActivityCall(scheduled_event=11, activity_id="1", type="browse_stop", scheduled_at=t)
    ]
    rec = reconstruct(run)
    assert run.activities[0].step == "start-browse"
    assert rec.step("start-browse").status == "running"
    assert rec.step("stop-browse").status == "pending"  # the engine never recorded it
    assert (rec.step("stop-replication").status, rec.step("stop-replication").outcome) == (
        "done",
        "done",
    )


def test_a_continuation_takes_its_verdicts_from_its_own_records() -> None:
    """A continued run's rejection count goes on from the run before (3 here); the one
    rejection recorded in this run is all of this run's, so a signal the engine recorded
    no rejection for was accepted, whatever the events alone suggest."""
    t = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    at = t.isoformat()
    steps = [
        {"id": s.id, "kind": s.kind, "title": s.title} for s in step_table("switch", {"to": "Y"})
    ]
    resume = {"workflow": "switch", "pair": "p", "title": "t", "steps": steps, "rejected_total": 3}
    run = RunHistory(
        source="built", workflow_id="amsm-p", run_id="r", workflow_type="switch",
        input={"pair": "p", "to": "Y", "initiator": "jo", "resume": resume},
        started_at=t, last_event_at=t, event_count=30, status="terminated",
    )  # fmt: skip
    run.step_records = [StepRecord(step="stop-replication", at=at, status="running", event_id=5)]
    mallory = RejectedSignal(at=at, signal="confirm", step="nope", operator="m", reason="why")
    run.rejection_records, run.rejected_total = [(12, mallory)], 4
    run.signals = [
        SignalRecord(event_id=10, at=t, name="confirm", step="nope", operator="m"),
        # The events show stop-replication running, not waiting: the walk alone would
        # reject this confirmation; the engine recorded no rejection for it.
        SignalRecord(event_id=11, at=t, name="confirm", step="stop-replication", operator="jo"),
    ]
    rec = reconstruct(run)
    assert [(s.verdict, s.rejection) for s in rec.signals] == [
        ("rejected", "why"),
        ("accepted", None),
    ]


def test_where_the_records_miss_a_refusal_only_what_needs_no_step_is_judged() -> None:
    """The engine keeps the last few refusals between two records; where the history
    holds fewer than it counted, a signal without a record is refused only for what needs
    no step (an unknown name, a payload that does not read), and the report says so."""
    t = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    at = t.isoformat()
    run = RunHistory(
        source="built", workflow_id="amsm-p", run_id="r", workflow_type="switch",
        input={"pair": "p", "to": "Y", "initiator": "jo"},
        started_at=t, last_event_at=t, event_count=30, status="running",
    )  # fmt: skip
    run.step_records = [
        StepRecord(step="stop-replication", at=at, status="done", outcome="done", event_id=5),
        StepRecord(step="dsm-x-backup", at=at, status="failed", error="boom", event_id=8),
    ]
    kept = RejectedSignal(at=at, signal="confirm", step="nope", operator="m", reason="why")
    run.rejection_records, run.rejected_total = [(20, kept)], 3
    run.signals = [
        SignalRecord(event_id=10, at=t, name="confirm", step="nope", operator="m"),
        SignalRecord(event_id=11, at=t, name="nudge", step="", operator="m"),
        SignalRecord(event_id=12, at=t, name="decide", action="retry", step="dsm-x-backup",
                     operator="jo"),
    ]  # fmt: skip
    rec = reconstruct(run)
    assert [(s.verdict, s.step, s.rejection) for s in rec.signals] == [
        ("rejected", "nope", "why"),
        ("rejected", "?", rules.unknown_signal_refusal("nudge")),
        ("accepted", "dsm-x-backup", None),
    ]
    assert rec.approximate == [
        "the history records 1 of the 3 signal(s) the run refused: the others are shown "
        "taken unless their name or payload was refused"
    ]
    # The steps are the engine's records: the failed step waits for the operator.
    assert rec.step("dsm-x-backup").status == "failed" and rec.state == "awaiting-operator"
    assert [e.step for e in rec.entries if e.event_id in (10, 11, 12)] == [
        "(run)",
        "(run)",
        "dsm-x-backup",
    ]
