"""Operations on a switchable client: pointing its iSCSI logins, its SNFS name servers and
its Aurora DSM at a side (interlock: only when it reaches its own portal on that side)."""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts.clients import (
    parse_nameservers,
    parse_persistent_logins,
    parse_sessions,
    same_servers,
)
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from activities.drivers.iscsi import iscsi_run
from activities.drivers.refusals import client_without_bridge
from inventory.models import Inventory, Side, SwitchableClient, other


@reads_answers
async def client_prepare(
    drv: HostDriver,
    client: SwitchableClient,
    inv: Inventory,
    to: Side,
    overrides: Overrides | None = None,
) -> str:
    """Stop the Aurora software and make the client log in to `to`'s iSCSI target(s), mount
    `to`'s V: and use `to`'s DSM from its next boot on (the switch then restarts it).

    iSCSI, for each of the client's own paths on `to` (`Inventory.client_paths`: A
    through its assigned TOE, and B on a redundant SAN): registers that portal if absent
    (New-IscsiTargetPortal discovers the targets behind it; a registered one is
    discovered again with Update-IscsiTargetPortal), then logs in to the path's target
    through exactly that portal, persistently (Connect-IscsiTarget -TargetPortalAddress
    -IsPersistent $true); a live session that is not persistent is registered instead.
    Only portals that answered the probe are touched: a dead B portal is reported in the
    answer and its path left for later. Then removes every persistent login of the
    OTHER side's targets (its iscsi_target and iscsi_targets), with or without a live
    session (iscsicli RemovePersistentTarget, as the WMI class
    MSiSCSIInitiator_PersistentLoginClass lists them), and reads the logins again:
    that read decides. A login or session to a target of neither side is left alone and
    named. The old session itself is not logged out here: Windows refuses to log out a
    session whose disks are in use (LogoutIScsiTarget), and SNFS holds them while V: is
    mounted; the restart ends it. Other portals stay registered: a discovered target
    without a login mounts nothing.
    SNFS: where the inventory names `to`'s `fsnameservers`, writes them to the client's
    fsnameservers file (what "mount backup K2 storage" is: the SNFS client mounts the
    file system its name servers offer, at boot).

    Refused when the client's path-A portal on `to` does not answer and it is not logged
    in there yet (overridable: the probe may be blocked where iSCSI is not), and when
    the client has no iSCSI cmdlets (named). Raises CommandFailed when a login of the
    other side is still there after its removal. No-op when the client is already
    configured for `to`.
    """
    ov = overrides or Overrides()
    dev = inv.devices
    target = inv.sides[to]
    old_side = inv.sides[other(to)]
    paths = inv.client_paths(client, to)
    reads = [
        ps.iscsi_session_details(),
        ps.iscsi_portals(),
        ps.iscsi_persistent_logins(),
        ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]),
        # One round trip reads the client and probes its own portals (hundreds of
        # clients prepare at once; the probe costs the host little when not needed).
        *[ps.test_port(p.portal, dev.iscsi_port) for p in paths],
    ]
    if target.fsnameservers is not None:
        reads.append(ps.get_content(dev.snfs_nameservers_file))
    answers = await iscsi_run(drv, *reads)
    sessions = [s for s in parse_sessions(answers[0]) if s.connected]
    registered = {
        str(ps.prop(o, "TargetPortalAddress")).lower() for o in ps.parse_json_list(answers[1])
    }
    logins = parse_persistent_logins(answers[2])
    dsm_host = ps.parse_json_object(answers[3]).get(dev.aurora_dsm_value)
    probes = answers[4 : 4 + len(paths)]
    answered = {p.name: ps.parse_bool(a) for p, a in zip(paths, probes, strict=True)}
    servers_ok = True
    if target.fsnameservers is not None:
        listed = parse_nameservers(ps.parse_json_string(answers[-1]))
        servers_ok = same_servers(listed, target.fsnameservers)

    def session_to(iqn: str) -> str | None:
        return next((s.session_id for s in sessions if s.target.lower() == iqn.lower()), None)

    def login_to(iqn: str) -> bool:
        return any(lg.target.lower() == iqn.lower() for lg in logins)

    stale = [lg for lg in logins if old_side.has_target(lg.target)]
    unrelated = sorted(
        {s.target for s in sessions if inv.side_of_target(s.target) is None}
        | {lg.target for lg in logins if inv.side_of_target(lg.target) is None}
    )
    notes = [f"B portal {p.portal} does not answer" for p in paths[1:] if not answered[p.name]]
    if unrelated:
        notes.append(f"left alone: {', '.join(unrelated)} (neither side's target)")
    # A path is set up when its session is live and persistent; a B path whose portal
    # does not answer cannot be, now.
    due = [p for p in paths if p.name == "A" or answered[p.name]]
    ready = all(session_to(p.target) and login_to(p.target) for p in due)
    if ready and not stale and dsm_host == target.dsm.host and servers_ok:
        return "; ".join([f"{client.host} is already configured for {to}", *notes])
    forced = None
    path_a = paths[0]
    if session_to(path_a.target) is None and not answered["A"]:
        no = client_without_bridge(
            client.host, to, target.bridge.host, [path_a.portal], dev.iscsi_port, []
        )
        assert no is not None
        forced = ov.refuse(drv.name, no.rule, no.refusal, no.forced)
    stmts = [ps.stop_process(p) for p in dev.aurora_processes]
    done: list[str] = []
    for p in due:
        live = session_to(p.target)
        if live is not None:
            if not login_to(p.target):
                stmts.append(ps.iscsi_register(live))
            done.append(f"{p.name} {p.target} (logged in)")
            continue
        if p.portal.lower() in registered:
            stmts.append(ps.iscsi_refresh_portal(p.portal, dev.iscsi_port))
        else:
            stmts.append(ps.iscsi_add_portal(p.portal, dev.iscsi_port))
        stmts.append(ps.iscsi_connect(p.target, p.portal, dev.iscsi_port))
        done.append(f"{p.name} {p.target} via {p.portal}")
    removals = [
        ps.iscsi_remove_persistent_login(
            lg.initiator, lg.target, lg.initiator_port, lg.address, lg.socket
        )
        for lg in stale
    ]
    first = len(stmts)
    stmts += removals
    if target.fsnameservers is not None and not servers_ok:
        stmts.append(ps.set_content(dev.snfs_nameservers_file, target.fsnameservers))
    stmts.append(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, target.dsm.host))
    if removals:
        stmts.append(ps.iscsi_persistent_logins())
    out = await iscsi_run(drv, *stmts)
    if removals:
        left = [lg for lg in parse_persistent_logins(out[-1]) if old_side.has_target(lg.target)]
        if left:
            said = " ".join(t.strip() for t in out[first : first + len(removals)] if t)
            raise CommandFailed(
                drv.name,
                f"{client.host}: the persistent login of {other(to)}'s target "
                f"{', '.join(f'{lg.target} at {lg.address}' for lg in left)} is still there "
                f"after iscsicli RemovePersistentTarget ({said[:300]}); at its next boot "
                f"the client would log in to {other(to)} again",
            )
        notes.insert(
            0,
            f"removed {other(to)}'s persistent login(s) "
            + ", ".join(f"{lg.target} at {lg.address}" for lg in stale),
        )
    return with_forced(
        "; ".join(
            [
                f"{client.host} reconfigured for {to} (iSCSI {', '.join(done)}, "
                f"DSM {target.dsm.host})",
                *notes,
            ]
        ),
        forced,
    )
