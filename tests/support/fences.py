"""A fence as amsm starts one: the night X is lost, an unplanned switch to Y, whose first
step on X finds it lost and starts the fence on X (a fence started by anyone else is
refused and never believed: workflows/fence.py, wire/fences.py). For the tests of what a
fence does once it runs."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from lab.faults import set_side_fault
from tests.support.cli import cli, cli_json
from tests.support.driving import drive
from tests.support.lab import Lab
from tests.support.waiting import side_down, wait_for


async def fence_on_x(
    temporal: Client,
    lab: Lab,
    operator: str = "night",
    reason: str = "X lost (a test's fence)",
    key: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Side X down, an unplanned switch to Y by `operator` (or signed with `key`, a key
    file: its start and every act on it) for `reason`, driven to its end; the fence on X
    it started, waiting."""
    set_side_fault(lab.dir, "X", "down")
    await wait_for(side_down(lab, "X"), "side X down")
    who = ["--key", key] if key else ["--operator", operator]
    started = await cli_json(
        temporal, lab, "start", "switch", "--to", "Y", "--unplanned", "--reason", reason, *who
    )
    run_id = started["run_id"]

    async def act(verb: str, step: str) -> None:
        rc, out = await cli(temporal, lab, verb, run_id, step, *who, "--note", f"did {step}")
        assert rc == 0, out

    shown = await drive(temporal, lab, run_id, "Y", timeout=150, signal=act)
    assert shown["state"] == "completed", shown
    fence = (await cli_json(temporal, lab, "fence"))["fence"]
    assert fence["state"]["status"] == "waiting", fence
    return temporal.get_workflow_handle(fence["workflow_id"], run_id=fence["run_id"])
