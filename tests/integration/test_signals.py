"""Signals that do not fit are rejected visibly; Updates refuse at once."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from temporalio.client import Client

from api.refusal import Refused
from api.runs import send_update
from tests.support.cli import cli_json
from tests.support.driving import hands_for, step, switch_waiting_at_stop_insync
from tests.support.lab import TEMPORAL, Lab
from tests.support.worker import running_worker
from workflows.base import PairWorkflow
from workflows.limits import CONTINUE_SIGNALS_EVERY
from workflows.models import Decision, OperatorSignal, UpdateResult


async def temporal_signal(lab: Lab, name: str, payload: str) -> None:
    """A signal to the pair's current run (the run continues as new every 4 signals:
    docs/reference/limits.md), as `temporal workflow signal` sends it."""
    cmd = [
        str(TEMPORAL), "workflow", "signal", "--address", lab.address,
        "--workflow-id", lab.inventory.workflow_id, "--name", name, "--input", payload,
    ]  # fmt: skip
    r = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


async def test_bad_signals_are_rejected_visibly_and_updates_refuse_at_once(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y")

        await temporal_signal(lab, "confirm", json.dumps({"stp": "stop-insync"}))
        await temporal_signal(lab, "confirm", json.dumps({"step": "nope", "operator": "ui"}))
        await temporal_signal(lab, "approve", json.dumps({"step": "stop-insync", "operator": "ui"}))
        await temporal_signal(
            lab, "decide", json.dumps({"step": "stop-insync", "action": "explode"})
        )
        await temporal_signal(lab, "decide", json.dumps({"step": "stop-insync", "action": "skip"}))
        for _ in range(50):
            shown = await cli_json(temporal, lab, "show", run)
            if len(shown["rejected"]) == 5:
                break
            await asyncio.sleep(0.1)
        reasons = [r["reason"] for r in shown["rejected"]]
        assert reasons[0].startswith("malformed payload: step: Field required")
        assert reasons[1] == "no step 'nope' in this workflow"
        assert reasons[2] == "stop-insync is a manual step: use confirm"
        assert reasons[3].startswith(
            "malformed payload: action: Input should be 'retry', 'skip' or 'abort'"
        )
        assert reasons[4] == "skip needs a reason"
        # It continues as new after its 4th signal, once it is CONTINUE_SIGNALS_EVERY
        # seconds old (docs/reference/limits.md): wait for that, and a restart.
        for _ in range(int(CONTINUE_SIGNALS_EVERY + 10) * 5):
            if shown["continued"] >= 1:
                break
            await asyncio.sleep(0.2)
            shown = await cli_json(temporal, lab, "show", run)
        assert shown["continued"] >= 1, shown["continued"]
        assert shown["state"] == "awaiting-operator"  # the workflow goes on
        assert step(shown, "stop-insync")["status"] == "awaiting-confirmation"

        # (to the current run: this one has continued as new after 4 signals). Sent as the
        # CLI sends them (api/runs.py send_update): the continuation answers "still
        # starting" until it has read who may act, and the client asks again for that
        # moment only; a validator's refusal comes back at once, as a Refused.
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id)
        with pytest.raises(Refused) as r:
            await send_update(
                temporal, handle, PairWorkflow.confirm_step, OperatorSignal(step="check-projects")
            )
        assert "check-projects is pending, not awaiting-confirmation" in str(r.value)
        with pytest.raises(Refused) as r:
            await send_update(
                temporal, handle, PairWorkflow.decide_step, Decision(step="", action="abort")
            )
        assert "abort needs a reason" in str(r.value)
        # A refused update leaves nothing behind; an accepted one takes effect.
        assert len((await cli_json(temporal, lab, "show", run))["rejected"]) == 5
        await send_update(
            temporal,
            handle,
            PairWorkflow.decide_step,
            Decision(action="abort", reason="drill", operator="t"),
        )
        for _ in range(100):
            if (await cli_json(temporal, lab, "show", run))["state"] == "aborted":
                break
            await asyncio.sleep(0.1)
        assert (await cli_json(temporal, lab, "show", run))["state"] == "aborted"


async def test_an_update_answers_once_the_run_has_taken_it(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """`amsm confirm` prints the step as the run left it on taking the confirmation (here:
    checking InSync at the device), from the update's own answer."""
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y")
        # InSync still runs: the run takes the confirmation, checks, and waits again.
        answer = await cli_json(temporal, lab, "confirm", run, "stop-insync", "--operator", "t")
        assert answer == {"run_id": run, "step": "stop-insync", "status": "running"}
        for _ in range(100):
            shown = await cli_json(temporal, lab, "show", run)
            if step(shown, "stop-insync")["status"] == "awaiting-confirmation":
                break
            await asyncio.sleep(0.1)
        assert step(shown, "stop-insync")["message"].startswith("confirmed but not verified")

        hands_for(lab, "stop-insync", "Y")
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        sig = OperatorSignal(step="stop-insync", operator="t")
        result = await handle.execute_update(PairWorkflow.confirm_step, sig)
        assert isinstance(result, UpdateResult)
        assert (result.accepted, result.run_id, result.step_status) == (True, run, "running")
        abort = Decision(action="abort", reason="test over", operator="t")
        result = await handle.execute_update(PairWorkflow.decide_step, abort)
        assert result.accepted and result.reason is None
