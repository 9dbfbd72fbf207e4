"""A client's own iSCSI paths through a switch, over SSH to the lab: its TOE on each
side (K2 System Configuration assigns one per client), the B path of a redundant K2
SAN, a dead portal, an iSCSI disk that is not the pair's, and the persistent login of a
side that was down during the switch (issue 25, defects 5-8)."""

from __future__ import annotations

import pytest

from activities.context import DeviceContext
from activities.drivers.errors import CommandFailed, InterlockRefused
from activities.drivers.facts import clients as clients_facts
from activities.drivers.operations import clients as clients_ops
from lab.faults import UNRELATED_PORTAL, UNRELATED_TARGET, set_fault, set_side_fault
from lab.init import iqn, redundant_portals
from lab.state import LabState
from tests.integration.test_iscsi import restart
from tests.support.lab import Lab


def iscsi(lab: Lab, host: str) -> dict:
    return LabState(lab.dir).read()[1][host]["iscsi"]


def logins(lab: Lab, host: str) -> set[tuple[str, str]]:
    return {(p["iqn"], p["portal"]) for p in iscsi(lab, host)["persistent"]}


def sessions(lab: Lab, host: str) -> set[str]:
    return {s["iqn"] for s in iscsi(lab, host)["sessions"]}


async def test_each_client_keeps_its_own_toe_and_its_b_path(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=0, redundant=True)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    y_a, y_b = redundant_portals("Y", "A"), redundant_portals("Y", "B")
    for i, client in enumerate(inv.clients):
        drv = a.host(client)
        msg = await clients_ops.client_prepare(drv, client, inv, "Y")
        assert f"A {iqn('Y')} via {y_a[i]}" in msg and f"B {iqn('Y', 'B')} via {y_b[i]}" in msg
        await restart(drv)
        assert logins(lab, client.host) == {(iqn("Y"), y_a[i]), (iqn("Y", "B"), y_b[i])}
        assert sessions(lab, client.host) == {iqn("Y"), iqn("Y", "B")}
        assert (
            await clients_facts.client_verify(drv, client, inv, "Y")
            == f"{client.host} sees Y's V: volume"
        )
        st = await clients_facts.client_facts(drv, client, inv)
        assert (st.side, st.status) == ("Y", "online")


async def test_one_dead_portal_stops_only_the_client_assigned_to_it(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=0, redundant=True)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    ed1, ed2 = inv.clients
    y_a, y_b = redundant_portals("Y", "A"), redundant_portals("Y", "B")
    set_fault(lab.dir, y_b[0], "unreachable")  # ED-01's B path on Y
    set_fault(lab.dir, y_a[1], "unreachable")  # ED-02's A path on Y
    # ED-01 switches on its A path; its dead B portal is reported, not fatal.
    msg = await clients_ops.client_prepare(a.host(ed1), ed1, inv, "Y")
    assert f"A {iqn('Y')} via {y_a[0]}" in msg
    assert f"B portal {y_b[0]} does not answer" in msg
    await restart(a.host(ed1))
    assert (iqn("Y"), y_a[0]) in logins(lab, ed1.host)
    # Verify accepts A alone, and names the B path it lacks (review H2).
    assert await clients_facts.client_verify(a.host(ed1), ed1, inv, "Y") == (
        f"{ed1.host} sees Y's V: volume; B path missing "
        f"(no session to {iqn('Y', 'B')} via {y_b[0]})"
    )
    # ED-02's own A portal is dead: refused (the overridable interlock), nothing changed.
    before = iscsi(lab, ed2.host)
    with pytest.raises(InterlockRefused) as e:
        await clients_ops.client_prepare(a.host(ed2), ed2, inv, "Y")
    assert e.value.rule == "client-switch-needs-bridge" and y_a[1] in str(e.value)
    assert iscsi(lab, ed2.host) == before


async def test_an_unrelated_iscsi_disk_is_left_alone(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    client = inv.clients[0]
    drv = a.host(client)
    set_fault(lab.dir, client.host, "unrelated-disk")
    msg = await clients_ops.client_prepare(drv, client, inv, "Y")
    assert f"left alone: {UNRELATED_TARGET}" in msg
    await restart(drv)
    assert (UNRELATED_TARGET, UNRELATED_PORTAL) in logins(lab, client.host)
    assert sessions(lab, client.host) == {iqn("Y"), UNRELATED_TARGET}
    verified = await clients_facts.client_verify(drv, client, inv, "Y")
    assert verified.startswith(f"{client.host} sees Y's V: volume")
    assert UNRELATED_TARGET in verified
    # And back to X: the disk stays, X's login replaces Y's.
    await clients_ops.client_prepare(drv, client, inv, "X")
    await restart(drv)
    assert sessions(lab, client.host) == {iqn("X"), UNRELATED_TARGET}


async def test_a_lost_sides_login_is_removed_and_stays_away_when_it_returns(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    client = inv.clients[0]
    drv = a.host(client)
    set_side_fault(lab.dir, "X", "down")
    # X's bridge is gone: the client's session to it ended, its persistent login did not.
    assert sessions(lab, client.host) == set()
    assert (iqn("X"), inv.sides["X"].portals[0]) in logins(lab, client.host)
    await clients_ops.client_prepare(drv, client, inv, "Y")
    await restart(drv)
    assert (
        await clients_facts.client_verify(drv, client, inv, "Y")
        == f"{client.host} sees Y's V: volume"
    )
    # X comes back; at the client's next boot its initiator makes every persistent login
    # it still has: none of X's may be left.
    set_side_fault(lab.dir, "X", "up")
    await restart(drv)
    assert logins(lab, client.host) == {(iqn("Y"), inv.sides["Y"].portals[0])}
    assert sessions(lab, client.host) == {iqn("Y")}
    assert (
        await clients_facts.client_verify(drv, client, inv, "Y")
        == f"{client.host} sees Y's V: volume"
    )


async def test_verify_still_fails_on_a_session_to_the_other_side(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    client = inv.clients[0]
    with pytest.raises(CommandFailed, match=f"still logged in to {iqn('X')}"):
        # Logged in to X (as made by lab init) and not yet switched: Y's verify fails.
        await clients_facts.client_verify(a.host(client), client, inv, "Y")


async def test_a_switch_on_redundant_sans_keeps_each_client_on_its_toe(
    temporal, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    """The whole switch through Temporal, on a redundant lab with ED-02's B portal on Y
    dead and an archive disk on ED-01: every client lands on its own TOEs, keeps its B
    path where its portal answers, and keeps the disk."""
    from tests.support.cli import cli_json
    from tests.support.driving import drive
    from tests.support.worker import running_worker

    lab = await lab_factory(editors=2, ingest=0, redundant=True)
    y_a, y_b = redundant_portals("Y", "A"), redundant_portals("Y", "B")
    ed1, ed2 = (c.host for c in lab.inventory.clients)
    set_fault(lab.dir, y_b[1], "unreachable")
    set_fault(lab.dir, ed1, "unrelated-disk")
    async with running_worker(temporal, lab):
        started = await cli_json(temporal, lab, "start", "switch", "--to", "Y")
        final = await drive(temporal, lab, started["run_id"], "Y")
        assert final["state"] == "completed", final
        assert all(s["status"] == "done" for s in final["steps"]), final["steps"]
    assert logins(lab, ed1) == {
        (iqn("Y"), y_a[0]),
        (iqn("Y", "B"), y_b[0]),
        (UNRELATED_TARGET, UNRELATED_PORTAL),
    }
    assert sessions(lab, ed1) == {iqn("Y"), iqn("Y", "B"), UNRELATED_TARGET}
    assert logins(lab, ed2) == {(iqn("Y"), y_a[1])}
    assert sessions(lab, ed2) == {iqn("Y")}


async def test_the_new_sides_disks_appear_only_after_the_restart(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """Review H1: while the old side's V: is mounted, the new side's LUNs must not come
    up (StorNext tells disks by label, and mirrored SANs can carry the same labels). The
    switch records the new side's persistent logins without logging in (iscsicli
    PersistentLoginTarget: LoginIScsiTarget with IsPersistent; Microsoft Learn: it
    "either establishes a single login session with a target, or creates a persistent
    login"); the client's initiator makes them at its next boot."""
    lab = await lab_factory(editors=1, ingest=0, redundant=True)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    inv = lab.inventory
    client = inv.clients[0]
    drv = a.host(client)
    y_a, y_b = redundant_portals("Y", "A"), redundant_portals("Y", "B")
    before = sessions(lab, client.host)
    msg = await clients_ops.client_prepare(drv, client, inv, "Y")
    assert "from its next boot" in msg
    # No session to Y yet: only what the client had on X.
    assert sessions(lab, client.host) == before
    assert not any(t.lower().startswith(iqn("Y").lower()) for t in before)
    assert logins(lab, client.host) == {(iqn("Y"), y_a[0]), (iqn("Y", "B"), y_b[0])}
    # Asked again before the restart: the logins make it configured, nothing is added.
    again = await clients_ops.client_prepare(drv, client, inv, "Y")
    assert "already configured for Y" in again
    assert logins(lab, client.host) == {(iqn("Y"), y_a[0]), (iqn("Y", "B"), y_b[0])}
    await restart(drv)
    assert sessions(lab, client.host) == {iqn("Y"), iqn("Y", "B")}
    assert (
        await clients_facts.client_verify(drv, client, inv, "Y")
        == f"{client.host} sees Y's V: volume"
    )
