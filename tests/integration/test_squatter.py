"""Only workflows amsm started count (issue 28): a workflow of type `fence` that anyone
can start by hand under the pair's fence id, on a task queue nobody polls, neither blocks
the unplanned switch nor stands for the fence; `amsm fence` and `amsm status` name it as a
squatter with the command that removes it, and that command removes it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta

import pytest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import RetryPolicy

from api import start as starting
from inventory.models import fence_workflow_id
from lab.faults import set_side_fault
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.lab import TEMPORAL, Lab
from tests.support.waiting import side_down, wait_for
from tests.support.worker import running_worker


async def temporal_cli(lab: Lab, *argv: str) -> str:
    cmd = [str(TEMPORAL), "workflow", *argv, "--address", lab.address]
    r = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r.stdout


async def test_a_squatter_under_the_fence_id_blocks_nothing(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory
) -> None:
    lab = await lab_factory(editors=1, ingest=0)
    pair = lab.inventory.pair
    usual = fence_workflow_id(pair)
    # Exactly what a stranger who reaches the frontend types, and one tagged as the pair's.
    await temporal_cli(
        lab, "start", "--type", "fence", "--workflow-id", usual,
        "--task-queue", "nobody-polls", "--input", "{}",
    )  # fmt: skip
    tagged = f"{usual}-tagged"
    await temporal_cli(
        lab, "start", "--type", "fence", "--workflow-id", tagged, "--task-queue",
        "nobody-polls", "--input", "{}", "--search-attribute", f"AmsmPair={json.dumps(pair)}",
    )  # fmt: skip
    async with running_worker(temporal, lab):
        shown = await cli_json(temporal, lab, "fence")
        assert shown["fence"] is None, shown
        named = {s["workflow_id"]: s for s in shown["squatters"]}
        assert set(named) == {usual, tagged}, shown
        sq = named[usual]
        assert "'nobody-polls', not the pair's" in sq["why"] and sq["parent_id"] is None, sq
        assert sq["remedy"].startswith(f"temporal workflow terminate --workflow-id {usual} ")
        rc, out = await cli(temporal, lab, "fence")
        assert rc == 0 and "no fence has run" in out and f"Squatter {usual}" in out, out
        assert "it blocks nothing; remove it: temporal workflow terminate" in out, out
        rc, out = await cli(temporal, lab, "fence", "end", "--reason", "who is this")
        assert rc != 0 and "no fence has run" in out and f"{usual} is not its fence" in out, out
        status = await cli_json(temporal, lab, "status")
        assert status["fence"] is None, status["fence"]
        assert {s["workflow_id"] for s in status["squatters"]} == {usual, tagged}, status
        rc, out = await cli(temporal, lab, "status")
        assert rc == 0 and f"Squatter {usual}" in out, out

        # The night X is lost: the unplanned switch is not blocked, and fences X under
        # a new id of its own.
        set_side_fault(lab.dir, "X", "down")
        await wait_for(side_down(lab, "X"), "side X down")
        started = await cli_json(
            temporal, lab, "start", "switch", "--to", "Y", "--unplanned", "--reason",
            "X lost; someone sits on the fence id", "--operator", "night",
        )  # fmt: skip
        run = await drive(temporal, lab, started["run_id"], "Y", timeout=150)
        assert run["state"] == "completed", run
        assert step(run, "dsm-y-main")["status"] == "done", step(run, "dsm-y-main")
        own = run["fence"]["workflow_id"]
        assert own.startswith(f"{usual}-") and own != tagged, run["fence"]

        # `amsm fence` shows the run's own fence, and still names the squatters.
        shown = await cli_json(temporal, lab, "fence")
        fence = shown["fence"]
        assert fence["workflow_id"] == own and fence["state"]["status"] == "waiting", shown
        assert fence["parent_id"] == lab.inventory.workflow_id, fence
        assert {s["workflow_id"] for s in shown["squatters"]} == {usual, tagged}, shown
        r = await cli_json(temporal, lab, "fence", "end", "--reason", "X is rebuilt")
        assert r["fence"]["state"]["status"] == "ended", r

        # What it says to do removes them.
        for sq in shown["squatters"]:
            argv = sq["remedy"].split(" ", 2)[2]
            await temporal_cli(lab, *_words(argv))
        shown = await cli_json(temporal, lab, "fence")
        assert shown["squatters"] == [] and shown["fence"]["workflow_id"] == own, shown


def _words(argv: str) -> list[str]:
    import shlex

    return shlex.split(argv)


async def test_squatters_under_the_run_and_control_ids(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory
) -> None:
    """A workflow under the pair's run id on another queue is no run going on: a control
    is not refused alongside it, and `amsm start` says what holds the id, and with
    `--end-squatter` ends it and starts. One under the control's id says what it is and
    how to remove it; a control given `--end-squatter` ends it and runs."""
    lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    await temporal_cli(
        lab, "start", "--type", "switch", "--workflow-id", inv.workflow_id,
        "--task-queue", "nobody-polls", "--input", "{}",
    )  # fmt: skip
    control = f"{inv.workflow_id}-control"
    await temporal_cli(
        lab, "start", "--type", "control", "--workflow-id", control,
        "--task-queue", "nobody-polls", "--input", "{}",
    )  # fmt: skip
    # Tagged as a scheduled run of the pair, which no worker of the pair runs.
    tags = [f"{k}={json.dumps(v)}" for k, v in (("AmsmPair", inv.pair), ("AmsmKind", "schedule"))]
    await temporal_cli(
        lab, "start", "--type", "pair-schedule", "--workflow-id",
        f"{inv.workflow_id}-schedule-0badf00d", "--task-queue", "nobody-polls", "--input", "{}",
        "--search-attribute", tags[0], "--search-attribute", tags[1],
    )  # fmt: skip
    async with running_worker(temporal, lab):
        # It does not hold the pair's scheduled runs: the list is read without it.
        rc, out = await cli(temporal, lab, "schedule", "list")
        assert rc == 0 and "no scheduled runs" in out, out
        # `amsm start` cannot take the run's id while it is held, and says what holds it.
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y")
        assert rc != 0 and "only one workflow runs on pair" in out, out
        assert "a squatter (not started by amsm as the run of pair" in out, out
        assert f"remove it with temporal workflow terminate --workflow-id {inv.workflow_id} " in out
        squatter = (await temporal.get_workflow_handle(inv.workflow_id).describe()).run_id
        assert f"or give --end-squatter {squatter}, which ends it first" in out, out
        rc, out = await cli(temporal, lab, "browse", "stop")
        assert rc != 0 and "another control is running" in out, out
        assert f"but {control} is a squatter" in out and "'nobody-polls'" in out, out
        remedy = out.split("remove it with ", 1)[1].split(", or give", 1)[0]
        assert remedy.startswith(f"temporal workflow terminate --workflow-id {control} "), out
        sq_run = (await temporal.get_workflow_handle(control).describe()).run_id
        assert f"or give --end-squatter {sq_run}, which ends it first" in out, out
        # A mistyped host is refused before anything is ended.
        rc, out = await cli(temporal, lab, "reboot", "NO-SUCH", "--end-squatter", sq_run)
        assert rc != 0 and "ended the squatter" not in out, out
        assert (await temporal.get_workflow_handle(control).describe()).run_id == sq_run
        r = await cli_json(temporal, lab, "browse", "stop", "--end-squatter", sq_run)
        assert (r["ended_squatter"]["workflow_id"], r["ended_squatter"]["run_id"]) == (
            control, sq_run,
        ), r  # fmt: skip
        rc, out = await cli(temporal, lab, "browse", "stop", "--end-squatter", sq_run)
        assert rc == 0 and "ended the squatter" not in out, out  # nothing runs there now

        # `--end-squatter` ends the squatter under the run's id, then starts: the night's
        # unplanned switch is not held up by the temporal CLI. It never ends amsm's own.
        # Only an operator, and only the run named.
        lab.edit_inventory(operators=["root", "tester"])
        argv = ("start", "switch", "--to", "Y", "--end-squatter")
        rc, out = await cli(temporal, lab, *argv, squatter, "--operator", "mallory")
        assert rc != 0 and "mallory is not an operator of pair" in out, out
        rc, out = await cli(temporal, lab, *argv, "0badf00d")
        assert rc != 0 and f"the squatter under {inv.workflow_id} is run {squatter}" in out, out
        r = await cli_json(temporal, lab, *argv, squatter)
        ended = r["ended_squatter"]
        assert (ended["workflow_id"], ended["run_id"]) == (inv.workflow_id, squatter), r
        assert "'nobody-polls', not the pair's" in ended["why"], ended
        gone = await temporal.get_workflow_handle(inv.workflow_id, run_id=squatter).describe()
        assert gone.status == WorkflowExecutionStatus.TERMINATED, gone.status
        rc, out = await cli(temporal, lab, *argv, r["run_id"])
        assert rc != 0 and "ends only a workflow amsm did not start" in out, out
        mine = await temporal.get_workflow_handle(inv.workflow_id).describe()
        assert (mine.run_id, mine.status) == (r["run_id"], WorkflowExecutionStatus.RUNNING)
        rc, out = await cli(temporal, lab, "abort", r["run_id"], "--reason", "test over")
        assert rc == 0, out


async def test_a_continuation_forged_through_a_retry_of_the_whole_workflow_is_refused(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory
) -> None:
    """Only a run's own continue-as-new may carry `resume` (the checklist it goes on
    from, with who started it and their proof). The server names a run before for a
    retry of a whole workflow too, which anyone who starts a workflow can ask for: a
    retry policy and a run timeout shorter than the first try. That retry's `resume` is
    refused like any start's, before it reads the inventory or a device."""
    lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    to_y, _ = starting.start_input(inv, "switch", "Y", "ann", {})
    async with running_worker(temporal, lab):
        # A real checklist to forge from: a run's own, as its history shows it.
        run_id = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        handle = temporal.get_workflow_handle(inv.workflow_id, run_id=run_id)
        checklist = await handle.query("progress")
        rc, out = await cli(temporal, lab, "abort", run_id, "--reason", "over")
        assert rc == 0, out
        await wait_for(lambda: ended(handle), "the run ended")
    forged = to_y.model_dump(mode="json") | {
        "resume": checklist | {"initiator": "ann", "initiator_proof": "proven by ann's key"}
    }
    # No worker yet: the first try times out unread, and the server retries the workflow.
    first = await temporal.start_workflow(
        "switch",
        forged,
        id=inv.workflow_id,
        task_queue=inv.queue,
        run_timeout=timedelta(seconds=1),
        retry_policy=RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=1)),
    )
    await wait_for(lambda: retried(temporal, inv.workflow_id, first.result_run_id), "a retry")
    async with running_worker(temporal, lab):
        with pytest.raises(WorkflowFailureError) as failed:
            await temporal.get_workflow_handle(inv.workflow_id).result()
    cause = str(failed.value.cause)
    assert "bad input: resume: only a run's own continuation" in cause, cause
    retry = temporal.get_workflow_handle(inv.workflow_id)
    history = await retry.fetch_history()
    assert not [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]


async def ended(handle: WorkflowHandle) -> bool:
    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING


async def retried(temporal: Client, wid: str, first: str | None) -> bool:
    return (await temporal.get_workflow_handle(wid).describe()).run_id != first
