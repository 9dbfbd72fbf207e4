"""A reset acts on nothing (workers/resets.py): a run of a pair that takes only signed
acts, reset by anyone who reaches Temporal to a point after its first device act, goes
on only as far as its next act, which the worker refuses, saying why; the step waits
for the operator as any failed step does. (A control's reset: test_control_approvals.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from tests.support.cli import cli, cli_json
from tests.support.driving import step
from tests.support.signing import signed_lab
from tests.support.waiting import waits_at
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
