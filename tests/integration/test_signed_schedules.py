"""Signed scheduled runs (docs/operators/signed-acts.md#scheduled-runs) on the dev server,
under identity.require_signed: an unsigned filing is refused when filed, saying why; a
filing signed with ann's key starts its run at its time, proven by her key; the run's
input started by hand is refused (no schedule started it), the filing sent again is
refused (its nonce was taken), and a schedule of someone else's code under the same id,
firing the same run with the intent copied, is refused (its nonce was not taken by it)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from tests.support.cli import cli, cli_json
from tests.support.lab import Lab
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.signing import signed_only
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workflows.registry import WORKFLOWS
from workflows.schedule import ScheduleState, ScheduleWorkflow, schedule_workflow_id


@workflow.defn(name="pair-schedule", sandboxed=False)
class ForgedSchedule:
    """Someone else's `pair-schedule`, on a queue of their own: it takes no nonce and
    starts the pair's run with the input it is given (the intent copied from a real one)."""

    @workflow.run
    async def run(self, args: list[Any]) -> str:
        queue, kind, run_input, pair_id = args
        handle = await workflow.start_child_workflow(
            kind,
            RawValue(workflow.payload_converter().to_payloads([run_input])[0]),
            id=pair_id,
            task_queue=queue,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        return handle.first_execution_run_id or ""


def _at(seconds: float, lab: Lab) -> str:
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(lab.inventory.zone)
    return at.strftime("%Y-%m-%dT%H:%M:%S%z")


async def _started_input(temporal: Client, workflow_id: str, run_id: str = "") -> dict[str, Any]:
    history = await temporal.get_workflow_handle(workflow_id, run_id=run_id or None).fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes
    data: dict[str, Any] = json.loads(first.input.payloads[0].data)
    return data


async def _refused_run(temporal: Client, lab: Lab, run_id: str) -> str:
    handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    return str(failed.value.cause)


async def test_a_signed_filing_starts_its_run_proven_and_nothing_else_does(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "tester")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(schedule={"lead": "1s", "window": "2m"})
    ann_file = signed_only(lab, tmp_path)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        # Unsigned: refused when filed, saying why (exit 1); nothing waits.
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(60, lab),
            "--operator", "ann",
        )  # fmt: skip
        assert rc == 1, out
        assert "the scheduled run was refused: unsigned: this pair takes only signed acts" in out
        rc, out = await cli(temporal, lab, "schedule", "list")
        assert rc == 0 and "no scheduled runs" in out, out

        # Signed with ann's key: filed as ann, proven; at its time the run starts, its
        # initiator proven by her key (the intent rides in the run's own input).
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(6, lab),
            "--key", ann_file,
        )  # fmt: skip
        assert rc == 0 and "filed by ann (proven by ann's key)" in out, out
        sid = out.split("id: ", 1)[1].split()[0]
        wid = schedule_workflow_id(inv.pair, sid)
        done: ScheduleState = await temporal.get_workflow_handle_for(
            ScheduleWorkflow.run, wid
        ).result()
        assert done.status == "started" and done.proof == "proven by ann's key", done
        shown: dict[str, Any] = {}

        async def proven() -> bool:  # once the run has read who may act
            shown.update(await cli_json(temporal, lab, "show", done.run_id or ""))
            return shown["initiator_proof"] is not None or shown["state"] != "running"

        await wait_for(proven, "the scheduled run's proof")
        assert (shown["initiator"], shown["initiator_proof"]) == ("ann", "proven by ann's key")
        rc, out = await cli(
            temporal, lab, "abort", done.run_id or "", "--reason", "seen", "--key", ann_file
        )
        assert rc == 0, out
        run = temporal.get_workflow_handle(inv.workflow_id, run_id=done.run_id)
        await run.result()
        for history, name in (
            (await temporal.get_workflow_handle(wid).fetch_history(), "schedule-signed.json"),
            (await run.fetch_history(), "switch-scheduled-signed.json"),
        ):
            await Replayer(
                workflows=WORKFLOWS, data_converter=pydantic_data_converter
            ).replay_workflow(history)
            assert_no_secrets(lab, history)
            record_history(history, name)

        run_input = await _started_input(temporal, inv.workflow_id, done.run_id or "")
        assert run_input["scheduled"]["intent"]["intent"]["action"] == "schedule", run_input
        # The run's input, started by hand as anyone who reaches Temporal could: no
        # schedule started it.
        handle = await temporal.start_workflow(
            "switch", run_input, id=inv.workflow_id, task_queue=inv.queue
        )
        cause = await _refused_run(temporal, lab, handle.result_run_id or "")
        assert "intent refused (misbound)" in cause and "no such schedule started" in cause

        # The filing itself sent again under its id: refused, its nonce was taken.
        filing = await _started_input(temporal, wid)
        again = await temporal.execute_workflow(
            ScheduleWorkflow.run, filing, id=wid, task_queue=inv.queue, result_type=ScheduleState
        )
        assert again.status == "dropped" and not again.checked, again
        assert again.why and "intent refused (replayed): its nonce was taken" in again.why

        # Someone else's schedule under the same id, on a queue of its own, firing the
        # same run with the intent copied: the run finds its nonce taken by another run.
        queue = f"forged-{uuid.uuid4().hex[:8]}"
        async with Worker(temporal, task_queue=queue, workflows=[ForgedSchedule], debug_mode=True):
            forged = await temporal.execute_workflow(
                "pair-schedule",
                [inv.queue, "switch", run_input, inv.workflow_id],
                id=wid,
                task_queue=queue,
                result_type=str,
            )
        cause = await _refused_run(temporal, lab, forged)
        assert "intent refused (replayed): its nonce was not taken by the run of schedule" in cause

        # A cancel is an act too: unsigned, refused (the schedule still waits); signed
        # with ann's key, done and proven.
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(3600, lab),
            "--key", ann_file, "--json",
        )  # fmt: skip
        assert rc == 0, out
        later = json.loads(out)["schedule_id"]
        rc, out = await cli(
            temporal, lab, "schedule", "cancel", later, "--reason", "not tonight",
            "--operator", "ann",
        )  # fmt: skip
        assert rc == 1 and "cancel refused: unsigned: this pair takes only signed acts" in out
        listed = await cli_json(temporal, lab, "schedule", "list")
        assert [s["schedule_id"] for s in listed["scheduled"]] == [later], listed
        assert listed["scheduled"][0]["proof"] == "proven by ann's key", listed
        rc, out = await cli(
            temporal, lab, "schedule", "cancel", later, "--reason", "not tonight",
            "--key", ann_file,
        )  # fmt: skip
        assert rc == 0 and "by ann (proven by ann's key): not tonight" in out, out
