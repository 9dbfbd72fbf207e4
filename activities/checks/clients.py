"""What the site check reads on a switchable client: the iSCSI cmdlets a switch uses,
each side's portals and targets, and its V: volume."""

from __future__ import annotations

from activities.checks.report import Report
from activities.drivers.facts import clients as clients_facts
from activities.drivers.host import HostDriver
from activities.drivers.iscsi import ISCSI_NEEDS
from inventory.models import SIDES, Inventory


async def client(inv: Inventory, drv: HostDriver, report: Report) -> None:
    missing = await report.read(
        "client-iscsi", ISCSI_NEEDS, clients_facts.iscsi_cmdlets_missing(drv)
    )
    if missing is None:
        return
    if missing:
        report.add(
            "client-iscsi",
            ISCSI_NEEDS,
            f"no {', '.join(missing)}",
            "a switchable client needs Windows 8.1 / Windows Server 2012 R2 or later",
        )
    await portals(inv, drv, report)
    if not missing:
        await targets(inv, drv, report)
    volume = await report.read("client-volume", "V:\\ present", clients_facts.volume_present(drv))
    if volume is None:
        return
    if not volume:
        report.add(
            "client-volume",
            "V:\\ present",
            "no V: drive",
            "the client does not see its side's V: now; check its iSCSI login and SNFS",
            warning=True,
        )


async def portals(inv: Inventory, drv: HostDriver, report: Report) -> None:
    port = inv.devices.iscsi_port
    for side in SIDES:
        addresses = inv.sides[side].portals
        reached = await report.read(
            "client-portal",
            f"{side}'s iSCSI portals",
            clients_facts.portals_reachable(drv, addresses, port),
            "see the error",
        )
        if reached is None:
            continue
        if not any(reached.values()):
            report.add(
                "client-portal",
                f"{side}'s iSCSI portal {' or '.join(addresses)} reachable on port {port}",
                "no answer from " + ", ".join(addresses),
                f"route the client to {side}'s media network (sides.{side}.iscsi_portals); "
                f"a switch to {side} is refused while it cannot reach one",
            )


async def targets(inv: Inventory, drv: HostDriver, report: Report) -> None:
    """Each side's target among the targets the initiator discovered through that side's
    registered portals. A side whose portal the client has not registered yet is not
    judged: the switch registers it (New-IscsiTargetPortal), which discovers its targets,
    and discovering here would change the initiator."""
    known = await report.read(
        "client-target",
        "the initiator's portals and targets",
        clients_facts.iscsi_discovery(drv),
        "see the error",
    )
    if known is None:
        return
    registered = {p.lower() for p in known.portals}
    discovered = {t.lower() for t in known.targets}
    for side in SIDES:
        s = inv.sides[side]
        through = [p for p in s.portals if p.lower() in registered]
        if not through or s.iscsi_target.lower() in discovered:
            continue
        report.add(
            "client-target",
            f"{side}'s target {s.iscsi_target} discovered through {', '.join(through)}",
            "the initiator lists "
            + (", ".join(known.targets) or "no target")
            + f" (Get-IscsiTarget): {side}'s portal does not offer it to this client",
            f"assign the client to {side}'s bridge in the K2 System Configuration (its "
            f"target serves the initiators assigned to it), or correct "
            f"sides.{side}.iscsi_target; a switch to {side} cannot log in to it",
        )
