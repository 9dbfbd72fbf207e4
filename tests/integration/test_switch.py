"""The switch X -> Y and back on a lab, through the CLI's code path, with a real dev server."""

from __future__ import annotations

import asyncio
import json
import subprocess

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.support.cli import cli, cli_json
from tests.support.driving import assert_mirrored, drive
from tests.support.lab import TEMPORAL
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.worker import running_worker
from workflows.registry import WORKFLOWS

EXPECTED_X_TO_Y = [
    "stop-replication", "dsm-x-backup", "stop-browse", "switch-browse", "stop-insync",
    "stop-allsync", "insync-y-main", "smartbins-x-backup", "dsm-y-main", "smartbins-y-main",
    "switch-clients", "check-projects", "start-browse", "verify-y", "approve-overwrite",
    "start-replication", "start-insync", "start-allsync",
]  # fmt: skip


async def test_switch_to_y_and_back(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=1)
    async with running_worker(temporal, lab):
        assert_mirrored(await cli_json(temporal, lab, "status"), "X", 3)

        started = await cli_json(temporal, lab, "start", "switch", "--to", "Y")
        run_id = started["run_id"]
        shown = await cli_json(temporal, lab, "show", run_id)
        assert shown["workflow"] == "switch" and shown["run_id"] == run_id
        assert [s["id"] for s in shown["steps"]] == EXPECTED_X_TO_Y
        assert {s["kind"] for s in shown["steps"]} == {"auto", "manual", "gate"}

        # A second start while this one runs is refused with the running one's id.
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y")
        assert rc == 1 and run_id in out and "only one workflow" in out

        # A confirmation for a step that is not waiting is refused at once, with the reason.
        rc, out = await cli(temporal, lab, "confirm", run_id, "check-projects")
        assert rc == 1 and "check-projects is pending" in out

        # The same confirmation works through `temporal workflow signal` (what the Web UI sends).
        async def temporal_cli_signal(verb: str, step: str) -> None:
            payload = json.dumps({"step": step, "operator": "ui-user", "note": "from the UI"})
            cmd = [
                str(TEMPORAL), "workflow", "signal", "--address", lab.address,
                "--workflow-id", lab.inventory.workflow_id, "--run-id", run_id,
                "--name", verb, "--input", payload,
            ]  # fmt: skip
            r = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr

        shown = await drive(
            temporal, lab, run_id, "Y",
            until=lambda s: s["steps"][4]["status"] == "awaiting-confirmation",
        )  # fmt: skip
        from tests.support.driving import hands_for

        # The Web UI's view: the checklist as the workflow's current details.
        meta = await temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run_id).query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        assert "**Waiting for the operator:** `stop-insync`" in meta.current_details
        assert "| [x] | 1 | `stop-replication` | auto | done |" in meta.current_details

        hands_for(lab, "stop-insync", "Y")
        await temporal_cli_signal("confirm", "stop-insync")

        final = await drive(temporal, lab, run_id, "Y")
        assert final["state"] == "completed", final
        assert all(s["status"] == "done" for s in final["steps"]), final["steps"]
        insync = next(s for s in final["steps"] if s["id"] == "stop-insync")
        assert (insync["operator"], insync["note"]) == ("ui-user", "from the UI")
        gate = next(s for s in final["steps"] if s["id"] == "approve-overwrite")
        assert gate["operator"] == "tester"
        clients = next(s for s in final["steps"] if s["id"] == "switch-clients")["clients"]
        assert sorted(c["host"] for c in clients) == ["ED-01", "ED-02", "IN-01"]
        assert all(c["status"] == "done" for c in clients)

        assert_mirrored(await cli_json(temporal, lab, "status"), "Y", 3)

        # Text views an operator reads.
        rc, text = await cli(temporal, lab, "show", run_id[:8])
        assert rc == 0 and "state: completed" in text and "switch-clients" in text
        rc, text = await cli(temporal, lab, "status")
        assert rc == 0 and "MIRRORED, Y main" in text and "Active on Y" in text

        # The history of this run replays against the current workflow code.
        history = await temporal.get_workflow_handle(
            lab.inventory.workflow_id, run_id=run_id
        ).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        assert_no_secrets(lab, history)
        record_history(history, "switch-x-to-y.json")
        ed01 = next(
            c for s in final["steps"] for c in s.get("clients") or [] if c["host"] == "ED-01"
        )
        assert ed01["workflow_id"].startswith(f"{lab.inventory.workflow_id}-")
        child = await temporal.get_workflow_handle(ed01["workflow_id"]).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            child
        )
        assert_no_secrets(lab, child)
        record_history(child, "client-batch-switch-clients-1.json")

        # A switch to the side that is already main is refused, with what was found.
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y")
        assert rc == 1 and "Y is already main" in out

        # And back.
        run_back = (await cli_json(temporal, lab, "start", "switch", "--to", "X"))["run_id"]
        final = await drive(temporal, lab, run_back, "X")
        assert final["state"] == "completed", final
        assert [s["id"] for s in final["steps"]][1] == "dsm-y-backup"
        assert_mirrored(await cli_json(temporal, lab, "status"), "X", 3)
