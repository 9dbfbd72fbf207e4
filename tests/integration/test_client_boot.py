"""A client after its restart, through the activities over SSH to the lab: its iSCSI
session and V: come some seconds after it answers (the initiator and StorNext start
beside sshd, not before it), and the switch waits for them up to `mount_timeout`."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import ClientActivities
from activities.context import DeviceContext
from activities.models import ClientInput, RestartBeat
from lab.faults import set_fault
from lab.state import LabState
from tests.support.lab import Lab


@pytest.fixture
async def lab(lab_factory) -> Lab:  # type: ignore[no-untyped-def]
    return await lab_factory(editors=1, ingest=0, reboot_seconds=0.5)


async def test_a_slow_mount_is_waited_for(lab: Lab) -> None:
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    await ActivityEnvironment().run(acts.client_prepare_restart, inp)
    # V: and the session to Y come 4 s after the client answers: longer than the
    # settle time (0.5 s), within the mount timeout.
    set_fault(lab.dir, ed.host, "slow-mount", 4)
    env = ActivityEnvironment()
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *d: beats.append(d)
    began = time.monotonic()
    result = await asyncio.wait_for(env.run(acts.client_restart_verify, inp), 60)
    assert "restarted (2/2)" in result.message and "sees Y's V: volume" in result.message
    assert "uses Y's DSM" in result.message, result.message
    assert time.monotonic() - began >= 4
    # Resumable details kept: every beat says where the restart is.
    read = [RestartBeat.read(b) for b in beats]
    assert read and all(b is not None and b.before == read[0].before for b in read), beats


async def test_a_mount_that_does_not_come_fails_after_the_deadline(lab: Lab) -> None:
    lab.retime(mount_timeout=2)
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    await ActivityEnvironment().run(acts.client_prepare_restart, inp)
    set_fault(lab.dir, ed.host, "slow-mount", 120)
    began = time.monotonic()
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(ActivityEnvironment().run(acts.client_restart_verify, inp), 60)
    text = str(e.value)
    assert ed.host in text and "within 2 s" in text, text
    assert "no iSCSI session to Y" in text and "no V: drive" in text, text
    assert time.monotonic() - began < 30


async def test_providers_still_starting_are_waited_out(lab: Lab) -> None:
    # For 3 s after each boot the client answers but WMI and the iSCSI cmdlets fail
    # (Winmgmt and MSiSCSI still starting): longer than the settle time (0.5 s), within
    # the reboot and mount timeouts. The restart and the mount wait wait them out.
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    set_fault(lab.dir, ed.host, "slow-providers", 3)
    result = await asyncio.wait_for(ActivityEnvironment().run(acts.client_prepare_restart, inp), 60)
    assert "restarted (1/2)" in result.message, result.message
    began = time.monotonic()
    result = await asyncio.wait_for(ActivityEnvironment().run(acts.client_restart_verify, inp), 60)
    assert "restarted (2/2)" in result.message and "sees Y's V: volume" in result.message
    assert time.monotonic() - began >= 3


async def test_providers_that_stay_down_fail_after_the_deadline_naming_the_error(
    lab: Lab,
) -> None:
    lab.retime(reboot_timeout=3)
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    set_fault(lab.dir, ed.host, "slow-providers", 120)
    began = time.monotonic()
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(ActivityEnvironment().run(acts.client_prepare_restart, inp), 60)
    text = str(e.value)
    assert ed.host in text and "did not come back within 3 s" in text, text
    assert "Provider load failure" in text, text
    assert time.monotonic() - began < 30


async def test_uwf_refuses_unless_the_site_lets_the_switch_turn_it_off(lab: Lab) -> None:
    """A client whose UWF protects C:: refused before anything changes; with
    devices.uwf_off_for_switch, switched through one more restart (UWF off), and
    UWF on again afterwards, with the switch kept across both restarts."""
    ed = lab.inventory.clients[0]
    set_fault(lab.dir, ed.host, "uwf")
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    mark = len(LabState(lab.dir).journal())
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(acts.client_prepare_restart, inp)
    assert "client-switch-not-under-write-filter" in str(e.value)
    assert "devices.uwf_off_for_switch" in str(e.value)
    assert [c for _, h, c, _ in LabState(lab.dir).journal()[mark:] if h == ed.host] == []

    lab.edit_inventory(devices={"uwf_off_for_switch": True})
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    first = await asyncio.wait_for(ActivityEnvironment().run(acts.client_prepare_restart, inp), 60)
    assert "UWF off for an extra restart" in first.message, first.message
    assert "reconfigured for Y" in first.message and "restarted (1/2)" in first.message
    seen = [c for _, h, c, _ in LabState(lab.dir).journal()[mark:] if h == ed.host]
    assert seen.count("Restart-Computer") == 2 and seen.count("Invoke-CimMethod") == 2, seen
    restart2 = inp.model_copy(update={"booted": first.booted})
    second = await asyncio.wait_for(
        ActivityEnvironment().run(acts.client_restart_verify, restart2), 60
    )
    assert "sees Y's V: volume" in second.message and "uses Y's DSM" in second.message
    wf = LabState(lab.dir).read()[1][ed.host]["write_filter"]
    assert (wf["current"], wf["next"]) == (True, True)


async def test_a_retry_during_the_uwf_restart_resumes_it(lab: Lab) -> None:
    """The worker dies once the UWF restart went out: the retry finds the client
    restarted (UWF off), does not restart it again for UWF, and switches it."""
    ed = lab.inventory.clients[0]
    set_fault(lab.dir, ed.host, "uwf")
    lab.edit_inventory(devices={"uwf_off_for_switch": True})
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    mark = len(LabState(lab.dir).journal())
    first = ActivityEnvironment()
    killed: list[tuple[object, ...]] = []
    task: asyncio.Task[object] | None = None

    def heartbeat(*details: object) -> None:
        beat = RestartBeat.read(details)
        if not killed and beat is not None and beat.uwf == "off" and beat.sent:
            killed.append(details)
            assert task is not None
            task.cancel()

    first.on_heartbeat = heartbeat
    task = asyncio.create_task(first.run(acts.client_prepare_restart, inp))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    await asyncio.sleep(1.5)  # the client boots meanwhile (reboot_seconds 0.5)
    second = ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2, heartbeat_details=list(killed[0]))
    result = await asyncio.wait_for(second.run(acts.client_prepare_restart, inp), 60)
    assert "reconfigured for Y" in result.message and "UWF off" in result.message
    seen = [c for _, h, c, _ in LabState(lab.dir).journal()[mark:] if h == ed.host]
    assert seen.count("Restart-Computer") == 2 and seen.count("Invoke-CimMethod") == 2, seen


async def test_a_prepare_whose_aurora_does_not_stop_fails_naming_the_host(lab: Lab) -> None:
    """Aurora killed but not exiting (a termination that waits on I/O: the lab's
    `unkillable`): the prepare fails, naming the host and the process, before anything of
    the switch is sent, and the client is not restarted."""
    lab.retime(operation_timeout=8)  # Wait-Process waits 2 s
    acts = ClientActivities(DeviceContext(lab.inventory, lab.inventory_path))
    ed = lab.inventory.clients[0]
    inp = ClientInput(pair=lab.inventory.pair, host=ed.host, to="Y")
    set_fault(lab.dir, ed.host, "unkillable")
    mark = len(LabState(lab.dir).journal())
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(ActivityEnvironment().run(acts.client_prepare_restart, inp), 60)
    err = e.value
    assert err.type == "CommandFailed" and err.non_retryable, err
    assert err.message.startswith(f"{ed.host}: Aurora did not stop: AuroraEdit ("), err.message
    assert err.details[0]["host"] == ed.host
    sent = [c for _, h, c, _ in LabState(lab.dir).journal()[mark:] if h == ed.host]
    assert sent == ["Stop-Process"], sent  # no login, no pointer, no restart
