"""A client after its restart, through the activities over SSH to the lab: its iSCSI
session and V: come some seconds after it answers (the initiator and StorNext start
beside sshd, not before it), and the switch waits for them up to `mount_timeout`."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import ClientActivities
from activities.context import DeviceContext
from activities.models import ClientInput
from lab.faults import set_fault
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
    assert beats and all(len(b) == len(beats[0]) for b in beats)  # resumable details kept


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
