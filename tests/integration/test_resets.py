"""A reset acts on nothing (workers/resets.py): a run of a pair that takes only signed
acts, reset by anyone who reaches Temporal to a point after its first device act, goes
on only as far as its next act, which the worker refuses, saying why; the step waits
for the operator as any failed step does, in an unplanned switch too (whose acts on the
lost side are skipped when they fail). (A control's reset: test_control_approvals.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from lab.faults import set_side_fault
from tests.support.cli import cli, cli_json
from tests.support.driving import step
from tests.support.signing import signed_lab
from tests.support.waiting import side_down, wait_for, waits_at
from tests.support.worker import running_worker
from workers.resets import READS


async def test_a_reset_run_of_a_signed_pair_stops_at_its_next_act(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y", "--key", ann_file))[
            "run_id"
        ]
        await waits_at(temporal, lab, run, "stop-insync")
        handle = temporal.get_workflow_handle(inv.workflow_id, run_id=run)
        events = (await handle.fetch_history()).events
        acts = {
            e.event_id
            for e in events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name not in READS
        }
        first_act = next(
            e.event_id
            for e in events
            if e.HasField("activity_task_completed_event_attributes")
            and e.activity_task_completed_event_attributes.scheduled_event_id in acts
        )
        task = next(
            e.event_id
            for e in events
            if e.event_id > first_act and e.HasField("workflow_task_completed_event_attributes")
        )
        reset = await temporal.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=temporal.namespace,
                workflow_execution=WorkflowExecution(workflow_id=inv.workflow_id, run_id=run),
                reason="act again on ann's start",
                workflow_task_finish_event_id=task,
                request_id=str(uuid.uuid4()),
            )
        )
        deadline = time.monotonic() + 60
        while True:
            shown = await cli_json(temporal, lab, "show", reset.run_id)
            failed = [s for s in shown["steps"] if s["status"] == "failed"]
            if failed or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert step(shown, "stop-replication")["status"] == "done", shown  # before the reset
        [stopped] = failed
        assert stopped["id"] == "dsm-x-backup", stopped
        assert f"is a reset of run {run}: it acts once" in stopped["error"], stopped
        rc, out = await cli(
            temporal, lab, "abort", reset.run_id, "--reason", "a reset", "--key", ann_file
        )
        assert rc == 0, out


async def test_a_reset_unplanned_switch_does_not_take_a_refused_act_for_its_lost_side(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """X is lost and a signed unplanned switch found it so at stop-replication (then
    stopped Y's own replication). Reset to just after that step, the run's next act on X
    (dsm-x-backup) is refused by the worker: the step fails with the refusal and waits
    for a decision, not skipped as "side lost" (which would start a fence)."""
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    inv = lab.inventory
    set_side_fault(lab.dir, "X", "down")
    await wait_for(side_down(lab, "X"), "side X down")
    async with running_worker(temporal, lab):
        run = (
            await cli_json(
                temporal,
                lab,
                "start",
                "switch",
                "--to",
                "Y",
                "--unplanned",
                "--reason",
                "X lost: power cut",
                "--key",
                ann_file,
            )  # fmt: skip
        )["run_id"]
        await waits_at(temporal, lab, run, "stop-insync")
        handle = temporal.get_workflow_handle(inv.workflow_id, run_id=run)
        events = (await handle.fetch_history()).events
        stop = next(
            e.event_id
            for e in events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name
            == "dsm_stop_own_replication"
        )
        ended = next(
            e.event_id
            for e in events
            if e.event_id > stop
            and any(
                e.HasField(f"activity_task_{k}_event_attributes")
                and getattr(e, f"activity_task_{k}_event_attributes").scheduled_event_id == stop
                for k in ("completed", "failed", "timed_out")
            )
        )
        task = next(
            e.event_id
            for e in events
            if e.event_id > ended and e.HasField("workflow_task_completed_event_attributes")
        )
        reset = await temporal.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=temporal.namespace,
                workflow_execution=WorkflowExecution(workflow_id=inv.workflow_id, run_id=run),
                reason="act on X again",
                workflow_task_finish_event_id=task,
                request_id=str(uuid.uuid4()),
            )
        )
        deadline = time.monotonic() + 90
        while True:
            shown = await cli_json(temporal, lab, "show", reset.run_id)
            backup = step(shown, "dsm-x-backup")
            if backup["status"] not in ("pending", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert step(shown, "stop-replication")["status"] == "skipped", shown  # before it
        assert backup["status"] == "failed", backup
        assert f"is a reset of run {run}" in backup["error"], backup
        rc, out = await cli(
            temporal, lab, "abort", reset.run_id, "--reason", "a reset", "--key", ann_file
        )
        assert rc == 0, out
