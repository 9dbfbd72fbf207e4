"""The console's one subscription per pair (console/pairs.py over api/follow.py) against
the real dev server, worker and lab: the watch's readings come from its history, the
same as its `status` query answers, without asking the worker; a run's change is seen
as its history is written; a quiet run costs the worker no query."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client

from api.runs import read_watched_status
from console.pairs import Hub
from tests.support.cli import cli_json
from tests.support.driving import hands_for, switch_waiting_at_stop_insync
from tests.support.worker import running_worker
from workers.worker import start_watch


async def until(what: str, ok, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_one_subscription_reads_the_watch_from_its_history_and_the_run_as_it_changes(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(timing={"status_interval": 1})
    async with running_worker(temporal, lab):
        await start_watch(temporal, lab.inventory)
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--operator", "ann")
        hub = Hub(temporal, [lab.inventory])
        live = hub.pairs[lab.inventory.pair]
        wake = hub.subscribe(lab.inventory.pair)
        try:
            await until(
                "a first reading and checklist",
                lambda: live.snapshot.checklist is not None and live.snapshot.status is not None,
            )
            assert live.snapshot.checklist.awaiting[0].id == "stop-insync"  # type: ignore[union-attr]
            first = live.snapshot.status_when
            # Readings after the first come from the watch's history: no query for them.
            queries = live.queries
            await until(
                "a reading from the history", lambda: live.snapshot.status_when != first, 20
            )
            assert live.queries == queries
            st, when = await read_watched_status(temporal, lab.inventory)
            if when != live.snapshot.status_when:  # a reading may land between the two
                await until("the next reading", lambda: live.snapshot.status_when == when, 5)
            assert live.snapshot.status_when == when and live.snapshot.status == st

            # A run that waits: nothing asked of the worker while nothing happens.
            queries = live.queries
            await asyncio.sleep(3)
            assert live.queries == queries

            # A confirm is seen as the run's history is written (no polling interval).
            wake.clear()
            before = live.snapshot.version
            hands_for(lab, "stop-insync", "Y")
            await cli_json(temporal, lab, "confirm", run, "stop-insync", "--operator", "ann")
            await until(
                "the confirm on the snapshot",
                lambda: (
                    live.snapshot.checklist is not None
                    and live.snapshot.checklist.step("stop-insync").status == "done"
                ),
                5,
            )
            assert live.snapshot.version > before and wake.is_set()
            # The step's new status came from the run's own record (its memo, in the
            # history) ahead of the worker's answer, which then replaced it whole.
            assert live.records > 0
            await until("the worker's answer", lambda: not live.snapshot.partial, 5)
            c = live.snapshot.checklist
            assert c is not None and c == live.full
            assert c.step("stop-insync").operator == "ann" and c.step("stop-insync").ended_at
        finally:
            hub.unsubscribe(lab.inventory.pair, wake)
            await hub.close()
