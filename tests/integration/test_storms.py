"""Issue 29, storms while the operator acts: the updates half, and the fence. Anyone who
reaches the Temporal frontend can send a run updates (confirm, approve, decide: steps
that do not wait, names nobody has, garbage) as fast as the server takes them, and the
fence signals. The operator's act goes through within STORM_ACT_BOUND_SECONDS
(docs/reference/limits.md, "Storms while the operator acts"), on the real dev server and
lab; the figures under load are `python -m bench.storm`'s (bench/results/)."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client

from bench.storm import storm
from inventory.models import fence_workflow_id
from lab.faults import set_side_fault
from tests.support.cli import cli, cli_json
from tests.support.lab import Lab
from tests.support.signals import SIGNALS_LIMIT, runs_kept
from tests.support.waiting import side_down, wait_for
from tests.support.worker import running_worker
from workflows import server
from workflows.limits import CONTINUE_SIGNALS_EVERY, STORM_ACT_BOUND_SECONDS
from workflows.models import FenceInput


async def test_the_fence_is_paced_and_ended_within_the_bound_during_a_storm(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    """A storm of signals (30 a second) and junk `end` updates (10 a second, each refused
    by the fence's validator: no reason) at the fence: it continues as new for its signal
    count at most every CONTINUE_SIGNALS_EVERY seconds (patch
    `fence-continue-after-signals-paced`; before, after every 4 signals, so it was
    starting nearly all the time and its `end` said "still starting"), and the
    operator's `amsm fence end` during the storm goes through within
    STORM_ACT_BOUND_SECONDS."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        set_side_fault(lab.dir, "X", "down")
        await wait_for(side_down(lab, "X"), "side X down")
        await temporal.start_workflow(
            "fence",
            FenceInput(pair=inv.pair, side="X", reason="test", started_by="night"),
            id=fence_workflow_id(inv.pair),
            task_queue=inv.queue,
        )
        handle = temporal.get_workflow_handle(fence_workflow_id(inv.pair))
        stop = asyncio.Event()
        junk_end = ("end", {"operator": "storm", "reason": " "})
        storming = asyncio.create_task(storm(handle, 30, stop, updates=10, update=junk_end))
        stormed = time.monotonic()
        try:
            # Longer than two paces: the fence has had its signals and continued twice.
            await asyncio.sleep(2 * CONTINUE_SIGNALS_EVERY + 3)
            began = time.monotonic()
            rc, out = await cli(temporal, lab, "fence", "end", "--reason", "X rebuilt")
            took = time.monotonic() - began
        finally:
            stop.set()
            sent = await storming
            stormed = time.monotonic() - stormed
        print(f"fence storm: end took {took:.2f} s; {sent.as_json()}")
        assert rc == 0, (round(took, 2), out)
        assert took <= STORM_ACT_BOUND_SECONDS, took
        assert sent.accepted >= server.MAX_SIGNALS and sent.refused[SIGNALS_LIMIT], sent
        assert sent.refused["update: refused by the validator"], sent
        view = (await cli_json(temporal, lab, "fence"))["fence"]
        assert view["state"]["status"] == "ended", view
        assert "X rebuilt" in view["state"]["message"], view
        # Paced: the first run, one more per CONTINUE_SIGNALS_EVERY seconds of the storm
        # at most, and one for a restart under way when it ended; at least two restarts.
        runs = await runs_kept(temporal, fence_workflow_id(inv.pair))
        assert 3 <= len(runs) <= 2 + stormed / CONTINUE_SIGNALS_EVERY, (len(runs), stormed)
        assert all(r.signals <= server.MAX_SIGNALS for r in runs), runs
