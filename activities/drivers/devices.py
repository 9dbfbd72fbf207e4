"""Facts (read-only probes) and operations on the Windows hosts around the pair.

Every operation reads the device first and does nothing when it is already in the
wanted state, so running it twice is safe. Interlocks live here, in the driver
layer, so no caller can bypass them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from activities.drivers import powershell as ps
from activities.drivers.errors import (
    RULE_BROWSE_STOPPED,
    RULE_CLIENT_BRIDGE,
    RULE_INSYNC_STOPPED,
    RULE_PURGE_BACKUP_ONLY,
    CommandFailed,
    InterlockRefused,
    Unreachable,
)
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from inventory.models import (
    SIDES,
    BrowseComponent,
    DeviceSettings,
    Inventory,
    Side,
    SwitchableClient,
    other,
)
from inventory.names import path_problem, segment_problem
from inventory.status import ClientStatus, ServiceState


# -- facts ----------------------------------------------------------------------------------
def _by_name(names: list[str], line: str) -> dict[str, dict[str, object]]:
    """Get-Service's objects by the names asked for: a name may be the key name or the
    display name (Get-Service -Name accepts both and answers with the key name in
    Name), compared without regard to case."""
    objs = ps.parse_json_list(line)
    out: dict[str, dict[str, object]] = {}
    for n in names:
        low = n.lower()
        for o in objs:
            if low in (str(o.get("Name", "")).lower(), str(o.get("DisplayName", "")).lower()):
                out[n] = o
                break
    return out


@reads_answers
async def services(drv: HostDriver, names: list[str]) -> dict[str, str]:
    """The status of each service, keyed by the name asked for (key or display name)."""
    line = await drv.run_one(ps.get_services(names))
    return {n: ps.parse_service_status(o.get("Status")) for n, o in _by_name(names, line).items()}


# How often a stop that was sent with -NoWait is polled.
SERVICE_POLL_SECONDS = 0.2


@reads_answers
async def stop_services(drv: HostDriver, names: list[str]) -> list[str]:
    """Stop the services and wait at most the driver's timeout for them to stop.

    Stop-Service -Force also stops the services that depend on them; those that were
    running are returned (key names, not among `names`) so the caller can start them
    again. Raises CommandFailed naming the services still not stopped at the deadline.
    """
    asked = {n.lower() for n in names}
    dependents: list[str] = []
    for line in await drv.run(*[ps.get_dependent_services(n) for n in names]):
        for o in ps.parse_json_list(line):
            key, display = str(o.get("Name", "")), str(o.get("DisplayName", ""))
            running = ps.parse_service_status(o.get("Status")) == "Running"
            mine = key.lower() in asked or display.lower() in asked
            if running and not mine and key not in dependents:
                dependents.append(key)
    await drv.run(*[ps.stop_service(n) for n in names])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drv.timeout
    while True:
        svc = await services(drv, names)
        pending = [f"{n} ({svc.get(n, 'Missing')})" for n in names if svc.get(n) != "Stopped"]
        if not pending:
            return dependents
        if loop.time() >= deadline:
            raise CommandFailed(
                drv.name, f"services not stopped within {drv.timeout:g} s: {', '.join(pending)}"
            )
        await asyncio.sleep(SERVICE_POLL_SECONDS)


async def start_services(drv: HostDriver, names: list[str]) -> None:
    if names:
        await drv.run(*[ps.start_service(n) for n in names])


@reads_answers
async def restart_dependents(drv: HostDriver, names: list[str]) -> list[str]:
    """Start the stopped services that depend on `names` and start automatically (what
    a Stop-Service -Force of theirs stopped); returns their key names."""
    todo: list[str] = []
    for line in await drv.run(*[ps.get_dependent_services(n) for n in names]):
        for o in ps.parse_json_list(line):
            key = str(o.get("Name", ""))
            stopped = ps.parse_service_status(o.get("Status")) == "Stopped"
            start = o.get("StartType")
            auto = (ps.START_TYPE.get(start) if isinstance(start, int) else start) == "Automatic"
            if stopped and auto and key not in todo:
                todo.append(key)
    await start_services(drv, todo)
    return todo


@reads_answers
async def process_running(drv: HostDriver, name: str) -> bool:
    return bool(ps.parse_json_list(await drv.run_one(ps.get_process(name))))


@reads_answers
async def uptime(drv: HostDriver) -> float:
    """Seconds since the host booted: its time now minus its boot time, both read in one
    instance, so a step of the host's clock (which moves both) does not change it."""
    info = ps.parse_json_object(await drv.run_one(ps.boot_info()))
    booted = ps.parse_datetime(ps.prop(info, "LastBootUpTime"))
    now = ps.parse_datetime(ps.prop(info, "LocalDateTime"))
    seconds = (now - booted).total_seconds()
    if seconds < 0:
        raise ps.BadOutput(f"booted after its own time now ({booted} > {now})")
    return seconds


async def restart(drv: HostDriver) -> None:
    """Send the host a restart (Restart-Computer -Force). Sent is all it says: the
    connection can drop as the host goes down, so an Unreachable here is not a failure;
    whether the host restarted is read from its boot (`boot`)."""
    with contextlib.suppress(Unreachable):
        await drv.run_one(ps.restart_computer())


@dataclass(frozen=True)
class Boot:
    """When a host booted, on the worker's clock: between `earliest` and `latest`, the
    round trip of the reading (the host's clock plays no part: its uptime does)."""

    earliest: float
    latest: float

    def after(self, moment: float, tolerance: float) -> bool:
        """A boot later than the one that happened at or before `moment`: later by more
        than `tolerance` (worker clocks, one worker and the next, may disagree a little)."""
        return self.earliest > moment + tolerance


async def boot(drv: HostDriver) -> Boot:
    sent = time.time()
    up = await uptime(drv)
    return Boot(earliest=sent - up, latest=time.time() - up)


def _twin(active: str) -> str:
    return active[: -len(".exe.config")] + ".backup.exe.config"


def _tmp(active: str) -> str:
    return active[: -len(".exe.config")] + ".amsm-swap.exe.config"


def _join(folder: str, name: str) -> str:
    return folder.rstrip("\\") + "\\" + name


@dataclass
class BrowseFacts:
    services: list[ServiceState]
    file_sides: dict[str, Side | None]  # active file name -> side it points at

    @property
    def running(self) -> bool:
        return all(s.status == "Running" for s in self.services)

    @property
    def stopped(self) -> bool:
        return all(s.status == "Stopped" for s in self.services)

    @property
    def side(self) -> Side | None:
        sides = set(self.file_sides.values())
        return next(iter(sides)) if len(sides) == 1 else None


@reads_answers
async def browse_facts(drv: HostDriver, comp: BrowseComponent, inv: Inventory) -> BrowseFacts:
    stmts = [ps.get_services(comp.services)]
    stmts += [ps.get_content(_join(comp.config_dir, f)) for f in comp.config_files]
    lines = await drv.run(*stmts)
    svc = {
        n: ps.parse_service_status(o.get("Status"))
        for n, o in _by_name(comp.services, lines[0]).items()
    }
    file_sides: dict[str, Side | None] = {}
    for f, line in zip(comp.config_files, lines[1:], strict=True):
        file_sides[f] = inv.side_of_marker(ps.parse_json_string(line))
    states = [ServiceState(name=n, status=svc.get(n, "Missing")) for n in comp.services]
    return BrowseFacts(states, file_sides)


@reads_answers
async def smartbins_facts(drv: HostDriver, dev: DeviceSettings) -> tuple[bool, str | None]:
    svc_line, reg_line = await drv.run(
        ps.get_services([dev.smartbins_service]),
        ps.get_registry(dev.smartbins_registry, [dev.smartbins_mode_value]),
    )
    svc = _by_name([dev.smartbins_service], svc_line).get(dev.smartbins_service)
    if svc is None:
        raise CommandFailed(
            drv.name, f"no service {dev.smartbins_service!r} in Get-Service's answer"
        )
    reg = ps.parse_json_object(reg_line)
    running = ps.parse_service_status(svc.get("Status")) == "Running"
    mode = reg.get(dev.smartbins_mode_value)
    return running, (str(mode) if mode is not None else None)


@reads_answers
async def insync_facts(drv: HostDriver, dev: DeviceSettings) -> tuple[bool, Side | None]:
    proc_line, reg_line = await drv.run(
        ps.get_process(dev.insync_process),
        ps.get_registry(dev.insync_registry, [dev.insync_direction_value]),
    )
    running = bool(ps.parse_json_list(proc_line))
    value = ps.parse_json_object(reg_line).get(dev.insync_direction_value)
    main: Side | None = value if value in SIDES else None
    return running, main


ISCSI_NEEDS = "the iSCSI PowerShell module (Windows 8 / Windows Server 2012 or later)"


async def _iscsi_run(drv: HostDriver, *statements: str) -> list[str]:
    """drv.run for a script that uses the iSCSI cmdlets. When it fails, ask the host
    whether it has them at all: a client older than Windows 8 / Server 2012 has no
    iSCSI module, and the operator must read that, with the host's name, rather than
    PowerShell's "not recognized as the name of a cmdlet". Costs nothing when it works."""
    try:
        return await drv.run(*statements)
    except CommandFailed as failed:
        try:
            present = await drv.run_one(ps.get_commands(ps.ISCSI_CMDLETS))
            names = {str(o.get("Name", "")).lower() for o in ps.parse_json_list(present)}
        except (CommandFailed, ps.BadOutput):
            raise failed from None
        missing = [c for c in ps.ISCSI_CMDLETS if c.lower() not in names]
        if missing:
            raise CommandFailed(
                drv.name,
                f"{drv.name} has no {', '.join(missing)}: a switchable client needs {ISCSI_NEEDS}",
            ) from None
        raise


def _nameservers(text: str) -> list[str]:
    """The name servers an fsnameservers file lists: one per line; blank lines and
    '#' comments ignored (StorNext's fsnameservers(4))."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.append(entry)
    return out


def _same_servers(listed: list[str], wanted: list[str]) -> bool:
    return [n.lower() for n in listed] == [n.lower() for n in wanted]


@dataclass(frozen=True)
class IscsiSession:
    target: str
    connected: bool
    persistent: bool
    session_id: str


def _sessions(line: str) -> list[IscsiSession]:
    return [
        IscsiSession(
            str(ps.prop(o, "TargetNodeAddress")),
            ps.prop(o, "IsConnected") in (True, "True"),
            ps.prop(o, "IsPersistent") in (True, "True"),
            str(ps.prop(o, "SessionIdentifier")),
        )
        for o in ps.parse_json_list(line)
    ]


@reads_answers
async def client_facts(drv: HostDriver, client: SwitchableClient, inv: Inventory) -> ClientStatus:
    dev = inv.devices
    sess_line, v_line, reg_line = await _iscsi_run(
        drv,
        ps.iscsi_sessions(),
        ps.test_path("V:\\"),
        ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]),
    )
    sessions = [
        str(s.get("TargetNodeAddress"))
        for s in ps.parse_json_list(sess_line)
        if s.get("IsConnected") in (True, "True")
    ]
    sides = {inv.side_of_target(t) for t in sessions} - {None}
    dsm_host = ps.parse_json_object(reg_line).get(dev.aurora_dsm_value)
    side: Side | None = None
    if len(sides) == 1:
        side = sides.pop()
    elif not sessions:
        side = next((s for s in SIDES if inv.sides[s].dsm.host == dsm_host), None)
    v_visible = ps.parse_bool(v_line)
    return ClientStatus(
        host=client.host,
        kind=client.kind,
        side=side,
        status="online" if v_visible else "no-volume",
    )


# -- operations ----------------------------------------------------------------------------
@reads_answers
async def smartbins_set(
    drv: HostDriver, dev: DeviceSettings, mode: Literal["Normal", "Pseudo"], run: bool
) -> str:
    """Put one SmartBins server in `mode`, running or stopped. No-op when it already is."""
    running, current = await smartbins_facts(drv, dev)
    if running == run and (current == mode or not run):
        state = f"running in {mode.lower()} mode" if run else "stopped"
        return f"SmartBins on {drv.name} already {state}"
    dependents: list[str] = []
    if running:
        dependents = await stop_services(drv, [dev.smartbins_service])
    if run:
        await drv.run(
            ps.set_registry(dev.smartbins_registry, dev.smartbins_mode_value, mode),
            ps.start_service(dev.smartbins_service),
        )
        await start_services(drv, dependents)  # what -Force stopped with it
    running, current = await smartbins_facts(drv, dev)
    if running != run or (run and current != mode):
        raise CommandFailed(
            drv.name,
            f"SmartBins did not take the new state: running={running}, mode={current}",
        )
    return f"SmartBins on {drv.name} " + (f"running in {mode.lower()} mode" if run else "stopped")


@reads_answers
async def _browse_services(drv: HostDriver, comp: BrowseComponent, run: bool) -> str:
    """Start or stop every service of a Browse component; no-op for those already there."""
    want = "Running" if run else "Stopped"
    verb = "started" if run else "stopped"
    svc = await services(drv, comp.services)
    todo = [n for n in comp.services if svc.get(n) != want]
    if not todo:
        return f"Browse {comp.name} already {'running' if run else 'stopped'}"
    also: list[str] = []
    if run:
        await start_services(drv, todo)
        also = await restart_dependents(drv, comp.services)
    else:
        also = await stop_services(drv, todo)
    svc = await services(drv, comp.services)
    still = [n for n in comp.services if svc.get(n) != want]
    if still:
        raise CommandFailed(drv.name, f"services not {verb}: {', '.join(still)}")
    extra = f"; dependent services {verb} too: {', '.join(also)}" if also else ""
    return f"Browse {comp.name} {verb} ({', '.join(todo)}){extra}"


async def browse_stop(drv: HostDriver, comp: BrowseComponent) -> str:
    return await _browse_services(drv, comp, run=False)


async def browse_start(drv: HostDriver, comp: BrowseComponent) -> str:
    return await _browse_services(drv, comp, run=True)


@reads_answers
async def browse_switch(
    drv: HostDriver,
    comp: BrowseComponent,
    inv: Inventory,
    to: Side,
    overrides: Overrides | None = None,
) -> str:
    """Swap each config file with its twin so the component points at `to`.

    Refused unless every service of the component is stopped (overridable: the files
    are then swapped under the running services, which read them at their next
    start). A swap that was interrupted half-way (the temporary name exists) is
    completed first.
    """
    ov = overrides or Overrides()
    svc = await services(drv, comp.services)
    running = [n for n in comp.services if svc.get(n) != "Stopped"]
    forced = None
    if running:
        forced = ov.refuse(
            drv.name,
            RULE_BROWSE_STOPPED,
            f"Browse {comp.name} switches only when stopped; running: {', '.join(running)}",
            f"Browse {comp.name} was running ({', '.join(running)})",
        )
    swapped = []
    for f in comp.config_files:
        active = _join(comp.config_dir, f)
        backup = _join(comp.config_dir, _twin(f))
        tmp = _join(comp.config_dir, _tmp(f))
        has_active, has_backup, has_tmp = (
            ps.parse_bool(x)
            for x in await drv.run(ps.test_path(active), ps.test_path(backup), ps.test_path(tmp))
        )
        if has_tmp:
            # Finish an interrupted swap: active -> tmp, backup -> active, tmp -> backup.
            steps = []
            if not has_active and has_backup:
                steps.append(ps.rename_file(backup, f))
            steps.append(ps.rename_file(tmp, _twin(f)))
            await drv.run(*steps)
            swapped.append(f"{f} (interrupted swap completed)")
            continue
        if not (has_active and has_backup):
            raise CommandFailed(
                drv.name,
                f"{comp.name}: expected both {f} and {_twin(f)} in {comp.config_dir}",
            )
        content = ps.parse_json_string(await drv.run_one(ps.get_content(active)))
        if inv.side_of_marker(content) == to:
            continue
        await drv.run(
            ps.rename_file(active, _tmp(f)),
            ps.rename_file(backup, f),
            ps.rename_file(tmp, _twin(f)),
        )
        swapped.append(f)
    after = await browse_facts(drv, comp, inv)
    if after.side != to:
        raise CommandFailed(
            drv.name,
            f"Browse {comp.name} does not point at {to} after the swap (files: {after.file_sides})",
        )
    if not swapped:
        return with_forced(f"Browse {comp.name} already points at {to}", forced)
    return with_forced(f"Browse {comp.name} switched to {to} ({', '.join(swapped)})", forced)


@reads_answers
async def tool_set(drv: HostDriver, label: str, service: str, process: str, running: bool) -> str:
    """Start or stop InSync/AllSync through the service that runs it; no-op when it already is.

    Checked by the process, which is what the tool's own work depends on.
    """
    if await process_running(drv, process) == running:
        return f"{label} already {'running' if running else 'stopped'} on {drv.name}"
    if running:
        await start_services(drv, [service])
    else:
        await stop_services(drv, [service])
    if await process_running(drv, process) != running:
        state = "is not running" if running else "still runs"
        raise CommandFailed(drv.name, f"{label}: service {service} changed but {process} {state}")
    return f"{label} {'started' if running else 'stopped'} on {drv.name} (service {service})"


def insync_template(dev: DeviceSettings, main: Side) -> str:
    name = "InsyncXtoY.cfg" if main == "X" else "InsyncYtoX.cfg"
    return _join(dev.insync_cfg_dir, name)


@reads_answers
async def insync_set_main(
    drv: HostDriver, dev: DeviceSettings, main: Side, overrides: Overrides | None = None
) -> str:
    """Set the InSync direction main -> other. Refused while InSync runs (overridable)."""
    ov = overrides or Overrides()
    running, current = await insync_facts(drv, dev)
    target = _join(dev.insync_cfg_dir, "Insync.cfg")
    template = insync_template(dev, main)
    h_target, h_template = await drv.run(ps.file_hash(target), ps.file_hash(template))
    same_cfg = ps.parse_json_object(h_target).get("Hash") == ps.parse_json_object(h_template).get(
        "Hash"
    )
    if current == main and same_cfg:
        return f"InSync on {drv.name} already copies {main} -> {other(main)}"
    forced = None
    if running:
        forced = ov.refuse(
            drv.name,
            RULE_INSYNC_STOPPED,
            f"the InSync direction changes only while InSync is stopped; "
            f"{dev.insync_process} is running",
            f"InSync ({dev.insync_process}) was running",
        )
    await drv.run(
        ps.set_registry(dev.insync_registry, dev.insync_direction_value, main),
        ps.copy_file(template, target),
    )
    _, current = await insync_facts(drv, dev)
    h_target, h_template = await drv.run(ps.file_hash(target), ps.file_hash(template))
    if current != main or h_target != h_template:
        raise CommandFailed(drv.name, f"InSync direction did not take (registry says {current})")
    return with_forced(f"InSync on {drv.name} set to copy {main} -> {other(main)}", forced)


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

    Refused when the client cannot reach a portal of `to` (overridable: the probe may
    be blocked where iSCSI is not), and when the client has no iSCSI cmdlets (named).
    No-op when the client is already configured for `to`.
    """
    ov = overrides or Overrides()
    dev = inv.devices
    target = inv.sides[to]
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
    answers = await _iscsi_run(drv, *reads)
    sessions = _sessions(answers[0])
    registered = {
        str(ps.prop(o, "TargetPortalAddress")).lower() for o in ps.parse_json_list(answers[1])
    }
    dsm_host = ps.parse_json_object(answers[2]).get(dev.aurora_dsm_value)
    reachable = [
        p for p, a in zip(portals, answers[3 : 3 + len(portals)], strict=True) if ps.parse_bool(a)
    ]
    servers_ok = True
    if target.fsnameservers is not None:
        listed = _nameservers(ps.parse_json_string(answers[-1]))
        servers_ok = _same_servers(listed, target.fsnameservers)

    mine = [s for s in sessions if s.target.lower() == iqn.lower()]
    others = [s for s in sessions if s.target.lower() != iqn.lower()]
    logged_in = any(s.connected for s in mine)
    persistent = any(s.persistent for s in mine)
    stale = [s for s in others if s.persistent]
    # An old session that is no longer persistent is what a prepared client has until
    # its restart ends it: already configured.
    if logged_in and persistent and not stale and dsm_host == target.dsm.host and servers_ok:
        return f"{client.host} is already configured for {to}"
    forced = None
    if not logged_in and not reachable:
        forced = ov.refuse(
            drv.name,
            RULE_CLIENT_BRIDGE,
            f"{client.host} cannot reach {to}'s bridge K2 server {target.bridge.host} "
            f"at its iSCSI portal {', '.join(portals)} on port {dev.iscsi_port}",
            f"{client.host} did not reach {', '.join(portals)} on port {dev.iscsi_port}",
        )
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
    stmts.append(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, target.dsm.host))
    await _iscsi_run(drv, *stmts)
    return with_forced(
        f"{client.host} reconfigured for {to} (iSCSI {iqn} via {', '.join(portals)}, "
        f"DSM {target.dsm.host})",
        forced,
    )


@reads_answers
async def client_verify(drv: HostDriver, client: SwitchableClient, inv: Inventory, to: Side) -> str:
    """Check that the client, after its restarts, sees `to`'s V: volume: logged in to
    `to`'s target (persistently) and to no other, V: present, and, where the inventory
    names `to`'s `fsnameservers`, its fsnameservers file listing exactly them. K2's V:
    is an SNFS file system over the target's disks, not a partition of one disk: the
    SNFS client mounts it only when it sees the file system's disks, so with only
    `to`'s target logged in and `to`'s name servers listed, a V: that is there is
    `to`'s. Raises CommandFailed naming what is wrong."""
    dev = inv.devices
    target = inv.sides[to]
    reads = [ps.iscsi_session_details(), ps.test_path("V:\\")]
    if target.fsnameservers is not None:
        reads.append(ps.get_content(dev.snfs_nameservers_file))
    answers = await _iscsi_run(drv, *reads)
    sessions = [s for s in _sessions(answers[0]) if s.connected]
    problems = []
    mine = [s for s in sessions if s.target.lower() == target.iscsi_target.lower()]
    if not mine:
        problems.append(f"no iSCSI session to {to}'s target {target.iscsi_target}")
    elif not any(s.persistent for s in mine):
        problems.append(f"its session to {target.iscsi_target} is not persistent")
    for s in sessions:
        if s.target.lower() != target.iscsi_target.lower():
            problems.append(f"still logged in to {s.target}")
    if target.fsnameservers is not None:
        listed = _nameservers(ps.parse_json_string(answers[2]))
        if not _same_servers(listed, target.fsnameservers):
            problems.append(
                f"{dev.snfs_nameservers_file} lists {', '.join(listed) or 'nothing'}, "
                f"not {to}'s {', '.join(target.fsnameservers)}"
            )
    if not ps.parse_bool(answers[1]):
        problems.append("no V: drive")
    if problems:
        raise CommandFailed(
            drv.name, f"{client.host} does not see {to}'s V: volume: {'; '.join(problems)}"
        )
    return f"{client.host} sees {to}'s V: volume"


# -- media: master clips and orphans ------------------------------------------------------------
CLIP_ROOT = "V:\\VibrantAVIFiles"
# One restore lists, records and purges at most this many clips (results stay small).
MAX_ORPHANS = 200
MAX_CLIP_FILES = 32
ATTR_DIRECTORY, ATTR_REPARSE_POINT = 0x10, 0x400


@dataclass(frozen=True)
class ClipFile:
    name: str
    size: int
    modified: str  # last write time, UTC, ISO 8601


@dataclass(frozen=True)
class ClipRecord:
    """What one master clip folder held when it was listed."""

    clip: str  # relative to V:\\VibrantAVIFiles: <SmartBin>\\<clip>.vmf
    files: tuple[ClipFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def modified(self) -> str:
        return max((f.modified for f in self.files), default="")


@dataclass(frozen=True)
class Entry:
    name: str
    attributes: int
    size: int | None
    modified: str
    link_type: str | None

    @property
    def is_link(self) -> bool:
        return bool(self.attributes & ATTR_REPARSE_POINT) or self.link_type is not None

    @property
    def is_dir(self) -> bool:
        return bool(self.attributes & ATTR_DIRECTORY)


@dataclass
class MediaListing:
    host: str
    clips: dict[str, str] = field(default_factory=dict)  # lower-cased -> clip
    refused: dict[str, str] = field(default_factory=dict)  # clip or folder -> why


@dataclass
class OrphanFinding:
    records: list[ClipRecord]
    refused: dict[str, str]


@dataclass
class PurgeOutcome:
    host: str
    side: Side
    deleted: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        msg = f"{len(self.deleted)} orphan clip(s) deleted on {self.host} ({self.side})"
        if self.gone:
            msg += f"; {len(self.gone)} already gone"
        if self.refused:
            shown = ", ".join(f"{c} ({why})" for c, why in list(self.refused.items())[:10])
            more = len(self.refused) - 10
            msg += f"; {len(self.refused)} refused, not deleted: {shown}"
            msg += f" (+{more} more)" if more > 0 else ""
        return msg


def clip_problem(clip: str) -> str | None:
    r"""Why `clip` is not a master clip path <SmartBin>\<name>.vmf Windows keeps as named."""
    why = path_problem(clip, segments=2)
    if why:
        return why
    if not clip.lower().endswith(".vmf") or len(clip.rsplit("\\", 1)[1]) <= 4:
        return "not a .vmf master clip"
    return None


async def _run_groups(drv: HostDriver, groups: list[list[str]]) -> list[list[str]]:
    """Run groups of statements in as few scripts as fit the command line; one output
    list per group."""
    out: list[list[str]] = []
    for batch in ps.batch_groups(groups, drv.transport):
        lines = await drv.run(*[st for g in batch for st in g])
        i = 0
        for g in batch:
            out.append(lines[i : i + len(g)])
            i += len(g)
    return out


def _entry(drv: HostDriver, folder: str, item: dict[str, object]) -> Entry:
    name, attrs = item.get("Name"), item.get("Attributes")
    if not isinstance(name, str) or not isinstance(attrs, int):
        raise CommandFailed(drv.name, f"undecodable entry in the listing of {folder}")
    size = item.get("Length")
    modified = item.get("LastWriteTimeUtc")
    link = item.get("LinkType")
    return Entry(
        name=name,
        attributes=attrs,
        size=size if isinstance(size, int) else None,
        modified=ps.parse_datetime(modified).isoformat() if modified is not None else "",
        link_type=str(link) if link else None,
    )


async def _folders(drv: HostDriver, folders: list[str]) -> dict[str, list[Entry]]:
    """The entries of each folder, each listing checked against its count: an answer that
    is empty or cannot be decoded while the folder holds entries is an error naming the
    host, never "nothing there"."""
    outs = await _run_groups(drv, [[ps.count_children(f), ps.list_children(f)] for f in folders])
    result: dict[str, list[Entry]] = {}
    for folder, (count_line, list_line) in zip(folders, outs, strict=True):
        try:
            count = ps.parse_json_object(count_line).get("Count")
            items = ps.parse_json_list(list_line)
            if not isinstance(count, int):
                raise ValueError("no count")
            entries = [_entry(drv, folder, item) for item in items]
        except (ValueError, TypeError, KeyError) as e:
            raise CommandFailed(
                drv.name, f"the listing of {folder} could not be read whole ({e})"
            ) from None
        if len(entries) != count:
            raise CommandFailed(
                drv.name,
                f"the listing of {folder} is incomplete: {count} entries counted, "
                f"{len(entries)} listed",
            )
        result[folder] = entries
    return result


def _full(clip: str) -> str:
    return f"{CLIP_ROOT}\\{clip}"


@reads_answers
async def media_listing(drv: HostDriver) -> MediaListing:
    r"""The master clips V:\VibrantAVIFiles\<SmartBin>\<clip>.vmf, two levels listed one
    at a time: a SmartBin or clip folder that is a junction or symbolic link is
    reported (refused), never entered; so is a name Windows would not keep as is."""
    out = MediaListing(drv.name)
    root = (await _folders(drv, [CLIP_ROOT]))[CLIP_ROOT]
    bins = []
    for e in root:
        if not e.is_dir:
            continue
        why = segment_problem(e.name)
        if e.is_link:
            out.refused[e.name] = f"a {e.link_type or 'reparse point'}: not followed"
        elif why:
            out.refused[e.name] = why
        else:
            bins.append(e.name)
    listed = await _folders(drv, [_full(b) for b in bins])
    for b in bins:
        for e in listed[_full(b)]:
            # "clip.vmf." is what Windows would open as "clip.vmf": refuse it, not skip it.
            if not (e.is_dir and e.name.rstrip(". ").lower().endswith(".vmf")):
                continue
            clip = f"{b}\\{e.name}"
            why = clip_problem(clip)
            if e.is_link:
                out.refused[clip] = f"a {e.link_type or 'reparse point'}: not followed"
            elif why:
                out.refused[clip] = why
            else:
                out.clips[clip.lower()] = clip
    return out


@reads_answers
async def master_clips(drv: HostDriver) -> set[str]:
    """Master clips (.vmf folders) under V:\\VibrantAVIFiles, relative to it, odd ones too."""
    listing = await media_listing(drv)
    return set(listing.clips.values()) | {c for c in listing.refused if "\\" in c}


def _record(clip: str, entries: list[Entry]) -> ClipRecord | str:
    """The record of one clip folder, or why it is refused."""
    links = [e.name for e in entries if e.is_link]
    if links:
        return f"holds a reparse point {links[0]!r} (junction or link): not followed"
    folders = [e.name for e in entries if e.is_dir]
    if folders:
        return f"holds a folder {folders[0]!r}"
    if len(entries) > MAX_CLIP_FILES:
        return f"holds {len(entries)} files, more than {MAX_CLIP_FILES}"
    for e in entries:
        why = segment_problem(e.name)
        if why:
            return f"file {e.name!r}: {why}"
    files = tuple(
        sorted((ClipFile(e.name, e.size or 0, e.modified) for e in entries), key=lambda f: f.name)
    )
    return ClipRecord(clip, files)


@reads_answers
async def clip_records(
    drv: HostDriver, clips: list[str]
) -> tuple[list[ClipRecord], dict[str, str]]:
    listed = await _folders(drv, [_full(c) for c in clips])
    records: list[ClipRecord] = []
    refused: dict[str, str] = {}
    for c in clips:
        r = _record(c, listed[_full(c)])
        if isinstance(r, str):
            refused[c] = r
        else:
            records.append(r)
    return records, refused


def _unread_on_main(main: MediaListing, clip: str) -> str | None:
    """A clip whose SmartBin the main side's listing could not enter (a link, an odd
    name) cannot be known absent there: refused."""
    b = clip.split("\\")[0]
    why = next(
        (w for k, w in main.refused.items() if "\\" not in k and k.lower() == b.lower()), None
    )
    return f"its SmartBin on the main side ({main.host}) was not read: {why}" if why else None


def _empty_main(main: MediaListing, other_count: int) -> CommandFailed:
    return CommandFailed(
        main.host,
        f"{CLIP_ROOT} on {main.host} (the main side) lists no master clips while the other "
        f"side holds {other_count}: refusing to take every clip for an orphan",
    )


async def find_orphans(main_drv: HostDriver, other_drv: HostDriver) -> OrphanFinding:
    """The master clips on the other side that the main side lacks, each with its files,
    sizes and write times (what an approval covers). A clip the purge could not delete
    safely (an odd name, a reparse point, a sub-folder) is refused, by name."""
    on_main, on_other = await asyncio.gather(media_listing(main_drv), media_listing(other_drv))
    if on_other.clips and not on_main.clips and not on_main.refused:
        raise _empty_main(on_main, len(on_other.clips))
    main_lower = set(on_main.clips) | {c.lower() for c in on_main.refused}
    orphans = sorted(c for low, c in on_other.clips.items() if low not in main_lower)
    refused = {c: why for c, why in on_other.refused.items() if c.lower() not in main_lower}
    for c in orphans:
        why = _unread_on_main(on_main, c)
        if why:
            refused[c] = why
    orphans = [c for c in orphans if c not in refused]
    if len(orphans) + len(refused) > MAX_ORPHANS:
        raise CommandFailed(
            other_drv.name,
            f"{len(orphans) + len(refused)} orphan master clips on {other_drv.name}: one restore "
            f"handles at most {MAX_ORPHANS}; remove or keep some by hand first",
        )
    records, unsafe = await clip_records(other_drv, orphans)
    return OrphanFinding(records, {**refused, **unsafe})


def _changes(approved: ClipRecord, entries: list[Entry]) -> str | None:
    """Why the clip folder is no longer what was approved (None: unchanged, or only some
    of its approved files already deleted by an earlier attempt)."""
    now = _record(approved.clip, entries)
    if isinstance(now, str):
        return f"changed since approval: {now}"
    was = {f.name.lower(): f for f in approved.files}
    for f in now.files:
        old = was.get(f.name.lower())
        if old is None:
            return f"changed since approval: new file {f.name!r}"
        if (old.size, old.modified) != (f.size, f.modified):
            return (
                f"changed since approval: {f.name!r} {old.size} bytes {old.modified} -> "
                f"{f.size} bytes {f.modified}"
            )
    return None


async def purge_orphans(
    drv: HostDriver,
    host_side: Side,
    main: Side,
    approved: list[ClipRecord],
    main_drv: HostDriver,
    progress: Callable[[str], object] | None = None,
) -> PurgeOutcome:
    """Delete approved orphan master clips on the backup side's volume, in batches that
    each fit one command line.

    Refused outright on the main side's volume, above MAX_ORPHANS, and when the main
    side's listing is empty. Per clip, re-checked at deletion: absent on the main side
    (else refused: not an orphan), a plain folder on this side holding exactly the
    approved files, unchanged (else refused: changed since approval), a name Windows
    keeps as is; refused clips are named in the outcome and the others still go. Files
    are removed one by one and then the empty folder, never with -Recurse (5.1 follows
    reparse points). A retry deletes what is still present and unchanged, nothing else.
    """
    if host_side == main:
        raise InterlockRefused(
            drv.name,
            RULE_PURGE_BACKUP_ONLY,
            f"orphans are deleted only on the backup side's volume; {drv.name} is on {main}, "
            "the main side",
        )
    if len(approved) > MAX_ORPHANS:
        raise CommandFailed(
            drv.name, f"{len(approved)} clips approved: one purge deletes at most {MAX_ORPHANS}"
        )
    out = PurgeOutcome(drv.name, host_side)
    todo: dict[str, ClipRecord] = {}
    for r in approved:
        why = clip_problem(r.clip)
        if why:
            out.refused[r.clip] = why
        elif r.clip.lower() not in todo:
            todo[r.clip.lower()] = r
    on_main = await media_listing(main_drv)
    if todo and not on_main.clips and not on_main.refused:
        raise _empty_main(on_main, len(todo))
    main_lower = set(on_main.clips) | {c.lower() for c in on_main.refused}
    for low, r in list(todo.items()):
        why = _unread_on_main(on_main, r.clip)
        if low in main_lower:
            out.refused[r.clip] = "exists on the main side, so not an orphan"
            del todo[low]
        elif why:
            out.refused[r.clip] = why
            del todo[low]
    # Size each batch by the deletes it may send (every approved file and the folder).
    groups = [
        [ps.remove_item(_full(r.clip) + "\\" + f.name) for f in r.files]
        + [ps.remove_item(_full(r.clip))]
        for r in todo.values()
    ]
    records = list(todo.values())
    done = 0
    for batch in ps.batch_groups(groups, drv.transport):
        clips = records[done : done + len(batch)]
        done += len(batch)
        await _purge_batch(drv, main_drv, clips, out)
        if progress is not None:
            progress(f"purged {done}/{len(records)} approved clip(s) on {drv.name}")
    left = await media_listing(drv)
    still = [c for c in out.deleted if c.lower() in left.clips or c in left.refused]
    if still:
        raise CommandFailed(drv.name, f"still present after delete: {', '.join(still)}")
    return out


@reads_answers
async def _purge_batch(
    drv: HostDriver, main_drv: HostDriver, clips: list[ClipRecord], out: PurgeOutcome
) -> None:
    # Where the clips are now, on this side: their SmartBins, then their folders.
    root = {e.name.lower(): e for e in (await _folders(drv, [CLIP_ROOT]))[CLIP_ROOT]}
    bins = sorted({c.clip.split("\\")[0] for c in clips}, key=str.lower)
    present_bins = []
    for b in bins:
        e = root.get(b.lower())
        if e is not None and e.is_dir and not e.is_link:
            present_bins.append(b)
    in_bins = await _folders(drv, [_full(b) for b in present_bins])
    folders: list[ClipRecord] = []
    for c in clips:
        b, name = c.clip.split("\\")
        e = None
        if b in present_bins:
            e = next((x for x in in_bins[_full(b)] if x.name.lower() == name.lower()), None)
        if e is None:
            if root.get(b.lower()) is not None and root[b.lower()].is_link:
                out.refused[c.clip] = "its SmartBin folder is now a reparse point: not followed"
            else:
                out.gone.append(c.clip)
        elif e.is_link or not e.is_dir:
            out.refused[c.clip] = "changed since approval: no longer a plain folder"
        else:
            folders.append(c)
    contents = await _folders(drv, [_full(c.clip) for c in folders])
    # Absent on the main side at deletion (Test-Path follows links: anything there counts).
    main_lines = await _run_groups(
        main_drv,
        [[ps.test_path(CLIP_ROOT)], *[[ps.test_path(_full(c.clip))] for c in folders]],
    )
    if folders and not ps.parse_bool(main_lines[0][0]):
        raise CommandFailed(main_drv.name, f"{CLIP_ROOT} is not readable on the main side")
    stmts: list[str] = []
    deleting: list[str] = []
    for c, line in zip(folders, main_lines[1:], strict=True):
        if ps.parse_bool(line[0]):
            out.refused[c.clip] = "exists on the main side, so not an orphan"
            continue
        entries = contents[_full(c.clip)]
        why = _changes(c, entries)
        if why:
            out.refused[c.clip] = why
            continue
        stmts += [ps.remove_item(_full(c.clip) + "\\" + e.name) for e in entries]
        stmts.append(ps.remove_item(_full(c.clip)))
        deleting.append(c.clip)
    if stmts:
        await drv.run(*stmts)
    out.deleted += deleting
