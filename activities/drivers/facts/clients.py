"""Facts of a switchable client: its iSCSI sessions, its V: volume, the DSM its Aurora
software uses and the SNFS name servers it lists; `client_verify` checks them against a side."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.iscsi import iscsi_run
from inventory.models import SIDES, Inventory, Side, SwitchableClient
from inventory.status import ClientStatus


def parse_nameservers(text: str) -> list[str]:
    """The name servers an fsnameservers file lists: one per line; blank lines and
    '#' comments ignored (StorNext's fsnameservers(4))."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.append(entry)
    return out


def same_servers(listed: list[str], wanted: list[str]) -> bool:
    return [n.lower() for n in listed] == [n.lower() for n in wanted]


def same_pointer(value: object, wanted: str) -> bool:
    """Whether an Aurora DSM pointer's value names `wanted`: host names, FQDNs and SQL
    Server instance names are compared without regard to case on Windows (DNS, RFC 4343;
    SQL Server instance names are not case-sensitive), so `DSM-Y\\AURORA` is `dsm-y\\aurora`."""
    return isinstance(value, str) and value.strip().lower() == wanted.lower()


@dataclass(frozen=True)
class IscsiSession:
    target: str
    connected: bool
    persistent: bool
    session_id: str


def parse_sessions(line: str) -> list[IscsiSession]:
    return [
        IscsiSession(
            str(ps.prop(o, "TargetNodeAddress")),
            ps.prop(o, "IsConnected") in (True, "True"),
            ps.prop(o, "IsPersistent") in (True, "True"),
            str(ps.prop(o, "SessionIdentifier")),
        )
        for o in ps.parse_json_list(line)
    ]


@dataclass(frozen=True)
class PersistentLogin:
    """One of the initiator's persistent logins (MSiSCSIInitiator_PersistentLoginClass),
    with every value `iscsicli RemovePersistentTarget` needs to name it exactly. An
    empty `initiator` or `address` is a login made without one (LoginIScsiTarget: both
    are optional; a null portal lets the initiator use any portal to the target);
    `initiator_port`/`socket` are None where an unrelated login's are unreadable."""

    target: str
    initiator: str
    initiator_port: int | None
    address: str
    socket: int | None


def _whole_number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ps.BadOutput(f"{what} is not a whole number: {value!r}")
    return value


def _text(value: object) -> str | None:
    """A string property; a null one is empty (a login made without it)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def parse_persistent_logins(
    text: str, strict: Callable[[str], bool] = lambda target: True
) -> list[PersistentLogin]:
    """The persistent logins as ConvertTo-Json writes MSiSCSIInitiator_PersistentLoginClass
    instances (TargetPortal an embedded object with Address and Port, or null). Every
    login names its target (BadOutput otherwise: it cannot even be told apart). A login
    whose target `strict` accepts (the ones the caller may remove) must be readable whole:
    its initiator and portal address text (empty allowed: iscsicli takes `*` for them),
    its initiator port and socket whole numbers, else BadOutput (a login that cannot be
    named cannot be removed). Any other login is listed as it reads (review M3: one odd
    login of an unrelated disk must not block the client)."""
    out = []
    for o in ps.parse_json_list(text):
        target = ps.prop(o, "TargetName")
        if not isinstance(target, str) or not target:
            raise ps.BadOutput(f"a persistent login without its target: {str(o)[:200]}")
        must = strict(target)
        portal = ps.prop(o, "TargetPortal")
        if portal is not None and not isinstance(portal, dict):
            if must:
                raise ps.BadOutput(f"TargetPortal is not an object: {str(portal)[:80]!r}")
            portal = None
        initiator = _text(ps.prop(o, "InitiatorInstance"))
        address = _text(None if portal is None else ps.prop(portal, "Address"))
        if must and (initiator is None or address is None):
            raise ps.BadOutput(f"a persistent login without a readable initiator or portal: {o}")
        port: int | None
        socket: int | None
        try:
            port = _whole_number(ps.prop(o, "InitiatorPortNumber"), "InitiatorPortNumber")
            socket = (
                None
                if portal is None
                else _whole_number(ps.prop(portal, "Port"), "TargetPortal.Port")
            )
        except ps.BadOutput:
            if must:
                raise
            port = socket = None
        out.append(
            PersistentLogin(
                target=target,
                initiator=initiator or "",
                initiator_port=port,
                address=address or "",
                socket=socket,
            )
        )
    return out


@reads_answers
async def persistent_logins(drv: HostDriver) -> list[PersistentLogin]:
    """The client's persistent logins, with a session or without (its portal down)."""
    return parse_persistent_logins((await iscsi_run(drv, ps.iscsi_persistent_logins()))[0])


@reads_answers
async def client_facts(drv: HostDriver, client: SwitchableClient, inv: Inventory) -> ClientStatus:
    dev = inv.devices
    sess_line, v_line, reg_line = await iscsi_run(
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
    pointer = ps.parse_json_object(reg_line).get(dev.aurora_dsm_value)
    side: Side | None = None
    if len(sides) == 1:
        side = sides.pop()
    elif not sessions:
        side = next((s for s in SIDES if same_pointer(pointer, inv.sides[s].dsm_pointer)), None)
    v_visible = ps.parse_bool(v_line)
    return ClientStatus(
        host=client.host,
        kind=client.kind,
        side=side,
        status="online" if v_visible else "no-volume",
    )


@reads_answers
async def client_verify(drv: HostDriver, client: SwitchableClient, inv: Inventory, to: Side) -> str:
    """Check that the client, after its restarts, sees `to`'s V: volume: logged in to
    the target of its path A and/or B on `to` (persistently), to none of the other
    side's targets, V: present, and, where the inventory names `to`'s `fsnameservers`,
    its fsnameservers file listing exactly them. K2's V: is an SNFS file system over
    the target's disks, not a partition of one disk: the SNFS client mounts it only when
    it sees the file system's disks, so with only `to`'s targets logged in and `to`'s
    name servers listed, a V: that is there is `to`'s. A session to a target that is
    neither side's (a site's other iSCSI disk) is no problem: it is named in the
    answer. Raises CommandFailed naming what is wrong."""
    dev = inv.devices
    target = inv.sides[to]
    reads = [ps.iscsi_session_details(), ps.test_path("V:\\")]
    if target.fsnameservers is not None:
        reads.append(ps.get_content(dev.snfs_nameservers_file))
    answers = await iscsi_run(drv, *reads)
    sessions = [s for s in parse_sessions(answers[0]) if s.connected]
    problems = []
    paths = inv.client_paths(client, to)
    wanted = list(dict.fromkeys(p.target for p in paths))
    mine = [s for s in sessions if s.target.lower() in {t.lower() for t in wanted}]
    if not mine:
        problems.append(f"no iSCSI session to {to}'s target {' or '.join(wanted)}")
    elif not any(s.persistent for s in mine):
        problems.append(f"its session to {mine[0].target} is not persistent")
    unrelated = []
    for s in sessions:
        side = inv.side_of_target(s.target)
        if side is None:
            unrelated.append(s.target)
        elif side != to:
            problems.append(f"still logged in to {s.target}")
    if target.fsnameservers is not None:
        listed = parse_nameservers(ps.parse_json_string(answers[2]))
        if not same_servers(listed, target.fsnameservers):
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
    said = f"{client.host} sees {to}'s V: volume"
    # A configured path with no session is named (review H2): the client works through
    # the other one, without its redundancy.
    up = {s.target.lower() for s in mine}
    for p in paths:
        if p.target.lower() not in up:
            said += f"; {p.name} path missing (no session to {p.target} via {p.portal})"
    if unrelated:
        said += f"; also logged in to {', '.join(unrelated)} (neither side's target: left alone)"
    return said


@reads_answers
async def iscsi_cmdlets_missing(drv: HostDriver) -> list[str]:
    """The iSCSI cmdlets a client switch uses that the host lacks (all of them on a
    Windows older than 8 / Server 2012, which has no iSCSI module)."""
    present = await drv.run_one(ps.get_commands(ps.ISCSI_CMDLETS))
    names = {str(o.get("Name", "")).lower() for o in ps.parse_json_list(present)}
    return [c for c in ps.ISCSI_CMDLETS if c.lower() not in names]


@reads_answers
async def portals_reachable(drv: HostDriver, portals: list[str], port: int) -> dict[str, bool]:
    """Whether the client reaches each portal on the iSCSI port (Test-NetConnection),
    the probe a switch makes before it changes anything."""
    answers = await drv.run(*[ps.test_port(p, port) for p in portals])
    return {p: ps.parse_bool(a) for p, a in zip(portals, answers, strict=True)}


@reads_answers
async def volume_present(drv: HostDriver) -> bool:
    return ps.parse_bool(await drv.run_one(ps.test_path("V:\\")))


@dataclass(frozen=True)
class IscsiDiscovery:
    """What a client's initiator knows: its registered target portals and the targets
    discovered through them."""

    portals: list[str]
    targets: list[str]


@reads_answers
async def iscsi_discovery(drv: HostDriver) -> IscsiDiscovery:
    """The registered portals (Get-IscsiTargetPortal) and discovered targets
    (Get-IscsiTarget). Reads only: discovering anew (New-/Update-IscsiTargetPortal)
    would change the initiator."""
    portals, targets = await iscsi_run(drv, ps.iscsi_portals(), ps.iscsi_targets())
    return IscsiDiscovery(
        portals=[str(ps.prop(o, "TargetPortalAddress")) for o in ps.parse_json_list(portals)],
        targets=[str(ps.prop(o, "NodeAddress")) for o in ps.parse_json_list(targets)],
    )


# -- the Aurora DSM pointer (issue 25, defect 10) ------------------------------------------------
@reads_answers
async def check_dsm_pointer(
    drv: HostDriver, client: SwitchableClient, inv: Inventory, to: Side
) -> str:
    """Check, after the restarts, that the client's Aurora DSM pointer (the registry value
    devices.aurora_dsm_value under devices.aurora_registry) names `to`'s DSM as the site
    writes it (sides.S.aurora_dsm_pointer), without regard to case. Reads only. Raises
    CommandFailed naming the value it found (a write filter, a policy or an installer
    can put the old one back at the restart)."""
    dev = inv.devices
    wanted = inv.sides[to].dsm_pointer
    answer = await drv.run_one(ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]))
    found = ps.prop(ps.parse_json_object(answer), dev.aurora_dsm_value)
    if not same_pointer(found, wanted):
        where = f"{dev.aurora_registry}\\{dev.aurora_dsm_value}"
        raise CommandFailed(
            drv.name,
            f"{client.host} does not use {to}'s DSM: its Aurora DSM pointer {where} names "
            f"{found if found is not None else 'nothing'}, not {to}'s {wanted}",
        )
    return f"{client.host} uses {to}'s DSM ({found})"


# -- write filters (issue 25, defect 9) -----------------------------------------------------------
@dataclass(frozen=True)
class WriteFilters:
    """What a client's write filters do to its system volume: the filters installed
    (UWF, FBWF, EWF) and, for UWF, whether it is on in this session and after the next
    restart, and the drives it protects in this session."""

    installed: list[str]
    uwf_on: bool | None = None
    uwf_next: bool | None = None
    uwf_protected: list[str] = field(default_factory=list)


def _flag(obj: dict[str, object], name: str) -> bool:
    value = ps.prop(obj, name)
    if not isinstance(value, bool):
        raise ps.BadOutput(f"{name} is {value!r}, not true or false")
    return value


@reads_answers
async def write_filters(drv: HostDriver) -> WriteFilters:
    """Which write filters the client has installed (their manager tool in System32), and
    for UWF its state from its WMI provider (UWF_Filter, UWF_Volume). Reads only. FBWF's
    and EWF's state is not read: they have no WMI provider, only their tools' console
    text (fbwfmgr /displayconfig, ewfmgr C:), so an installed one is reported as installed.
    A UWF that is installed but whose WMI does not answer raises CommandFailed (its state
    is unknown)."""
    answers = await drv.run(*ps.WRITE_FILTER_PROBES)
    installed = [
        name for name, a in zip(ps.WRITE_FILTER_TOOLS, answers, strict=True) if ps.parse_bool(a)
    ]
    if "UWF" not in installed:
        return WriteFilters(installed)
    f_line, v_line = await drv.run(ps.uwf_filter(), ps.uwf_volumes())
    filt = ps.parse_json_object(f_line)
    protected = []
    for vol in ps.parse_json_list(v_line):
        if _flag(vol, "CurrentSession") and _flag(vol, "Protected"):
            protected.append(str(ps.prop(vol, "DriveLetter")).upper())
    return WriteFilters(
        installed, _flag(filt, "CurrentEnabled"), _flag(filt, "NextEnabled"), protected
    )


# -- after a restart (issue 25, defect 18) ---------------------------------------------------------
@dataclass(frozen=True)
class MountState:
    """What a client shows of `to` now: V: there or not, and its connected iSCSI sessions
    to `to`'s target(s)."""

    volume: bool
    sessions: list[str]


@reads_answers
async def mount_state(drv: HostDriver, inv: Inventory, to: Side) -> MountState:
    """Whether V: is there and which of `to`'s targets the client is logged in to. Reads
    only; one round trip (polled after each restart until both are there)."""
    sess_line, v_line = await iscsi_run(drv, ps.iscsi_sessions(), ps.test_path("V:\\"))
    sessions = [
        str(ps.prop(o, "TargetNodeAddress"))
        for o in ps.parse_json_list(sess_line)
        if ps.prop(o, "IsConnected") in (True, "True")
    ]
    return MountState(
        volume=ps.parse_bool(v_line),
        sessions=[t for t in sessions if inv.side_of_target(t) == to],
    )
