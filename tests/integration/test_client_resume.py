"""A client's two activities resume after a worker dies mid-way, on a lab client.

Each attempt runs the real activity (ActivityEnvironment, no server); the second
attempt gets the heartbeat details the first one left, as Temporal would hand them
to a retry. The lab's journal shows what reached the client: one reconfiguration and
exactly one restart per activity, whenever the first attempt died.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.devices import DeviceActivities
from activities.drivers import devices as dev
from activities.drivers.errors import Unreachable
from activities.models import ClientInput, StepResult
from lab.state import LabState
from tests.conftest import Lab


@pytest.fixture
async def lab(lab_factory) -> Lab:  # type: ignore[no-untyped-def]
    return await lab_factory(editors=1, ingest=0, reboot_seconds=0.5)


def changes(lab: Lab, host: str, since: int) -> Counter[str]:
    return Counter(c for _, h, c, _ in LabState(lab.dir).journal()[since:] if h == host)


async def die_then_retry(
    fn: Callable[[ClientInput], Awaitable[StepResult]],
    inp: ClientInput,
    dies_when: Callable[[tuple[Any, ...]], bool],
    lose_last: bool = False,
    before_retry: Callable[[tuple[Any, ...]], Awaitable[None]] | None = None,
) -> tuple[StepResult, tuple[Any, ...]]:
    """Run `fn` until a heartbeat matches `dies_when`, kill it there, and run it again
    with that heartbeat's details (the worker died before it sent more); with
    `lose_last`, with them as they were before the restart went out (sent = False)."""
    killed: list[tuple[Any, ...]] = []
    first = ActivityEnvironment()
    task: asyncio.Task[StepResult] | None = None

    def heartbeat(*details: Any) -> None:
        # The worker dies at this heartbeat: nothing after it reaches the server.
        if not killed and dies_when(details):
            killed.append(details)
            assert task is not None
            task.cancel()

    first.on_heartbeat = heartbeat
    task = asyncio.create_task(first.run(fn, inp))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    assert killed
    if lose_last:
        killed[0] = (killed[0][0], False, *killed[0][2:])
    if before_retry is not None:
        await before_retry(killed[0])
    second = ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2, heartbeat_details=list(killed[0]))
    return await second.run(fn, inp), killed[0]


async def test_a_client_restarted_then_killed_is_not_restarted_again(lab: Lab) -> None:
    acts = DeviceActivities(lab.inventory, lab.inventory_path)
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    mark = len(LabState(lab.dir).journal())

    # Killed right after the restart went out (sent = True), then retried.
    first, beat = await die_then_retry(acts.client_prepare_restart, inp, lambda d: d[1] is True)
    assert len(beat) == 4 and "reconfigured for Y" in beat[2], beat
    assert "reconfigured for Y" in first.message and "restarted (1/2)" in first.message
    seen = changes(lab, ed.host, mark)
    assert seen["Restart-Computer"] == 1 and seen["Connect-IscsiTarget"] == 1, seen

    # The second activity, killed before its restart went out: it goes out once.
    mark = len(LabState(lab.dir).journal())
    second, beat = await die_then_retry(acts.client_restart_verify, inp, lambda d: d[1] is False)
    assert "restarted (2/2)" in second.message and "sees Y's V: volume" in second.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1


async def test_killed_before_the_reconfiguration_ended_starts_it_again(lab: Lab) -> None:
    acts = DeviceActivities(lab.inventory, lab.inventory_path)
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    mark = len(LabState(lab.dir).journal())
    # The first heartbeat carries the boot time alone: the retry reconfigures (a
    # no-op if the first attempt got that far) and restarts the client once.
    result, beat = await die_then_retry(acts.client_prepare_restart, inp, lambda d: len(d) == 2)
    assert beat[1] is False
    assert "restarted (1/2)" in result.message
    seen = changes(lab, ed.host, mark)
    assert seen["Restart-Computer"] == 1 and seen["Connect-IscsiTarget"] == 1, seen


async def test_a_restart_whose_heartbeat_was_lost_is_not_sent_again(lab: Lab) -> None:
    acts = DeviceActivities(lab.inventory, lab.inventory_path)
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    await ActivityEnvironment().run(acts.client_prepare_restart, inp)
    mark = len(LabState(lab.dir).journal())
    # The SDK throttles heartbeats: the worker can die after the restart went out but
    # before the heartbeat that says so reached the server. The retry then has
    # (boot time, not sent) and must find the client restarted, not restart it again.
    drv = acts.host(ed)

    async def back_up(details: tuple[Any, ...]) -> None:
        # A real host goes down a while after Restart-Computer answers; the lab's at
        # once. Retry once it is up again, so a second restart would reach it.
        for _ in range(200):
            with contextlib.suppress(Unreachable):
                if (await dev.boot_time(drv)).timestamp() > details[0]:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the client did not come back")

    result, _ = await die_then_retry(
        acts.client_restart_verify, inp, lambda d: d[1] is True, True, back_up
    )
    assert "restarted (2/2)" in result.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1
