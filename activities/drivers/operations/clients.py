"""Operations on a switchable client: pointing its iSCSI logins, its SNFS name servers and
its Aurora DSM at a side (interlock: only when it reaches its own portal on that side)."""

from __future__ import annotations

from dataclasses import dataclass

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts.clients import (
    IscsiSession,
    PersistentLogin,
    parse_nameservers,
    parse_persistent_logins,
    parse_sessions,
    same_pointer,
    same_servers,
)
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from activities.drivers.iscsi import iscsi_run
from activities.drivers.refusals import client_under_write_filter, client_without_bridge
from inventory.models import Inventory, IscsiPath, Side, SwitchableClient, other


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

    Aurora: the processes that run are stopped first, and seen gone, in a round trip
    of their own: one still running fails the prepare, unchanged (stop_aurora).

    iSCSI, for each of the client's own paths on `to` (`Inventory.client_paths`: A
    through its assigned TOE, and B on a redundant SAN) that has no persistent login
    yet: registers that portal if absent (New-IscsiTargetPortal discovers the targets
    behind it; a registered one is discovered again with Update-IscsiTargetPortal), then
    records a persistent login to the path's target through exactly that portal WITHOUT
    logging in now (iscsicli PersistentLoginTarget, LoginIScsiTarget with IsPersistent):
    the client's initiator logs in at its next boot, when the old side's session and V:
    are gone, so the two SANs' disks are never on the client at once (StorNext tells
    disks by label, and mirrored SANs can carry the same ones). A live session to the
    path's target that is not persistent is registered instead (Register-IscsiSession).
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
    Aurora: writes `to`'s DSM pointer (sides.S.aurora_dsm_pointer, default the DSM's
    host; a name, FQDN, IP or HOST\\INSTANCE) unless the value already names it, compared
    without regard to case.

    Refused first, before anything is read or changed for the switch, when a write
    filter would discard it at the restart (refuse_under_write_filter). Refused when the
    client's path-A portal on `to` does not answer and it is not logged in there yet
    (overridable: the probe may be blocked where iSCSI is not), and when
    the client has no iSCSI cmdlets (named). Raises CommandFailed when a login of the
    other side is still there after its removal. No-op when the client is already
    configured for `to`, but for the Aurora processes that run: they are stopped then
    too (a retry after Aurora was started again), and the answer says so.
    """
    ov = overrides or Overrides()
    target = inv.sides[to]
    filtered = await refuse_under_write_filter(drv, client, inv, ov)
    old_side = inv.sides[other(to)]
    paths = inv.client_paths(client, to)
    read = await _read_client(drv, inv, to, paths)
    notes = _notes(read, inv, paths)
    stale = [lg for lg in read.logins if old_side.has_target(lg.target)]
    # A path is set up when its persistent login is there: its session comes at the next
    # boot, once the old side's V: is gone (review H1); a B path whose portal does not
    # answer cannot be set up now.
    due = [p for p in paths if p.name == "A" or read.answered[p.name]]
    ready = all(read.login_to(p.target, p.portal) for p in due)
    if ready and not stale and read.pointer_ok and read.servers_ok:
        said = f"{client.host} is already configured for {to}"
        return with_forced(
            "; ".join([said, *await _still_running(drv, inv, read), *notes]), filtered
        )
    forced = _refuse_without_bridge(drv, client, inv, to, paths[0], read, ov)
    notes += await _aurora(drv, inv, read.aurora)
    stmts, done, added = _login_statements(read, due, inv)
    removals = [_removal(lg) for lg in stale]
    first = len(stmts)
    stmts += removals
    said_by = [i for i, st in enumerate(stmts) if st.startswith("iscsicli ")]
    stmts += _pointer_statements(read, inv, to)
    if removals or added:
        stmts.append(ps.iscsi_persistent_logins())
    out = await iscsi_run(drv, *stmts)
    if added:
        _check_added(drv, client, inv, to, out, said_by, added)
    if removals:
        _check_removed(drv, client, inv, to, out[first : first + len(removals)], out[-1])
        notes.insert(
            0,
            f"removed {other(to)}'s persistent login(s) "
            + ", ".join(f"{lg.target} at {lg.address or 'any portal'}" for lg in stale),
        )
    return with_forced(
        with_forced(
            "; ".join(
                [
                    f"{client.host} reconfigured for {to} (iSCSI {', '.join(done)}"
                    f"{' from its next boot' if added else ''}, DSM {target.dsm_pointer})",
                    *notes,
                ]
            ),
            forced,
        ),
        filtered,
    )


async def _still_running(drv: HostDriver, inv: Inventory, read: _ClientRead) -> list[str]:
    """On a client already configured (a retry, or one set by hand), the Aurora processes
    that run again are stopped all the same: the restart that follows expects them
    stopped (docs/site/client-switch.md); none running adds nothing."""
    return [await stop_aurora(drv, inv, read.aurora)] if read.aurora else []


def _has_login(logins: list[PersistentLogin], iqn: str, portal: str) -> bool:
    # A login is a path's when it names the path's target through the path's portal
    # (or through any portal: a login without one); A's login does not stand for B's.
    return any(
        lg.target.lower() == iqn.lower() and lg.address.lower() in ("", portal.lower())
        for lg in logins
    )


@dataclass(frozen=True)
class _ClientRead:
    """What client_prepare reads of the client in its one round trip."""

    sessions: list[IscsiSession]  # the connected ones
    registered: set[str]  # the registered portals' addresses, in lower case
    logins: list[PersistentLogin]
    pointer_ok: bool
    servers_ok: bool
    answered: dict[str, bool]  # path name -> its portal answered the probe
    aurora: list[tuple[str, str]]  # the Aurora processes that run: (name, Id)

    def session_to(self, iqn: str) -> str | None:
        return next((s.session_id for s in self.sessions if s.target.lower() == iqn.lower()), None)

    def login_to(self, iqn: str, portal: str) -> bool:
        return _has_login(self.logins, iqn, portal)


async def _read_client(
    drv: HostDriver, inv: Inventory, to: Side, paths: list[IscsiPath]
) -> _ClientRead:
    dev = inv.devices
    target = inv.sides[to]
    old_side = inv.sides[other(to)]
    reads = [
        ps.iscsi_session_details(),
        ps.iscsi_portals(),
        ps.iscsi_persistent_logins(),
        ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]),
        # One round trip reads the client and probes its own portals (hundreds of
        # clients prepare at once; the probe costs the host little when not needed).
        *[ps.test_port(p.portal, dev.iscsi_port) for p in paths],
        *[ps.get_process(name) for name in dev.aurora_processes],
    ]
    if target.fsnameservers is not None:
        reads.append(ps.get_content(dev.snfs_nameservers_file))
    answers = await iscsi_run(drv, *reads)
    sessions = [s for s in parse_sessions(answers[0]) if s.connected]
    registered = {
        str(ps.prop(o, "TargetPortalAddress")).lower() for o in ps.parse_json_list(answers[1])
    }
    # Only the old side's logins, the ones removed here, must read whole; an unrelated
    # one without a portal or initiator is listed as it is (review M3).
    logins = parse_persistent_logins(answers[2], strict=old_side.has_target)
    pointer = ps.parse_json_object(answers[3]).get(dev.aurora_dsm_value)
    probes = answers[4 : 4 + len(paths)]
    answered: dict[str, bool] = {
        p.name: ps.parse_bool(a) for p, a in zip(paths, probes, strict=True)
    }
    first = 4 + len(paths)
    aurora = _running(answers[first : first + len(dev.aurora_processes)])
    servers_ok = True
    if target.fsnameservers is not None:
        listed = parse_nameservers(ps.parse_json_string(answers[-1]))
        servers_ok = same_servers(listed, target.fsnameservers)
    return _ClientRead(
        sessions=sessions,
        registered=registered,
        logins=logins,
        pointer_ok=same_pointer(pointer, target.dsm_pointer),
        servers_ok=servers_ok,
        answered=answered,
        aurora=aurora,
    )


def _running(answers: list[str]) -> list[tuple[str, str]]:
    """The processes Get-Process answered (ps.get_process, one answer per name): their
    (name, Id)."""
    return [
        (str(ps.prop(o, "Name")), str(ps.prop(o, "Id")))
        for a in answers
        for o in ps.parse_json_list(a)
    ]


def _named(procs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} ({pid})" for name, pid in procs)


async def _aurora(drv: HostDriver, inv: Inventory, running: list[tuple[str, str]]) -> list[str]:
    """The Aurora processes that run stopped (stop_aurora), or the note that none ran:
    the answer shows the check ran."""
    if running:
        return [await stop_aurora(drv, inv, running)]
    names = inv.devices.aurora_processes
    return [f"Aurora not running ({', '.join(names)})"] if names else []


def stop_wait(inv: Inventory) -> int:
    """Seconds Wait-Process waits for the stopped Aurora processes to exit: 10, or a
    quarter of the operation's timeout when that is shorter (the transport waits for
    the script no longer than `timing.operation_timeout`)."""
    return max(1, min(10, int(inv.timing.operation_timeout / 4)))


def _ids(drv: HostDriver, running: list[tuple[str, str]]) -> list[int]:
    """The Ids Get-Process gave, as numbers (Process.Id: an Int32); anything else fails
    closed, named."""
    bad = [f"{name} ({pid})" for name, pid in running if not pid.isdigit() or int(pid) <= 0]
    if bad:
        raise CommandFailed(
            drv.name,
            f"Aurora could not be stopped: Get-Process gave no usable Id for {', '.join(bad)}; "
            "nothing was reconfigured",
        )
    return [int(pid) for _, pid in running]


async def stop_aurora(drv: HostDriver, inv: Inventory, running: list[tuple[str, str]]) -> str:
    """Stop the Aurora processes that run (`running`, as read: only those, by Id: a
    refusal of one does not spare the others of its name), wait for them to exit, all in
    one bound (ps.stop_process, ps.wait_process), and read every configured Aurora
    process again: that read decides. A refusal of Stop-Process is caught on the host and
    its words kept, per Id: a process that is gone after the wait stopped (one already
    terminating is refused, one gone since the read is not found, then both are gone).
    Raises CommandFailed naming what still runs (with the host's words), or what was
    started again (a new Id: a launcher or a service's recovery); nothing else is sent
    then."""
    ids = _ids(drv, running)
    wait = stop_wait(inv)
    every = inv.devices.aurora_processes
    stmts = [
        *[ps.stop_process(pid) for pid in ids],
        ps.wait_process(ids, wait),
        *[ps.get_process(n) for n in every],
    ]
    try:
        out = await drv.run(*stmts)
    except CommandFailed as e:
        raise CommandFailed(
            drv.name,
            f"Aurora could not be stopped ({_named(running)}); nothing was reconfigured",
            e.message,
        ) from None
    said = {pid: out[i].strip() for i, (_, pid) in enumerate(running) if out[i].strip()}
    left = _running(out[len(running) + 1 :])
    if left:
        raise CommandFailed(
            drv.name,
            f"Aurora did not stop: {'; '.join(_left(left, running, said, wait))}; nothing "
            "was reconfigured: end it on the client (or what starts it again, or restart "
            "the client by hand), then retry",
        )
    # Refused yet gone: it was already ending (or had exited since the read); it stopped.
    words = "; ".join(f"{n} ({pid}): {said[pid]}" for n, pid in running if pid in said)
    return f"Aurora stopped ({_named(running)}" + (
        f"; gone after the wait though Stop-Process answered: {words})" if words else ")"
    )


def _left(
    left: list[tuple[str, str]],
    running: list[tuple[str, str]],
    said: dict[str, str],
    wait: int,
) -> list[str]:
    """What the read after the stop found, compared with the read before it: the same
    Id still runs, or a new one was started."""
    before = {(n.lower(), pid) for n, pid in running}
    ran = {n.lower() for n, _ in running}
    out = []
    for name, pid in left:
        if (name.lower(), pid) not in before:
            again = "started again" if name.lower() in ran else "started"
            out.append(f"{name} {again} (new Id {pid}: a launcher or a service restarts it)")
            continue
        words = said.get(pid)
        out.append(
            f"{name} ({pid}) still running after Stop-Process -Force and up to {wait} s "
            "of Wait-Process "
            + (f"(the host: {words})" if words else "(its termination waits on I/O)")
        )
    return out


def _notes(read: _ClientRead, inv: Inventory, paths: list[IscsiPath]) -> list[str]:
    """What the answer adds: B paths whose portal does not answer, and the logins and
    sessions of neither side's target, left alone."""
    unrelated = sorted(
        {s.target for s in read.sessions if inv.side_of_target(s.target) is None}
        | {lg.target for lg in read.logins if inv.side_of_target(lg.target) is None}
    )
    notes = [
        f"B path missing: B portal {p.portal} does not answer (no login to {p.target} yet)"
        for p in paths[1:]
        if not read.answered[p.name]
        and not (read.session_to(p.target) and read.login_to(p.target, p.portal))
    ]
    if unrelated:
        notes.append(f"left alone: {', '.join(unrelated)} (neither side's target)")
    return notes


def _refuse_without_bridge(
    drv: HostDriver,
    client: SwitchableClient,
    inv: Inventory,
    to: Side,
    path_a: IscsiPath,
    read: _ClientRead,
    ov: Overrides,
) -> str | None:
    """Refuse a client whose path-A portal on `to` does not answer and that is not
    logged in there yet; the override's sentence when the rule was overridden."""
    if read.session_to(path_a.target) is not None or read.login_to(path_a.target, path_a.portal):
        return None
    no = client_without_bridge(
        client.host,
        to,
        inv.sides[to].bridge.host,
        [path_a.portal],
        inv.devices.iscsi_port,
        [path_a.portal] if read.answered["A"] else [],
    )
    if no is None:
        return None
    return ov.refuse(drv.name, no.rule, no.refusal, no.forced)


def _login_statements(
    read: _ClientRead, due: list[IscsiPath], inv: Inventory
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Each due path's login: the statements, what each path says, and the (target,
    portal) of the logins added."""
    dev = inv.devices
    stmts: list[str] = []
    done: list[str] = []
    added: list[tuple[str, str]] = []
    for p in due:
        if read.login_to(p.target, p.portal):
            done.append(f"{p.name} {p.target} via {p.portal} (already there)")
            continue
        live = read.session_to(p.target)
        if live is not None:
            stmts.append(ps.iscsi_register(live))
            done.append(f"{p.name} {p.target} (logged in)")
            continue
        if p.portal.lower() in read.registered:
            stmts.append(ps.iscsi_refresh_portal(p.portal, dev.iscsi_port))
        else:
            stmts.append(ps.iscsi_add_portal(p.portal, dev.iscsi_port))
        # The login only, no session now: the new side's disks must not appear while
        # the old side's V: is mounted (review H1); the restart logs in.
        stmts.append(ps.iscsi_persistent_login(p.target, p.portal, dev.iscsi_port))
        added.append((p.target, p.portal))
        done.append(f"{p.name} {p.target} via {p.portal}")
    return stmts, done, added


def _removal(lg: PersistentLogin) -> str:
    return ps.iscsi_remove_persistent_login(
        lg.initiator, lg.target, lg.initiator_port, lg.address, lg.socket
    )


def _pointer_statements(read: _ClientRead, inv: Inventory, to: Side) -> list[str]:
    """The SNFS name servers and the Aurora DSM pointer, each where it is not `to`'s."""
    dev = inv.devices
    target = inv.sides[to]
    stmts = []
    if target.fsnameservers is not None and not read.servers_ok:
        stmts.append(ps.set_content(dev.snfs_nameservers_file, target.fsnameservers))
    if not read.pointer_ok:
        stmts.append(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, target.dsm_pointer))
    return stmts


def _check_added(
    drv: HostDriver,
    client: SwitchableClient,
    inv: Inventory,
    to: Side,
    out: list[str],
    said_by: list[int],
    added: list[tuple[str, str]],
) -> None:
    """The read-back decides: iscsicli's exit code does not stop the script."""
    now = parse_persistent_logins(out[-1], strict=inv.sides[other(to)].has_target)
    missing = [(t, portal) for t, portal in added if not _has_login(now, t, portal)]
    if missing:
        said = " ".join(out[i].strip() for i in said_by if out[i])
        raise CommandFailed(
            drv.name,
            f"{client.host}: no persistent login to "
            f"{', '.join(f'{t} via {portal}' for t, portal in missing)} after iscsicli "
            f"PersistentLoginTarget ({said[:300]}); the client would not log in to "
            f"{to} at its restart",
        )


def _check_removed(
    drv: HostDriver,
    client: SwitchableClient,
    inv: Inventory,
    to: Side,
    said: list[str],
    logins: str,
) -> None:
    """The read-back `logins` decides: no persistent login of the other side's targets
    is left after the removals (which answered `said`)."""
    old_side = inv.sides[other(to)]
    left = [
        lg
        for lg in parse_persistent_logins(logins, strict=old_side.has_target)
        if old_side.has_target(lg.target)
    ]
    if left:
        answered = " ".join(t.strip() for t in said if t)
        raise CommandFailed(
            drv.name,
            f"{client.host}: the persistent login of {other(to)}'s target "
            f"{', '.join(f'{lg.target} at {lg.address or chr(42)}' for lg in left)} is still there "
            f"after iscsicli RemovePersistentTarget ({answered[:300]}); at its next boot "
            f"the client would log in to {other(to)} again",
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
