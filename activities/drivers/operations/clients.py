"""Operations on a switchable client: pointing its iSCSI login, its SNFS name servers and
its Aurora DSM at a side (interlock: only when it reaches that side's bridge)."""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts.clients import (
    parse_nameservers,
    parse_sessions,
    same_pointer,
    same_servers,
)
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from activities.drivers.iscsi import iscsi_run
from activities.drivers.refusals import client_under_write_filter, client_without_bridge
from inventory.models import Inventory, Side, SwitchableClient


@reads_answers
async def client_prepare(
    drv: HostDriver,
    client: SwitchableClient,
    inv: Inventory,
    to: Side,
    overrides: Overrides | None = None,
) -> str:
    """Stop the Aurora software and make the client log in to `to`'s iSCSI target, mount
    `to`'s V: and use `to`'s DSM from its next boot on (the switch then restarts it).

    iSCSI: registers `to`'s portal(s) if absent (New-IscsiTargetPortal discovers the
    targets behind them; a registered one is discovered again), logs in to `to`'s target
    persistently, and removes the persistent login of every other target
    (Unregister-IscsiSession) so it is not logged in again at boot. The old session is
    not logged out here: Windows refuses to log out a session whose disks are in use
    (LogoutIScsiTarget), and SNFS holds them while V: is mounted; the restart ends it.
    Other portals stay registered: a discovered target without a login mounts nothing.
    SNFS: where the inventory names `to`'s `fsnameservers`, writes them to the client's
    fsnameservers file (what "mount backup K2 storage" is: the SNFS client mounts the
    file system its name servers offer, at boot).

    Aurora: writes `to`'s DSM pointer (sides.S.aurora_dsm_pointer, default the DSM's
    host; a name, FQDN, IP or HOST\\INSTANCE) unless the value already names it, compared
    without regard to case.

    Refused first, before anything is read or changed for the switch, when a write
    filter would discard it at the restart (refuse_under_write_filter); then when the
    client cannot reach a portal of `to` (overridable: the probe may be blocked where
    iSCSI is not), and when the client has no iSCSI cmdlets (named).
    No-op when the client is already configured for `to`.
    """
    ov = overrides or Overrides()
    dev = inv.devices
    target = inv.sides[to]
    filtered = await refuse_under_write_filter(drv, client, inv, ov)
    iqn = target.iscsi_target
    portals = target.portals
    reads = [
        ps.iscsi_session_details(),
        ps.iscsi_portals(),
        ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]),
        # One round trip reads the client and probes the portals (hundreds of clients
        # prepare at once; the probe costs the host little when it is not needed).
        *[ps.test_port(p, dev.iscsi_port) for p in portals],
    ]
    if target.fsnameservers is not None:
        reads.append(ps.get_content(dev.snfs_nameservers_file))
    answers = await iscsi_run(drv, *reads)
    sessions = parse_sessions(answers[0])
    registered = {
        str(ps.prop(o, "TargetPortalAddress")).lower() for o in ps.parse_json_list(answers[1])
    }
    pointer = ps.parse_json_object(answers[2]).get(dev.aurora_dsm_value)
    pointer_ok = same_pointer(pointer, target.dsm_pointer)
    reachable = [
        p for p, a in zip(portals, answers[3 : 3 + len(portals)], strict=True) if ps.parse_bool(a)
    ]
    servers_ok = True
    if target.fsnameservers is not None:
        listed = parse_nameservers(ps.parse_json_string(answers[-1]))
        servers_ok = same_servers(listed, target.fsnameservers)

    mine = [s for s in sessions if s.target.lower() == iqn.lower()]
    others = [s for s in sessions if s.target.lower() != iqn.lower()]
    logged_in = any(s.connected for s in mine)
    persistent = any(s.persistent for s in mine)
    stale = [s for s in others if s.persistent]
    # An old session that is no longer persistent is what a prepared client has until
    # its restart ends it: already configured.
    if logged_in and persistent and not stale and pointer_ok and servers_ok:
        return with_forced(f"{client.host} is already configured for {to}", filtered)
    forced = None
    no = client_without_bridge(
        client.host, to, target.bridge.host, portals, dev.iscsi_port, reachable
    )
    if not logged_in and no is not None:
        forced = ov.refuse(drv.name, no.rule, no.refusal, no.forced)
    stmts = [ps.stop_process(p) for p in dev.aurora_processes]
    if not logged_in:
        for p in portals:
            if p.lower() in registered:
                stmts.append(ps.iscsi_refresh_portal(p, dev.iscsi_port))
            else:
                stmts.append(ps.iscsi_add_portal(p, dev.iscsi_port))
        stmts.append(ps.iscsi_connect(iqn, (reachable or portals)[0], dev.iscsi_port))
    elif not persistent:
        stmts.append(ps.iscsi_register(next(s for s in mine if s.connected).session_id))
    stmts += [ps.iscsi_unregister(s.session_id) for s in stale]
    if target.fsnameservers is not None and not servers_ok:
        stmts.append(ps.set_content(dev.snfs_nameservers_file, target.fsnameservers))
    if not pointer_ok:
        stmts.append(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, target.dsm_pointer))
    await iscsi_run(drv, *stmts)
    return with_forced(
        with_forced(
            f"{client.host} reconfigured for {to} (iSCSI {iqn} via {', '.join(portals)}, "
            f"DSM {target.dsm_pointer})",
            forced,
        ),
        filtered,
    )


# -- write filters (issue 25, defect 9): read before anything is changed ----------------------
async def refuse_under_write_filter(
    drv: HostDriver, client: SwitchableClient, inv: Inventory, ov: Overrides
) -> str | None:
    """Refuse (InterlockRefused, rule client-switch-not-under-write-filter) a client whose
    write filter would discard the switch at its restart: UWF on in this session over C:
    (the registry, where Windows keeps the iSCSI initiator's logins and the Aurora DSM
    pointer) or over the fsnameservers file's drive; or an FBWF/EWF, whose state amsm
    cannot read. Changes nothing; a filter that cannot be read raises CommandFailed.
    Returns the override's sentence when the rule was overridden, else None."""
    found = await clients_facts.write_filters(drv)
    drives = sorted({"C:", inv.devices.snfs_nameservers_file[:2].upper()})
    no = client_under_write_filter(
        client.host, found.installed, found.uwf_on, found.uwf_protected, drives
    )
    if no is None:
        return None
    return ov.refuse(drv.name, no.rule, no.refusal, no.forced)


async def uwf_off_for_next_boot(drv: HostDriver, client: SwitchableClient, inv: Inventory) -> bool:
    """Where the site lets a switch turn UWF off (devices.uwf_off_for_switch) and UWF
    protects a drive the switch writes in this session (and no FBWF/EWF is installed):
    turn UWF off from the next restart (UWF_Filter.Disable) and return True; the caller
    restarts the client before it reconfigures it. Otherwise change nothing, False."""
    if not inv.devices.uwf_off_for_switch:
        return False
    found = await clients_facts.write_filters(drv)
    drives = sorted({"C:", inv.devices.snfs_nameservers_file[:2].upper()})
    hit = found.uwf_on and any(d in found.uwf_protected for d in drives)
    if not hit or any(f != "UWF" for f in found.installed):
        return False
    await set_uwf(drv, False)
    return True


async def uwf_on_for_next_boot(drv: HostDriver, client: SwitchableClient) -> str:
    """Turn UWF on again from the next restart (UWF_Filter.Enable), once the switch's
    changes are written with UWF off: they are on the volume, and the filter protects
    them from restart 1/2 on."""
    await set_uwf(drv, True)
    return f"UWF on again on {client.host} from its next restart"


@reads_answers
async def set_uwf(drv: HostDriver, enabled: bool) -> None:
    """Turn UWF on or off from the next restart (this session keeps its state). Raises
    CommandFailed when the method's HRESULT is not 0."""
    answer = await drv.run_one(ps.uwf_set(enabled))
    code = ps.prop(ps.parse_json_object(answer), "ReturnValue")
    if code != 0:
        method = "Enable" if enabled else "Disable"
        raise CommandFailed(drv.name, f"UWF_Filter.{method}() returned {code!r}, not 0")
