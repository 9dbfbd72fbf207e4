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

from activities.clients import ClientActivities
from activities.context import DeviceContext
from activities.drivers.errors import Unreachable
from activities.drivers.facts import windows as windows_facts
from activities.models import ClientInput, RestartBeat, StepResult
from inventory.models import SwitchableClient
from lab.faults import set_fault
from lab.state import LabState
from tests.support.lab import Lab

# The lab's boot tolerance (lab.init.timing): one clock for the lab and the worker.
TOLERANCE = 0.5 / 4


@pytest.fixture
async def lab(lab_factory) -> Lab:  # type: ignore[no-untyped-def]
    return await lab_factory(editors=1, ingest=0, reboot_seconds=0.5)


def beat_of(details: tuple[Any, ...]) -> RestartBeat:
    """What a heartbeat said, typed."""
    beat = RestartBeat.read(details)
    assert beat is not None, details
    return beat


def sent(details: tuple[Any, ...]) -> bool:
    return beat_of(details).sent


def old_shape(details: tuple[Any, ...]) -> tuple[Any, ...]:
    """The same beat as a worker before RestartBeat sent it: (boot, sent, *carry)."""
    b = beat_of(details)
    carry: list[Any] = []
    if b.prepared is not None:
        carry += [b.prepared, [f.model_dump(mode="json") for f in b.forced]]
    if b.uwf is not None:
        carry.append(f"uwf-{b.uwf}")
    return (b.before, b.sent, *carry)


def changes(lab: Lab, host: str, since: int) -> Counter[str]:
    return Counter(c for _, h, c, _ in LabState(lab.dir).journal()[since:] if h == host)


async def die_then_retry(
    fn: Callable[[ClientInput], Awaitable[StepResult]],
    inp: ClientInput,
    dies_when: Callable[[tuple[Any, ...]], bool],
    lose_last: bool = False,
    before_retry: Callable[[tuple[Any, ...]], Awaitable[None]] | None = None,
    lose_all: bool = False,
    deployed: bool = False,
) -> tuple[StepResult, tuple[Any, ...]]:
    """Run `fn` until a heartbeat matches `dies_when`, kill it there, and run it again
    with that heartbeat's details (the worker died before it sent more); with
    `lose_last`, with them as they were before the restart went out (sent = False);
    with `lose_all`, with none (not even the first heartbeat reached the server); with
    `deployed`, in the shape the worker before RestartBeat sent them (the retry runs on
    a worker deployed meanwhile)."""
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
        killed[0] = beat_of(killed[0]).model_copy(update={"sent": False}).details()
    if before_retry is not None:
        await before_retry(killed[0])
    second = ActivityEnvironment()
    details = [] if lose_all else list(old_shape(killed[0]) if deployed else killed[0])
    second.info = dataclasses.replace(second.info, attempt=2, heartbeat_details=details)
    return await second.run(fn, inp), killed[0]


def back_up(
    acts: ClientActivities, ed: SwitchableClient
) -> Callable[[tuple[Any, ...]], Awaitable[None]]:
    """Before the retry: wait until the client has booted since the boot in the killed
    attempt's heartbeat. A real host goes down a while after Restart-Computer answers;
    the lab's at once: retrying once it is up again lets a second restart reach it."""
    drv = acts.ctx.host(ed)

    async def wait(details: tuple[Any, ...]) -> None:
        for _ in range(200):
            with contextlib.suppress(Unreachable):
                if (await windows_facts.boot(drv)).after(beat_of(details).before, TOLERANCE):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the client did not come back")

    return wait


async def test_a_client_restarted_then_killed_is_not_restarted_again(lab: Lab) -> None:
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    mark = len(LabState(lab.dir).journal())

    # Killed right after the restart went out (sent = True), then retried.
    first, beat = await die_then_retry(acts.client_prepare_restart, inp, sent)
    assert "reconfigured for Y" in (beat_of(beat).prepared or ""), beat
    assert "reconfigured for Y" in first.message and "restarted (1/2)" in first.message
    seen = changes(lab, ed.host, mark)
    assert seen["Restart-Computer"] == 1 and seen["iscsicli"] == 2, seen  # Y's login, X's removal

    # The second activity, killed before its restart went out: it goes out once.
    mark = len(LabState(lab.dir).journal())
    second, beat = await die_then_retry(acts.client_restart_verify, inp, lambda d: not sent(d))
    assert "restarted (2/2)" in second.message and "sees Y's V: volume" in second.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1


async def test_killed_before_the_reconfiguration_ended_starts_it_again(lab: Lab) -> None:
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    mark = len(LabState(lab.dir).journal())
    # The first heartbeat carries the boot time alone: the retry reconfigures (a
    # no-op if the first attempt got that far) and restarts the client once.
    result, beat = await die_then_retry(
        acts.client_prepare_restart, inp, lambda d: beat_of(d).prepared is None
    )
    assert not sent(beat)
    assert "restarted (1/2)" in result.message
    seen = changes(lab, ed.host, mark)
    assert seen["Restart-Computer"] == 1 and seen["iscsicli"] == 2, seen  # Y's login, X's removal


async def test_a_restart_whose_heartbeat_was_lost_is_not_sent_again(lab: Lab) -> None:
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    await ActivityEnvironment().run(acts.client_prepare_restart, inp)
    mark = len(LabState(lab.dir).journal())
    # The SDK throttles heartbeats: the worker can die after the restart went out but
    # before the heartbeat that says so reached the server. The retry then has
    # (boot time, not sent) and must find the client restarted, not restart it again.
    result, _ = await die_then_retry(acts.client_restart_verify, inp, sent, True, back_up(acts, ed))
    assert "restarted (2/2)" in result.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1


async def test_a_lost_first_heartbeat_does_not_restart_a_third_time(lab: Lab) -> None:
    """Restart 2/2 sent, then the worker died before any heartbeat reached the server:
    the retry knows nothing of it but the boot after restart 1/2 (`booted`, from the
    workflow), sees a later boot and does not restart the client a third time."""
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    first = await ActivityEnvironment().run(acts.client_prepare_restart, inp)
    assert first.booted is not None
    up = back_up(acts, ed)

    mark = len(LabState(lab.dir).journal())
    carried = inp.model_copy(update={"booted": first.booted})
    result, _ = await die_then_retry(acts.client_restart_verify, carried, sent, False, up, True)
    assert "restarted (2/2)" in result.message and "sees Y's V: volume" in result.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1
    # Without what the workflow carries, the same loss restarts it once more.
    mark = len(LabState(lab.dir).journal())
    await die_then_retry(acts.client_restart_verify, inp, sent, False, up, True)
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 2


async def test_a_clock_stepped_back_does_not_hide_the_restart(lab: Lab) -> None:
    """The client's clock goes back an hour once the restart is sent (a time server
    corrects it): the boot it comes back with is still a new boot (its uptime says
    so), not one an hour older than the boot before the restart."""
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="X")
    env = ActivityEnvironment()
    stepped: list[bool] = []

    def heartbeat(*details: Any) -> None:
        if sent(details) and not stepped:
            stepped.append(True)
            set_fault(lab.dir, ed.host, "clock-step", -3600)

    env.on_heartbeat = heartbeat
    mark = len(LabState(lab.dir).journal())
    result = await asyncio.wait_for(env.run(acts.client_restart_verify, inp), 20)
    assert stepped and "restarted (2/2)" in result.message, result.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1


async def test_a_clock_stepped_forward_does_not_fake_a_restart(lab: Lab) -> None:
    """The worker died before the restart went out, and the client's clock then jumped
    an hour ahead (its boot time with it): the retry does not take that for the
    restart, it restarts the client."""
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="X")
    mark = len(LabState(lab.dir).journal())

    async def step(details: tuple[Any, ...]) -> None:
        set_fault(lab.dir, ed.host, "clock-step", 3600)

    result, beat = await die_then_retry(
        acts.client_restart_verify, inp, lambda d: not sent(d), before_retry=step
    )
    assert not sent(beat)
    assert "restarted (2/2)" in result.message
    assert changes(lab, ed.host, mark)["Restart-Computer"] == 1


@pytest.mark.parametrize("when", ["prepared", "sent"])
async def test_a_heartbeat_of_the_worker_before_the_deploy_is_resumed(lab: Lab, when: str) -> None:
    """A worker deployed while a client restarts: the retry on the new worker gets the
    positional heartbeat the old one sent (boot, sent, message, forced) and resumes it,
    neither reconfiguring nor restarting the client again."""
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    mark = len(LabState(lab.dir).journal())
    dies = sent if when == "sent" else (lambda d: beat_of(d).prepared is not None)
    result, beat = await die_then_retry(acts.client_prepare_restart, inp, dies, deployed=True)
    assert len(old_shape(beat)) == 4
    assert "reconfigured for Y" in result.message and "restarted (1/2)" in result.message
    seen = changes(lab, ed.host, mark)
    assert seen["Restart-Computer"] == 1 and seen["iscsicli"] == 2, seen
