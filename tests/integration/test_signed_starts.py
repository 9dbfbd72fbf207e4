"""Signed starts and controls (docs/operators/signed-acts.md#starts-and-controls): under
identity.require_signed an unsigned start is refused before the run reads a device, and so
is one whose intent was signed for another input; a start signed with ann's key is
recorded as proven by it (the checklist, `amsm show`, the memo the report reads), and
replays; a control likewise."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from api import start as starting
from api.act import followed_run, read_key, signed_input
from api.check import with_retention
from inventory import intent
from inventory.models import control_workflow_id
from tests.support.cli import cli, cli_json
from tests.support.fences import fence_on_x
from tests.support.lab import Lab
from tests.support.secrets import record_history
from tests.support.signing import key_file, signed_lab
from tests.support.waiting import waits_at
from tests.support.worker import running_worker
from workflows.check import CheckResult
from workflows.control import ControlInput
from workflows.nonce import NonceInput, nonce_workflow_id
from workflows.registry import WORKFLOWS
from workflows.signing import STARTED_BY

# What a run may do before it knows who started it: read the worker's inventory
# (and, for a signed start, ask the server which run came after the one it follows).
BEFORE_THE_PROOF = {"get_timing", "get_capabilities", "runs_since"}


async def activities_of(temporal: Client, lab: Lab, run: str) -> set[str]:
    handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
    history = await handle.fetch_history()
    return {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }


async def ended(temporal: Client, lab: Lab, run: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = await cli_json(temporal, lab, "show", run)
        if shown["state"] not in ("running", "awaiting-operator"):
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run} did not end")


async def a_control_is_signed(temporal: Client, lab: Lab, ann_file: str) -> None:
    """A control, like a start: unsigned refused, signed proven, sent again refused."""
    rc, out = await cli(temporal, lab, "dsm", "set-main", "X", "--operator", "ann")
    assert rc == 1, out
    assert "dsm-set-main refused: unsigned: this pair takes only signed acts" in out, out
    rc, out = await cli(temporal, lab, "dsm", "set-main", "X", "--key", ann_file)
    assert rc == 0 and "by ann (proven by ann's key)" in out, out
    done = await cli_json(temporal, lab, "dsm", "set-main", "X", "--key", ann_file)
    assert (done["operator"], done["proof"]) == ("ann", "proven by ann's key"), done
    # That control's signed input, taken from its history and sent again as anyone
    # who reads histories could: refused, it ran its one control already.
    control = temporal.get_workflow_handle(control_workflow_id(lab.inventory.pair))
    history = await control.fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
        history
    )
    record_history(history, "control-signed-nonce.json")
    first = history.events[0]
    taken = json.loads(first.workflow_execution_started_event_attributes.input.payloads[0].data)
    assert taken["intent"]["intent"]["operator"] == "ann", taken
    with pytest.raises(WorkflowFailureError) as failed:
        await temporal.execute_workflow(
            "control",
            taken,
            id=control_workflow_id(lab.inventory.pair),
            task_queue=lab.inventory.queue,
        )
    assert "intent refused (replayed)" in str(failed.value.cause), failed.value.cause
    # Started by hand, as anyone who reaches Temporal could, claiming ann: refused.
    with pytest.raises(WorkflowFailureError) as failed:
        await temporal.execute_workflow(
            "control",
            {
                "pair": lab.inventory.pair,
                "control": "dsm-set-main",
                "operator": "ann",
                "side": "X",
            },
            id=control_workflow_id(lab.inventory.pair),
            task_queue=lab.inventory.queue,
        )
    assert "dsm-set-main refused: unsigned: this pair takes only" in str(failed.value.cause)


async def test_require_signed_refuses_an_unsigned_start_before_any_device_is_read(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--operator", "ann")
        assert rc == 1, out
        assert "switch refused: unsigned: this pair takes only signed acts" in out, out
        shown = await cli_json(temporal, lab, "show", "current")
        run = shown["run_id"]
        assert shown["state"] == "failed" and shown["initiator_proof"] is None
        assert await activities_of(temporal, lab, run) <= BEFORE_THE_PROOF

        # Signed by ann for a switch to Y, sent with the input of a switch to X: misbound.
        to_y, what = starting.start_input(lab.inventory, "switch", "Y", "ann", {})
        to_x, _ = starting.start_input(lab.inventory, "switch", "X", "ann", {})
        ann = read_key(ann_file, "--key")
        forged = to_x.model_copy(
            update={
                "intent": starting.signed_start(
                    ann,
                    lab.inventory,
                    "switch",
                    to_y,
                    "ann",
                    await followed_run(temporal, lab.inventory.pair, lab.inventory.workflow_id),
                )
            }
        )
        started = await starting.start(temporal, lab.inventory, "switch", forged, what, "ann")
        assert started.refused and "intent refused (misbound)" in started.refused, started
        assert await activities_of(temporal, lab, started.run_id) <= BEFORE_THE_PROOF

        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--key", ann_file)
        assert rc == 0, out
        shown = await cli_json(temporal, lab, "show", "current")
        run = shown["run_id"]
        assert (shown["initiator"], shown["initiator_proof"]) == ("ann", "proven by ann's key")
        rc, text = await cli(temporal, lab, "show", run)
        assert "initiator: ann (proven by ann's key)" in text, text
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        memo = await (await handle.describe()).memo_value(STARTED_BY)
        assert memo == {"operator": "ann", "proof": "proven by ann's key"}, memo
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over", "--key", ann_file)
        assert rc == 0, out
        await ended(temporal, lab, run)
        history = await handle.fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        record_history(history, "switch-signed-start.json")
        # Where people read it: the report (markdown, JSON) and `amsm runs --json`.
        rc, md = await cli(temporal, lab, "report", run)
        assert rc == 0 and "| Initiator | ann (proven by ann's key) |" in md, md
        assert "| abort |  |  | ann (proven by ann's key) | test over |" in md, md
        report = await cli_json(temporal, lab, "report", run)
        assert report["initiator_proof"] == "proven by ann's key", report
        assert [d["proof"] for d in report["decisions"]] == ["proven by ann's key"]
        listed = await cli_json(temporal, lab, "runs")
        assert [(r["run_id"], r["initiator_proof"]) for r in listed["runs"][:1]] == [
            (run, "proven by ann's key")
        ], listed

        await a_control_is_signed(temporal, lab, ann_file)


async def test_a_signed_start_starts_one_run_and_sent_again_is_refused_as_replayed(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    inv, ann = lab.inventory, read_key(ann_file, "--key")
    async with running_worker(temporal, lab):
        # The pair's first run: signed as following none.
        to_y, what = starting.start_input(inv, "switch", "Y", "ann", {})
        first = await followed_run(temporal, inv.pair, inv.workflow_id)
        assert first == "none", first
        signed = to_y.model_copy(
            update={"intent": starting.signed_start(ann, inv, "switch", to_y, "ann", first)}
        )
        # Signed now too, and sent after the first run has started (below).
        later = to_y.model_copy(
            update={"intent": starting.signed_start(ann, inv, "switch", to_y, "ann", first)}
        )
        started = await starting.start(temporal, inv, "switch", signed, what, "ann")
        assert started.refused is None, started
        # Aborted where it first waits for a person: X's DSM is in backup by then.
        await waits_at(temporal, lab, started.run_id, "stop-insync")
        rc, out = await cli(
            temporal, lab, "abort", started.run_id, "--reason", "over", "--key", ann_file
        )
        assert rc == 0, out
        await ended(temporal, lab, started.run_id)
        history = await temporal.get_workflow_handle(
            inv.workflow_id, run_id=started.run_id
        ).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        record_history(history, "switch-signed-start-nonce.json")

        # The same signed start again, within its ten minutes: through amsm's own start,
        # and as anyone who reaches Temporal would. Refused before any device is read.
        again = await starting.start(temporal, inv, "switch", signed, what, "ann")
        assert again.refused and "intent refused (replayed)" in again.refused, again
        assert "its nonce was taken already" in again.refused, again
        assert await activities_of(temporal, lab, again.run_id) <= BEFORE_THE_PROOF
        with pytest.raises(WorkflowFailureError) as failed:
            await temporal.execute_workflow(
                "switch", signed, id=inv.workflow_id, task_queue=inv.queue
            )
        assert "intent refused (replayed)" in str(failed.value.cause), failed.value.cause

        # Signed after a run that is not the pair's: refused; an intent that names no
        # run it follows (an older amsm's) likewise, each saying why.
        other = to_y.model_copy(
            update={
                "intent": starting.signed_start(ann, inv, "switch", to_y, "ann", str(uuid.uuid4()))
            }
        )
        refused = await starting.start(temporal, inv, "switch", other, what, "ann")
        assert refused.refused and f"is not a run of {inv.workflow_id}" in refused.refused, refused
        old = to_y.model_copy(
            update={
                "intent": signed_input(
                    ann, inv.pair, inv.workflow_id, "switch", "start", to_y, "ann"
                )
            }
        )
        refused = await starting.start(temporal, inv, "switch", old, what, "ann")
        assert refused.refused and "does not name the run it follows" in refused.refused

        # Another intent, signed before that first run started: a run has started under
        # the pair's id since, which is no use of this intent: proven (then refused for
        # the pair's state, after the proof).
        late = await starting.start(temporal, inv, "switch", later, what, "ann")
        assert late.refused and "intent refused" not in late.refused, late
        assert "no side is main" in late.refused, late

        # Signed now, after the last of those runs: proven. (The aborted switch left
        # both DSMs in backup, so the run is then refused for the pair's state, after
        # the proof.)
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--key", ann_file)
        assert "intent refused" not in out, out
        shown = await cli_json(temporal, lab, "show", "current")
        assert shown["run_id"] not in (started.run_id, again.run_id, refused.run_id), shown
        assert shown["initiator_proof"] == "proven by ann's key", shown
        assert rc == 1 and "no side is main" in out, out


async def test_an_unsigned_start_where_the_pair_has_keys_is_marked_unproven(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "tester")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    _, ann_line = key_file(tmp_path, "ann")
    lab.edit_inventory(operators=[{"name": "ann", "key": ann_line}, "tester"])
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y")
        assert rc == 0, out
        shown = await cli_json(temporal, lab, "show", "current")
        assert (shown["initiator"], shown["initiator_proof"]) == ("tester", "unproven")
        rc, out = await cli(temporal, lab, "abort", shown["run_id"], "--reason", "test over")
        assert rc == 0, out
        await ended(temporal, lab, shown["run_id"])
        rc, md = await cli(temporal, lab, "report", shown["run_id"])
        assert rc == 0 and "| Initiator | tester (unproven) |" in md, md


async def test_a_fence_ends_only_by_a_signed_hand_under_require_signed(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    async with running_worker(temporal, lab):
        handle = await fence_on_x(temporal, lab, key=ann_file)
        rc, out = await cli(temporal, lab, "fence", "end", "--reason", "back", "--operator", "ann")
        assert rc == 1 and "unsigned: this pair takes only signed acts" in out, out
        # As anyone who reaches Temporal would: the update, claiming ann's name, unsigned.
        answer = await handle.execute_update("end", {"operator": "ann", "reason": "mine"})
        assert answer["accepted"] is False and answer["reason"].startswith("unsigned:"), answer
        fence = (await cli_json(temporal, lab, "fence"))["fence"]
        assert fence["state"]["status"] == "waiting", fence
        rc, out = await cli(temporal, lab, "fence", "end", "--reason", "back", "--key", ann_file)
        assert rc == 0 and "ended by ann (proven by ann's key)" in out, out
        history = await handle.fetch_history()
        # The refusals are on record: each update's answer in the history.
        answers = [
            json.loads(
                e.workflow_execution_update_completed_event_attributes.outcome.success.payloads[
                    0
                ].data
            )
            for e in history.events
            if e.HasField("workflow_execution_update_completed_event_attributes")
        ]
        assert [(a["accepted"], (a["reason"] or "")[:9]) for a in answers] == [
            (False, "unsigned:"),
            (False, "unsigned:"),
            (True, ""),
        ], answers
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )


async def test_a_signed_act_whose_nonce_is_held_already_is_refused_whatever_the_list_shows(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    inv = lab.inventory
    cid = control_workflow_id(inv.pair)
    # A nonce is held as long as the namespace keeps closed workflows: longer than an
    # intent is good for (ten minutes, and a minute of clock ahead).
    described = await temporal.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=temporal.namespace)
    )
    assert described.config.workflow_execution_retention_ttl.ToSeconds() > 11 * 60, described
    # `amsm check` reads the same for a pair with keys, and finds nothing to say.
    assert inv.operator_keys, "a pair with keys"
    read = await with_retention(
        temporal, inv, CheckResult(pair=inv.pair, ready=True, problems=[], warnings=[], hosts=0)
    )
    assert read.ready and not read.problems and not read.warnings, read
    async with running_worker(temporal, lab):
        # Each signed act takes its nonce: a workflow of its own holds it, ended.
        done = await cli_json(temporal, lab, "dsm", "set-main", "X", "--key", ann_file)
        assert done["proof"] == "proven by ann's key", done
        first = (await temporal.get_workflow_handle(cid).fetch_history()).events[0]
        taken = json.loads(first.workflow_execution_started_event_attributes.input.payloads[0].data)
        holder_id = nonce_workflow_id(inv.pair, taken["intent"]["intent"]["nonce"])
        holder = await temporal.get_workflow_handle(holder_id).describe()
        assert holder.workflow_type == "signed-nonce", holder
        assert holder.status == WorkflowExecutionStatus.COMPLETED, holder.status

        # A control signed now, following that run; its nonce held already, as a run
        # that used it would have left it, moments ago, before the server's list of
        # workflows shows that run (the list lags; the ids it is checked against do not).
        inp = ControlInput(pair=inv.pair, control="dsm-set-main", operator="ann", side="X")
        after = await followed_run(temporal, inv.pair, cid)
        key = read_key(ann_file, "--key")
        bound = intent.start_binding(cid, after)
        signed = inp.model_copy(
            update={
                "intent": signed_input(key, inv.pair, bound, inp.control, "control", inp, "ann")
            }
        )
        assert signed.intent is not None
        await temporal.execute_workflow(
            "signed-nonce",
            NonceInput(pair=inv.pair, taken_by=cid, run_id="moments-ago"),
            id=nonce_workflow_id(inv.pair, signed.intent.intent.nonce),
            task_queue=inv.queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await temporal.execute_workflow("control", signed, id=cid, task_queue=inv.queue)
        cause = str(failed.value.cause)
        assert "intent refused (replayed): its nonce was taken already" in cause, cause
        # Signed afresh (a new nonce), the same control runs.
        again = await cli_json(temporal, lab, "dsm", "set-main", "X", "--key", ann_file)
        assert again["proof"] == "proven by ann's key", again
