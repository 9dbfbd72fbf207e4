"""A reset acts on nothing (workers/resets.py): a run of a pair that takes only signed
acts, reset by anyone who reaches Temporal to a point after its first device act, goes
on only as far as its next act, which the worker refuses, saying why; the step waits
for the operator as any failed step does, in an unplanned switch too (whose acts on the
lost side are skipped when they fail). (A control's reset: test_control_approvals.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.client import Client

from lab.faults import set_side_fault
from tests.support.cli import cli, cli_json
from tests.support.driving import step
from tests.support.resets import activity_ended, reset_after
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
        # Just after its first act (stop-replication's), which is not done again.
        first_act = await activity_ended(
            temporal, inv.workflow_id, run, lambda name: name not in READS
        )
        reset = await reset_after(
            temporal, inv.workflow_id, run, first_act, "act again on ann's start"
        )
        deadline = time.monotonic() + 60
        while True:
            shown = await cli_json(temporal, lab, "show", reset)
            failed = [s for s in shown["steps"] if s["status"] == "failed"]
            if failed or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert step(shown, "stop-replication")["status"] == "done", shown  # before the reset
        [stopped] = failed
        assert stopped["id"] == "dsm-x-backup", stopped
        assert f"is a reset of run {run}: it acts once" in stopped["error"], stopped
        rc, out = await cli(temporal, lab, "abort", reset, "--reason", "a reset", "--key", ann_file)
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
        ended = await activity_ended(
            temporal, inv.workflow_id, run, lambda name: name == "dsm_stop_own_replication"
        )
        reset = await reset_after(temporal, inv.workflow_id, run, ended, "act on X again")
        deadline = time.monotonic() + 90
        while True:
            shown = await cli_json(temporal, lab, "show", reset)
            backup = step(shown, "dsm-x-backup")
            if backup["status"] not in ("pending", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert step(shown, "stop-replication")["status"] == "skipped", shown  # before it
        assert backup["status"] == "failed", backup
        assert f"is a reset of run {run}" in backup["error"], backup
        rc, out = await cli(temporal, lab, "abort", reset, "--reason", "a reset", "--key", ann_file)
        assert rc == 0, out


async def test_a_reset_fence_blocks_nothing_and_gives_up(
    temporal: Client, lab_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A fence of an earlier night, ended, reset by anyone who reaches Temporal: it keeps
    its parent (the pair's run), but it is a reset, so `amsm fence` names it a squatter and
    no run takes it for a waiting fence; once a worker runs it, its first act is refused
    (a fence acts once) and it gives up."""
    from temporalio.testing import ActivityEnvironment

    from activities.models import PairRef
    from activities.pair import PairActivities
    from tests.support.fences import fence_on_x

    monkeypatch.setenv("AMSM_OPERATOR", "night")
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        fence = await fence_on_x(temporal, lab)
        r = await cli_json(temporal, lab, "fence", "end", "--reason", "X rebuilt")
        assert r["fence"]["state"]["status"] == "ended", r
    assert fence.run_id is not None
    reset = await reset_after(temporal, fence.id, fence.run_id, 0, "a fence again")
    shown = await cli_json(temporal, lab, "fence")
    [sq] = [s for s in shown["squatters"] if s["run_id"] == reset]
    assert sq["why"].endswith(f"it is a reset of run {fence.run_id}"), sq
    acts = PairActivities(temporal, lab.inventory)
    ref = PairRef(pair=lab.inventory.pair)
    assert await ActivityEnvironment().run(acts.fences_waiting, ref) == []
    async with running_worker(temporal, lab):
        done = await asyncio.wait_for(
            temporal.get_workflow_handle(fence.id, run_id=reset).result(), 60
        )
    assert done["status"] == "ended" and "it acts once" in done["message"], done
