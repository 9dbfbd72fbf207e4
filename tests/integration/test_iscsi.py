"""A client's iSCSI and V: through the drivers, over SSH to the lab (lab/powershell/
models the initiator and SNFS as Microsoft and StorNext document them)."""

from __future__ import annotations

import asyncio

import pytest

from activities.context import DeviceContext
from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.drivers.operations import clients as clients_ops
from lab.init import iqn
from lab.state import LabState
from tests.support.lab import Lab


@pytest.fixture
async def lab(lab_factory) -> Lab:  # type: ignore[no-untyped-def]
    return await lab_factory(editors=2, ingest=0)


def iscsi(lab: Lab, host: str) -> dict:
    return LabState(lab.dir).read()[1][host]["iscsi"]


async def restart(drv: HostDriver) -> None:
    """Restart the host and wait until it has booted again."""
    before = await windows_facts.boot(drv)
    await drv.run(ps.restart_computer())
    for _ in range(200):
        await asyncio.sleep(0.1)
        try:
            if (await windows_facts.boot(drv)).after(before.latest, 0.05):
                return
        except Exception:  # down: the lab's port is closed while it reboots
            continue
    raise AssertionError(f"{drv.name} did not come back")


async def test_switch_leaves_no_persistent_login_for_the_old_side(lab: Lab) -> None:
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    client = inv.clients[0]
    drv = a.host(client)
    msg = await clients_ops.client_prepare(drv, client, inv, "Y")
    y_portal = inv.sides["Y"].portals[0]
    assert f"reconfigured for Y (iSCSI A {iqn('Y')} via {y_portal}" in msg
    state = iscsi(lab, client.host)
    assert state["persistent"] == [{"iqn": iqn("Y"), "portal": y_portal}]
    assert y_portal in state["portals"]
    # Until the restart the old session stays (SNFS holds its disks), no longer
    # persistent; Y's login is recorded, its session comes at the restart (review H1).
    assert {s["iqn"]: s["persistent"] for s in state["sessions"]} == {iqn("X"): False}
    assert (
        await clients_ops.client_prepare(drv, client, inv, "Y")
        == f"{client.host} is already configured for Y"
    )
    await restart(drv)
    assert [s["iqn"] for s in iscsi(lab, client.host)["sessions"]] == [iqn("Y")]
    assert (
        await clients_facts.client_verify(drv, client, inv, "Y")
        == f"{client.host} sees Y's V: volume"
    )
    st = await clients_facts.client_facts(drv, client, inv)
    assert (st.side, st.status) == ("Y", "online")
    # A second restart (the switch restarts twice) keeps it on Y: the login is persistent.
    await restart(drv)
    assert (
        await clients_facts.client_verify(drv, client, inv, "Y")
        == f"{client.host} sees Y's V: volume"
    )
    # And back: X's portal is still registered, so it is discovered again, not added.
    await clients_ops.client_prepare(drv, client, inv, "X")
    await restart(drv)
    assert (
        await clients_facts.client_verify(drv, client, inv, "X")
        == f"{client.host} sees X's V: volume"
    )
    assert iscsi(lab, client.host)["persistent"] == [
        {"iqn": iqn("X"), "portal": inv.sides["X"].portals[0]}
    ]


async def test_a_client_without_the_iscsi_cmdlets_is_refused_by_name(lab: Lab) -> None:
    a = DeviceContext(lab.inventory, lab.inventory_path)
    client = lab.inventory.clients[1]
    with LabState(lab.dir).transaction() as txn:
        txn.require_host(client.host)["windows"] = "6.1"  # Windows 7: no iSCSI module
    before = iscsi(lab, client.host)
    for call in (
        clients_ops.client_prepare(a.host(client), client, lab.inventory, "Y"),
        clients_facts.client_facts(a.host(client), client, lab.inventory),
        clients_facts.client_verify(a.host(client), client, lab.inventory, "Y"),
    ):
        with pytest.raises(CommandFailed) as e:
            await call
        assert e.value.host == client.host
        assert f"{client.host} has no Get-IscsiSession" in str(e.value)
        assert "Windows 8.1 / Windows Server 2012 R2 or later" in str(e.value)
    assert iscsi(lab, client.host) == before  # nothing was changed


async def test_v_of_the_wrong_side_fails_verify(lab: Lab) -> None:
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    client = inv.clients[0]
    drv = a.host(client)
    await clients_ops.client_prepare(drv, client, inv, "Y")
    # Someone puts X's name server back: iSCSI is on Y, SNFS looks for X's file system,
    # whose disks the client no longer sees, and mounts nothing.
    x_servers = inv.sides["X"].fsnameservers or []
    await drv.run(ps.set_content(inv.devices.snfs_nameservers_file, x_servers))
    await restart(drv)
    with pytest.raises(CommandFailed) as e:
        await clients_facts.client_verify(drv, client, inv, "Y")
    text = str(e.value)
    assert "does not see Y's V: volume" in text and f"lists {x_servers[0]}" in text
    assert "no V: drive" in text
    # A verify against X fails too: the session is Y's.
    with pytest.raises(CommandFailed, match=f"no iSCSI session to X's target {iqn('X')}"):
        await clients_facts.client_verify(drv, client, inv, "X")
    # Preparing again repairs it (read first: only the file is rewritten).
    await clients_ops.client_prepare(drv, client, inv, "Y")
    await restart(drv)
    assert (
        await clients_facts.client_verify(drv, client, inv, "Y")
        == f"{client.host} sees Y's V: volume"
    )
