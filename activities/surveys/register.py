"""The register of site assumptions: what the drivers take for granted about a site, one
entry each (id, the assumption, where it comes from, the fact that verifies it, and the
check, a small pure function over the fact's reading). `evaluate` gives each entry that
applies to a host its verdict: verified, contradicted (with what to set) or could not be
read (with why). Data only: no I/O, so the worker, the tests and the CLI read it alike.

The inventory settings an entry points to are named once, in SETTINGS. Some of them are
being added beside this register (per-client portals, write filter opt-in, the DSM
pointer per side, iSCSI targets per side): their names there are the ones to align."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activities.surveys import probes
from activities.surveys.models import AssumptionResult, FactRecord, SurveyTarget, Verdict
from inventory.models import SIDES, Inventory, Side, odbc_keywords

# Each inventory setting an entry may ask for, in one place ({host}, {side} filled in).
SETTINGS = {
    "fsnameservers_file": "devices.snfs_nameservers_file",
    "fsnameservers": "sides.{side}.fsnameservers",
    "client_portal": "clients[{host}].iscsi.{side}.a",
    "side_targets": "sides.{side}.iscsi_targets",
    "write_filter": "devices.uwf_off_for_switch",
    "dsm_pointer": "sides.{side}.aurora_dsm_pointer",
    "aurora_registry": "devices.aurora_registry",
    "dsm_odbc": "sides.{side}.dsm.odbc",
    "smartbins_service": "devices.smartbins_service",
    "allsync_service": "devices.allsync_service",
    "insync_service": "devices.insync_service",
    "browse_services": "browse[{component}].services",
    "dsm_state_database": "sides.{side}.dsm.sqlserver.state_database",
    "dsm_database": "sides.{side}.dsm.sqlserver.database",
    "master_job": "sides.{side}.dsm.sqlserver.master_job",
    "backup_job": "sides.{side}.dsm.sqlserver.backup_job",
}

# The PowerShell the drivers are written for (activities/checks/hosts.py POWERSHELL).
POWERSHELL = (5, 1)
# .NET Framework 4.5.2, which WMF 5.1 needs: Release 379893 (Microsoft Learn, "How to:
# Determine which .NET Framework versions are installed"; "WMF 5.1 prerequisites").
DOTNET_RELEASE = 379893
# Kerberos refuses tickets beyond 5 minutes of skew (Microsoft Learn, "Maximum tolerance
# for computer clock synchronization").
CLOCK_SKEW = 300.0
# WinRM shells the workers may hold on one host (activities/checks/hosts.py SHELLS_NEEDED:
# SESSIONS_PER_HOST 8 per worker, 2 workers).
SHELLS_NEEDED = 16


class Unread(Exception):
    """A fact the check needs that was not read (its error, or withheld)."""


@dataclass
class Outcome:
    verdict: Verdict
    evidence: str
    value: Any = None
    fix: str | None = None
    setting: str | None = None  # a key of SETTINGS


class Evidence:
    """One host's readings, by fact (and variant)."""

    def __init__(self, records: list[FactRecord], inv: Inventory, target: SurveyTarget) -> None:
        self.records = {(r.fact, r.variant): r for r in records}
        self.inv, self.t = inv, target

    def value(self, fact: str, variant: str | None = None) -> Any:
        r = self.records.get((fact, variant))
        if r is None:
            raise Unread(f"{fact} was not read")
        if r.withheld:
            raise Unread(f"{fact}: {r.withheld}")
        if r.expected_error is not None:
            # Its first line: the host's error record follows in the fact file.
            raise Unread(f"{fact}: {r.expected_error.splitlines()[0] if r.expected_error else ''}")
        return r.expected

    def error(self, fact: str, variant: str | None = None) -> str | None:
        r = self.records.get((fact, variant))
        return None if r is None else r.expected_error

    def client_side(self) -> Side | None:
        try:
            return self.value("client_facts").get("side")  # type: ignore[no-any-return]
        except Unread:
            return None


Check = Callable[[Evidence], Outcome]


@dataclass(frozen=True)
class Assumption:
    id: str
    assumption: str
    source: str
    facts: tuple[str, ...]
    roles: tuple[str, ...] | None  # None: every Windows host
    check: Check
    applies: Callable[[Inventory, SurveyTarget], bool] = lambda inv, t: True


def ok(evidence: str) -> Outcome:
    return Outcome("verified", evidence)


def no(evidence: str, fix: str, setting: str | None = None, value: Any = None) -> Outcome:
    return Outcome("contradicted", evidence, value, fix, setting)


def unread(why: str) -> Outcome:
    return Outcome("could not be read", why)


# -- the checks ---------------------------------------------------------------------------
def check_powershell(ev: Evidence) -> Outcome:
    major, minor = ev.value("powershell_version")
    if (major, minor) >= POWERSHELL:
        return ok(f"PowerShell {major}.{minor}")
    return no(f"PowerShell {major}.{minor}", "install Windows Management Framework 5.1")


def check_dotnet(ev: Evidence) -> Outcome:
    v = ev.value("dotnet_version")
    release = v.get("release")
    if not isinstance(release, int):
        return unread(f".NET Framework Release is {release!r}")
    text = f".NET Framework {v.get('version')} (Release {release})"
    if release >= DOTNET_RELEASE:
        return ok(text)
    return no(text, "install .NET Framework 4.5.2 or later (WMF 5.1 needs it)")


def check_clock(ev: Evidence) -> Outcome:
    c = ev.value("clock")
    skew = float(c["skew"])
    zone = ""
    try:
        tz = ev.value("time_zone")
        zone = f"; time zone {tz.get('caption')} (bias {tz.get('bias')} min)"
    except Unread as e:
        zone = f"; time zone not read ({e})"
    text = f"clock {skew:+.1f} s against the worker's (±{float(c['uncertainty']):.1f}){zone}"
    if abs(skew) <= CLOCK_SKEW:
        return ok(text)
    return no(text, "synchronise the host's clock (w32time) with the site's time source")


def check_winrm_quota(ev: Evidence) -> Outcome:
    c = ev.value("winrm_config")
    shells = int(c["max_shells_per_user"])
    if shells >= SHELLS_NEEDED:
        return ok(f"MaxShellsPerUser {shells}")
    return no(
        f"MaxShellsPerUser {shells}, below the {SHELLS_NEEDED} the workers may open",
        f'on the host: winrm set winrm/config/winrs @{{MaxShellsPerUser="{SHELLS_NEEDED}"}}',
    )


def check_winrm_auth(ev: Evidence) -> Outcome:
    c = ev.value("winrm_config")
    host = ev.inv.host(ev.t.host)
    w = host.winrm_settings
    text = f"Basic {c['basic']}, AllowUnencrypted {c['allow_unencrypted']}; inventory: {w.auth} over {w.scheme}"
    if w.auth == "basic" and not c["basic"]:
        return no(
            text, 'on the host: winrm set winrm/config/service/auth @{Basic="true"}, or use ntlm'
        )
    if w.scheme == "http" and not c["allow_unencrypted"]:
        return no(text, "use https (the inventory's winrm.scheme), as the host refuses plain http")
    return ok(text)


def _service_setting(ev: Evidence) -> tuple[str, dict[str, str]]:
    role = ev.t.role
    if role == "browse":
        comps = [b.name for b in ev.inv.browse if b.host.host.lower() == ev.t.host.lower()]
        return "browse_services", {"component": ",".join(comps)}
    key = {"smartbins": "smartbins_service", "nas-cifs": "allsync_service"}.get(
        role, "insync_service"
    )
    return key, {}


def check_services(ev: Evidence) -> Outcome:
    found: dict[str, Any] = ev.value("find_services")
    missing = [n for n, s in found.items() if s is None]
    shown = ", ".join(
        f"{n} = {s['key']} ({s['display']}, {s.get('start_type')})" for n, s in found.items() if s
    )
    if not missing:
        return ok(shown or "no service named")
    key, _ = _service_setting(ev)
    return no(
        f"no service {', '.join(missing)}" + (f"; found {shown}" if shown else ""),
        "name the service as the host has it (Get-Service: its Name or DisplayName)",
        key,
    )


def check_fsnameservers_file(ev: Evidence) -> Outcome:
    f = ev.value("fsnameservers")
    wanted = ev.inv.devices.snfs_nameservers_file
    found = f.get("found")
    if found is not None and found.lower() == wanted.lower():
        return ok(f"{found} is there")
    if found is not None:
        return no(
            f"no file at {wanted}; the file is at {found}",
            f"set {SETTINGS['fsnameservers_file']} to {found}",
            "fsnameservers_file",
            found,
        )
    return no(
        f"no fsnameservers file at {', '.join(f.get('places', {}))}",
        "find the file (StorNext's install folder, config\\fsnameservers) and set "
        f"{SETTINGS['fsnameservers_file']} to its path",
        "fsnameservers_file",
    )


def check_fsnameservers_lists(ev: Evidence) -> Outcome:
    f = ev.value("fsnameservers")
    listed = f.get("lists")
    if listed is None:
        return unread("no fsnameservers file was found to read")
    side = ev.client_side()
    if side is None:
        return unread(f"it lists {', '.join(listed) or 'nothing'}; the client's side is not known")
    wanted = ev.inv.sides[side].fsnameservers
    text = f"{f['found']} lists {', '.join(listed) or 'nothing'} (the client is on {side})"
    if wanted is not None and [n.lower() for n in wanted] == [n.lower() for n in listed]:
        return ok(text)
    now = "unset" if wanted is None else ", ".join(wanted)
    return no(
        f"{text}; the inventory's {side} fsnameservers: {now}",
        f"set sides.{side}.fsnameservers to what a client of {side} lists",
        "fsnameservers",
        listed,
    )


def check_targets_known(ev: Evidence) -> Outcome:
    sessions = [s for s in ev.value("iscsi_sessions") if s.get("connected")]
    unknown = sorted({s["target"] for s in sessions if ev.inv.side_of_target(s["target"]) is None})
    known = sorted({s["target"] for s in sessions} - set(unknown))
    # Two sessions to one target: its A and B paths (a redundant K2 SAN), or two TOEs.
    counts = {t: sum(1 for s in sessions if s["target"] == t) for t in known}
    shown = [f"{t} ({n} sessions)" if n > 1 else t for t, n in counts.items()]
    text = f"{len(sessions)} session(s): " + (", ".join(shown) or "none to a side's target")
    if not unknown:
        return ok(text)
    return no(
        f"{text}; to targets the inventory does not name: {', '.join(unknown)}",
        "a path of a side's K2 SAN (a B path, another TOE's target): name it under "
        f"{SETTINGS['side_targets']}; an unrelated disk needs nothing: a switch leaves "
        "its logins alone and names it",
        "side_targets",
        unknown,
    )


def check_one_side(ev: Evidence) -> Outcome:
    sessions = [s for s in ev.value("iscsi_sessions") if s.get("connected")]
    sides = sorted({side for s in sessions if (side := ev.inv.side_of_target(s["target"]))})
    if len(sides) <= 1:
        return ok(f"logged in to {', '.join(sides) or 'no side'}")
    return no(
        f"logged in to both sides' targets ({', '.join(sides)})",
        "switch the client to one side (amsm start client ...) before the first switch",
    )


def check_portal(ev: Evidence) -> Outcome:
    conns = ev.value("iscsi_connections")
    side = ev.client_side()
    if side is None:
        return unread("the client's side is not known")
    client = next((c for c in ev.inv.clients if c.host == ev.t.host), None)
    if client is None:
        return unread(f"{ev.t.host} is not a switchable client of the inventory")
    # The client's own portal(s) on its side (clients[].iscsi: A, and B on a redundant
    # SAN), as the client switch logs in through them (Inventory.client_paths).
    wanted = [p.portal for p in ev.inv.client_paths(client, side)]
    used = sorted({c["portal"] for c in conns})
    text = (
        f"connected through {', '.join(used) or 'no portal'}; the inventory gives "
        f"{ev.t.host} on {side} {', '.join(wanted)}"
    )
    if used and all(p.lower() in {w.lower() for w in wanted} for p in used):
        return ok(text)
    return no(
        text,
        "name this client's portal (its TOE) per side, as K2Config assigns it",
        "client_portal",
        used,
    )


def check_persistent(ev: Evidence) -> Outcome:
    # As the client switch reads them (facts/clients.py persistent_logins).
    logins = [
        {"target": lg["target"], "portal": lg.get("address") or ""}
        for lg in ev.value("iscsi_persistent_logins")
    ]
    side = ev.client_side()
    other = [s for s in SIDES if s != side]
    stale = [p for p in logins if any(ev.inv.side_of_target(p["target"]) == o for o in other)]
    text = "persistent logins: " + (
        ", ".join(f"{p['target']} via {p['portal'] or '?'}" for p in logins) or "none"
    )
    if not stale:
        return ok(text)
    return no(
        text,
        "the client would log back in to the other side at its next start: remove those "
        "persistent logins (iscsicli RemovePersistentTarget)",
    )


def check_write_filters(ev: Evidence) -> Outcome:
    f: dict[str, str] = ev.value("write_filter_state")
    on = [n for n, s in f.items() if s == "on"]
    text = ", ".join(f"{n.upper()} {s}" for n, s in f.items())
    if on == ["uwf"]:
        return no(
            text,
            "a client switch's changes would be discarded at its restart: turn UWF off on "
            "the client for the switch, or let amsm turn it off and on again around it",
            "write_filter",
            True,
        )
    if on:
        return no(
            text,
            f"a client switch's changes would be discarded at its restart: turn "
            f"{', '.join(n.upper() for n in on)} off on the client before the switch (amsm "
            "turns only UWF off and on by itself)",
        )
    unknown = [n for n, s in f.items() if s == "unknown"]
    if unknown:
        return unread(f"{text}: the state of {', '.join(unknown)} could not be read from its tool")
    return ok(text)


def _dsm_hosts(inv: Inventory) -> dict[Side, str]:
    return {s: inv.sides[s].dsm_pointer for s in SIDES}


def check_pointer(ev: Evidence) -> Outcome:
    p = ev.value("dsm_pointer_value")
    value = p.get("value")
    if value is None:
        return no(
            f"no value {ev.inv.devices.aurora_dsm_value} under {ev.inv.devices.aurora_registry}",
            "set devices.aurora_registry / aurora_dsm_value to where the client keeps its DSM",
        )
    dsms = _dsm_hosts(ev.inv)
    # Compared without regard to case, as the client switch does (facts/clients.py
    # same_pointer): Windows and SQL Server compare host and instance names so.
    exact = [s for s, h in dsms.items() if h.lower() == str(value).strip().lower()]
    text = f"{value!r} ({p.get('form')})"
    if exact:
        return ok(f"{text}: side {exact[0]}'s DSM as the inventory names it")
    side = ev.client_side() or next(
        (s for s, h in dsms.items() if str(value).lower().startswith(h.lower())), None
    )
    return no(
        f"{text} is not a DSM host name of the inventory ({', '.join(dsms.values())})",
        "give each side the pointer's value in the form the clients use",
        "dsm_pointer",
        {"side": side, "value": value},
    )


def check_pointer_view(ev: Evidence) -> Outcome:
    views: dict[str, dict[str, Any]] = ev.value("dsm_pointer_views")
    configured = ev.inv.devices.aurora_registry
    name = ev.inv.devices.aurora_dsm_value
    mine = next((v for v, r in views.items() if r["key"].lower() == configured.lower()), None)
    held = {v: r for v, r in views.items() if r.get("value") is not None}
    text = "; ".join(
        f"the {v} view: "
        + (
            repr(r["value"])
            if r.get("value") is not None
            else "no value"
            if r["there"]
            else "no key"
        )
        + f" ({r['key']})"
        for v, r in views.items()
    )
    if not held:
        return no(
            f"no value {name} in any registry view: {text}",
            "set devices.aurora_registry / aurora_dsm_value to where the client keeps its DSM",
            "aurora_registry",
        )
    if mine not in held:
        (view, r), *_ = held.items()
        # Only the other view holds it: a 32-bit Aurora's (WOW6432Node), which amsm's
        # 64-bit powershell.exe reaches only by that path.
        return no(
            f"{text}: amsm would read and write the {mine} view, Aurora keeps it in the {view} one",
            f"set devices.aurora_registry to {r['key']}",
            "aurora_registry",
            r["key"],
        )
    values = {str(r["value"]).strip().lower() for r in held.values()}
    if len(values) > 1:
        return no(
            f"{text}: the views disagree; a 32-bit Aurora reads the 32-bit (WOW6432Node) "
            "view, a 64-bit one the 64-bit view",
            "set devices.aurora_registry to the key of the view Aurora reads (amsm changes "
            "only that one), and remove the other value",
            "aurora_registry",
        )
    return ok(f"{text}: amsm reads and writes the {mine} view")


# The SQL Server releases, by SERVERPROPERTY('ProductVersion') (major, or major.minor):
# 9 2005, 10.0 2008, 10.50 2008 R2, 11 2012 ... 16 2022, 17 2025 (Microsoft Learn,
# "Determine the version, edition, and update level of SQL Server").
SQL_RELEASES = ("2005", "2008", "2008 R2", "2012", "2014", "2016", "2017", "2019", "2022", "2025")
# Each ODBC Driver NN for SQL Server's releases and the SQL Server releases its row of
# the table lists, oldest to newest (Microsoft Learn, "System requirements, installation,
# and driver files" of the ODBC driver, "SQL version compatibility": "tested for
# compatibility against existing releases of SQL at the time of the driver's release").
# The ODBC string names the major version only ("ODBC Driver 18 for SQL Server").
ODBC_SUPPORT: dict[int, list[tuple[str, str, str]]] = {
    18: [("18.0", "2012", "2022"), ("18.1-18.3", "2014", "2022"), ("18.4-18.6", "2014", "2025")],
    17: [
        ("17.0-17.2", "2008", "2017"),
        ("17.3", "2008", "2019"),
        ("17.4-17.9", "2012", "2019"),
        ("17.10", "2012", "2022"),
    ],
    13: [("13", "2008", "2016"), ("13.1", "2008", "2017")],
    11: [("11", "2005", "2014")],
}
_ODBC_DRIVER = re.compile(r"(?i)^ODBC Driver (\d+) for SQL Server$")


def sql_release(version: str) -> str | None:
    parts = [int(p) for p in str(version).split(".")[:2]]
    major, minor = parts[0], parts[1] if len(parts) > 1 else 0
    if major == 10:
        return "2008 R2" if minor >= 50 else "2008"
    by_major = {9: "2005", 11: "2012", 12: "2014", 13: "2016", 14: "2017", 15: "2019"}
    return by_major.get(major) or {16: "2022", 17: "2025"}.get(major)


def _lists(row: tuple[str, str, str], release: str) -> bool:
    _, first, last = row
    i = SQL_RELEASES.index(release)
    return SQL_RELEASES.index(first) <= i <= SQL_RELEASES.index(last)


def odbc_driver(odbc: str) -> str | None:
    """The Driver= of an ODBC string ([MS-ODBCSTR]; the first, as ODBC takes it)."""
    return next((v for k, v, _ in odbc_keywords(odbc) if k.casefold() == "driver"), None)


def check_odbc_driver(ev: Evidence) -> Outcome:
    if _profile(ev) != "sqlserver":
        return unread("a lab DSM (profile lab)")
    v = ev.value("sql_version")
    release = sql_release(str(v["productversion"]))
    driver = odbc_driver(ev.inv.sides[ev.t.side or "X"].dsm.odbc) or ""
    m = _ODBC_DRIVER.match(driver.strip())
    if m is None or int(m[1]) not in ODBC_SUPPORT:
        return unread(
            f"the worker's driver {driver or '(no Driver=)'} is not one of Microsoft's ODBC "
            "Driver NN for SQL Server, whose support table this checks"
        )
    if release is None:
        return unread(f"SQL Server {v['productversion']} is not in the driver's support table")
    rows = ODBC_SUPPORT[int(m[1])]
    listing = [r[0] for r in rows if _lists(r, release)]
    text = f"{driver} against SQL Server {release} ({v['productversion']})"
    if len(listing) == len(rows):
        return ok(f"{text}: listed by every release of the driver")
    others = [
        f"ODBC Driver {major} for SQL Server {r[0]}"
        for major, rs in ODBC_SUPPORT.items()
        for r in rs
        if _lists(r, release)
    ]
    evidence = (
        f"{text}: listed only by {', '.join(listing)} (the ODBC string names the major version only)"
        if listing
        else f"{text}: no release of the driver lists it"
    )
    fix = (
        "an untested combination: name in Driver= a driver whose release lists SQL Server "
        f"{release} ({', '.join(others) or 'none'}), or try this one on a test pair first"
    )
    if release in ("2005", "2008", "2008 R2"):
        # SQL Server 2005 has no TLS 1.2 (its updates start at 2008: KB3135244); an old
        # server's TLS 1.0 needs the worker's OpenSSL to allow it.
        fix += (
            "; an older SQL Server may speak only TLS 1.0 (2005 has no TLS 1.2): give the "
            "worker OPENSSL_CONF=etc/openssl-legacy-tls.cnf (docs/site/sqlserver.md, TLS)"
        )
    return no(evidence, fix, "dsm_odbc")


def check_ssh_shell(ev: Evidence) -> Outcome:
    s = ev.value("ssh_default_shell")
    shell = s.get("shell")
    if not shell:
        where = "no DefaultShell" if s.get("key") else "no key HKLM:\\SOFTWARE\\OpenSSH"
        return ok(f"{where}: sshd runs the command through cmd.exe /c")
    if probes.runs_cmd(shell):
        return ok(f"DefaultShell {shell}: cmd.exe")
    option = s.get("option") or "-c"
    return no(
        f'DefaultShell {shell}: sshd runs "{shell}" {option} "<command>", not the cmd.exe /c '
        "the drivers' command line is built for",
        "on the host: remove DefaultShell (and DefaultShellCommandOption) under "
        "HKLM:\\SOFTWARE\\OpenSSH and restart sshd; or reach this host over WinRM "
        "(transport: winrm in the inventory)",
    )


def _ssh(inv: Inventory, t: SurveyTarget) -> bool:
    return t.role != "dsm" and inv.host(t.host).transport == "ssh"


def check_pointer_kind(ev: Evidence) -> Outcome:
    kind = ev.value("dsm_pointer_kind")
    if kind == "String":
        return ok("REG_SZ (String)")
    return no(
        f"{kind}, not a String (REG_SZ)", "tell amsm's maintainers: the driver writes a String"
    )


def check_processes(ev: Evidence) -> Outcome:
    names = list(ev.inv.devices.aurora_processes)
    running = []
    for n in names:
        try:
            if ev.value("process_running", n):
                running.append(n)
        except Unread:
            pass
    if running:
        return ok(f"running: {', '.join(running)}")
    return unread(f"none of {', '.join(names)} runs now: their names cannot be confirmed")


def _sqlserver(inv: Inventory, t: SurveyTarget) -> bool:
    return t.role == "dsm"


def _profile(ev: Evidence) -> str:
    return ev.inv.sides[ev.t.side or "X"].dsm.profile


def check_sql_version(ev: Evidence) -> Outcome:
    if _profile(ev) != "sqlserver":
        return unread("a lab DSM (profile lab): no SQL Server to ask")
    v = ev.value("sql_version")
    text = (
        f"SQL Server {v['productversion']} {v['productlevel']} {v['edition']} ({v['servername']})"
    )
    major = int(str(v["productversion"]).split(".")[0])
    if major >= 9:
        return ok(text)
    return no(text, "the sqlserver profile needs SQL Server 2005 (9.0) or later")


def check_database(ev: Evidence) -> Outcome:
    if _profile(ev) != "sqlserver":
        return unread("a lab DSM (profile lab)")
    dbs = ev.value("sql_databases")
    name = ev.inv.sides[ev.t.side or "X"].dsm.replicated_database or ""
    mine = next((d for d in dbs if str(d["name"]).casefold() == name.casefold()), None)
    if mine is None:
        return no(
            f"the replicated database {name!r} is not on this server "
            f"({', '.join(str(d['name']) for d in dbs)})",
            "name the database replication copies",
            "dsm_database",
            None,
        )
    # The driver's statements run in msdb and read only the replicated database's
    # catalog (sys.partitions), so its compatibility level (80: upgraded from SQL Server
    # 2000, where APPLY is refused) is shown, not required.
    text = (
        f"{mine['name']}: compatibility level {mine['compatibility_level']}, recovery "
        f"{mine['recovery_model']}, {mine['state']}"
    )
    if mine["state"] == "ONLINE":
        return ok(text)
    try:
        status = ev.value("dsm_status")
    except Unread:
        status = {}
    # A backup that receives by log shipping WITH NORECOVERY is RESTORING (Microsoft
    # Learn, RESTORE arguments): its count cannot be read, which amsm shows as a state.
    if mine["state"] == "RESTORING" and status.get("role") == "backup":
        return ok(f"{text}: a backup receiving replication (its asset count is not readable)")
    return no(text, "the DSM's database is not ONLINE on this server")


def check_state_database(ev: Evidence) -> Outcome:
    if _profile(ev) != "sqlserver":
        return unread("a lab DSM (profile lab)")
    dbs = ev.value("sql_databases")
    names = [str(d["name"]) for d in dbs]
    dsm = ev.inv.sides[ev.t.side or "X"].dsm
    wanted = dsm.sqlserver_settings.state_database
    replicated = dsm.replicated_database
    # amsm's mode row lives in a database of its own, which replication does not copy
    # (docs/site/sqlserver.md); the inventory already refuses the replicated one.
    if wanted.casefold() not in {n.casefold() for n in names}:
        return no(
            f"amsm's state database {wanted!r} is not on this server ({', '.join(names)})",
            "create it on each DSM as docs/site/sqlserver.md says (CREATE DATABASE, the mode table and "
            "its row), or name the one the site made",
            "dsm_state_database",
            wanted,
        )
    return ok(f"amsm's state in {wanted}, apart from the replicated {replicated}")


def check_jobs(ev: Evidence) -> Outcome:
    r = ev.value("dsm_readiness")
    missing = r.get("missing_jobs") or []
    listed = ""
    try:
        j = ev.value("sql_jobs")
        listed = f"; {j['server']} has jobs: " + (", ".join(x["name"] for x in j["jobs"]) or "none")
    except Unread:
        pass
    if not missing:
        return ok("the replication jobs are there" + listed)
    key = (
        "master_job"
        if ev.inv.sides[ev.t.side or "X"].dsm.sqlserver_settings.master_job in missing
        else "backup_job"
    )
    return no(f"no job {', '.join(missing)}{listed}", "name the site's replication jobs", key)


def check_rights(ev: Evidence) -> Outcome:
    r = ev.value("dsm_readiness")
    missing = r.get("missing_rights")
    if missing is None:
        return unread("the profile cannot tell (the lab's SQLite has no logins)")
    if not missing:
        return ok("the login may read and run the replication jobs in msdb")
    return no(
        f"the login lacks {', '.join(missing)}", "grant them in msdb (docs/site/sqlserver.md)"
    )


def check_tls(ev: Evidence) -> Outcome:
    return unread(
        "not probed: SQL Server carries TLS inside its TDS pre-login packets ([MS-TDS] 2.2.6.5), "
        "so a plain TLS handshake cannot ask it, and the ODBC driver does not say which "
        "version it agreed; a refused handshake shows as the dsm_status error"
    )


def _winrm(inv: Inventory, t: SurveyTarget) -> bool:
    return t.role != "dsm" and inv.host(t.host).transport == "winrm"


REGISTER: list[Assumption] = [
    Assumption("powershell", "Windows PowerShell 5.1 or later answers",
               "assumed: the drivers' scripts are written for 5.1 (activities/checks/hosts.py)",
               ("powershell_version",), None, check_powershell),
    Assumption("dotnet", ".NET Framework 4.5.2 or later",
               "Microsoft Learn, WMF 5.1 prerequisites", ("dotnet_version",), None, check_dotnet),
    Assumption("clock", "the host's clock within 5 minutes of the worker's; its time zone",
               "Microsoft Learn, Kerberos maximum clock skew", ("clock", "time_zone"), None, check_clock),
    Assumption("winrm-quota", "WinRM allows the workers' shells",
               "Microsoft Learn, Quotas for Remote Shells", ("winrm_config",), None,
               check_winrm_quota, _winrm),
    Assumption("winrm-auth", "WinRM takes the inventory's authentication and scheme",
               "Microsoft Learn, Installation and configuration for WinRM", ("winrm_config",),
               None, check_winrm_auth, _winrm),
    Assumption("service-names", "the services the inventory names exist (key or display name)",
               "Microsoft Learn, Get-Service -Name", ("find_services",),
               ("smartbins", "nas-cifs", "control-point", "browse"), check_services,
               lambda inv, t: (t.role != "nas-cifs" or inv.devices.allsync_service is not None)
               and (t.role != "control-point" or inv.devices.insync_service is not None)),
    Assumption("fsnameservers-file", "the client's fsnameservers file is where the inventory says",
               "StorNext fsnameservers(4): <install path>\\config\\fsnameservers",
               ("fsnameservers",), ("client",), check_fsnameservers_file),
    Assumption("fsnameservers-lists", "the file lists the inventory's fsnameservers of the client's side",
               "StorNext fsnameservers(4)", ("fsnameservers", "client_facts"), ("client",),
               check_fsnameservers_lists),
    Assumption("iscsi-targets", "every iSCSI session of a client is to a target of a side",
               "assumed (K2 SAN: one target per side)", ("iscsi_sessions",), ("client",),
               check_targets_known),
    Assumption("iscsi-one-side", "a client is logged in to one side only",
               "Grass Valley K2 SAN: a client's V: is one side's", ("iscsi_sessions",),
               ("client",), check_one_side),
    Assumption("iscsi-portal", "a client connects through the portal the inventory gives its side",
               "Grass Valley K2 SAN Installation Guide: K2Config assigns each client a TOE",
               ("iscsi_connections", "client_facts"), ("client",), check_portal),
    Assumption("persistent-logins", "no persistent login to the other side's targets",
               "Microsoft Learn, MSiSCSIInitiator_PersistentLoginClass",
               ("iscsi_persistent_logins", "client_facts"),
               ("client",), check_persistent),
    Assumption("write-filter", "no write filter (UWF, FBWF, EWF) protects the client",
               "Microsoft Learn, Unified Write Filter: changes are discarded at restart",
               ("write_filter_state",), ("client",), check_write_filters),
    Assumption("dsm-pointer", "the Aurora DSM pointer holds a DSM host name as the inventory spells it",
               "assumed (activities/drivers: it writes the inventory's host name)",
               ("dsm_pointer_value", "client_facts"), ("client",), check_pointer),
    Assumption("dsm-pointer-view", "the Aurora DSM pointer is in the registry view amsm reads and writes",
               "Microsoft Learn, Registry Redirector: a 32-bit program's HKLM\\SOFTWARE is "
               "HKLM\\SOFTWARE\\WOW6432Node", ("dsm_pointer_views",), ("client",),
               check_pointer_view),
    Assumption("dsm-pointer-type", "the Aurora DSM pointer is a String (REG_SZ)",
               "assumed (Set-ItemProperty keeps the value's type)", ("dsm_pointer_kind",),
               ("client",), check_pointer_kind),
    Assumption("aurora-processes", "the Aurora process names the inventory lists",
               "assumed (devices.aurora_processes)", ("process_running",), ("client",),
               check_processes),
    Assumption("sql-version", "SQL Server 2005 or later", "docs/site/sqlserver.md",
               ("sql_version",), ("dsm",), check_sql_version, _sqlserver),
    Assumption("odbc-driver", "the worker's ODBC driver lists the DSM's SQL Server as supported",
               "Microsoft Learn, ODBC driver System requirements: SQL version compatibility",
               ("sql_version",), ("dsm",), check_odbc_driver, _sqlserver),
    Assumption("dsm-database", "the replicated database is on the DSM and ONLINE (RESTORING only on a backup that receives)",
               "Microsoft Learn, sys.databases (state_desc); RESTORE (NORECOVERY)",
               ("sql_databases", "dsm_status"), ("dsm",), check_database),
    Assumption("dsm-state-database", "amsm's own state is in a database replication does not copy",
               "issue 25 #1: replication copies the whole database", ("sql_databases",), ("dsm",),
               check_state_database),
    Assumption("replication-jobs", "the replication jobs the inventory names are in this server's msdb",
               "docs/site/sqlserver.md", ("dsm_readiness", "sql_jobs"), ("dsm",), check_jobs),
    Assumption("msdb-rights", "the worker's login may run and read the jobs in msdb",
               "Microsoft Learn, sp_start_job permissions", ("dsm_readiness",), ("dsm",), check_rights),
    Assumption("ssh-default-shell", "sshd runs the drivers' command line through cmd.exe",
               "Win32-OpenSSH wiki, DefaultShell; w32-doexec.c", ("ssh_default_shell",), None,
               check_ssh_shell, _ssh),
    Assumption("tls-versions", "the DSM accepts a TLS version the worker's OpenSSL offers",
               "issue 25 #4", (), ("dsm",), check_tls),
]  # fmt: skip


def setting_name(key: str | None, host: str, side: Side | None, component: str = "") -> str | None:
    if key is None:
        return None
    return SETTINGS[key].format(host=host, side=side or "?", component=component)


def evaluate(
    records: list[FactRecord], inv: Inventory, target: SurveyTarget
) -> list[AssumptionResult]:
    """Every entry that applies to the host, with its verdict and evidence."""
    ev = Evidence(records, inv, target)
    out: list[AssumptionResult] = []
    for a in REGISTER:
        if target.role == "dsm" and (a.roles is None or "dsm" not in a.roles):
            continue
        if a.roles is not None and target.role not in a.roles:
            continue
        if not a.applies(inv, target):
            continue
        try:
            o = a.check(ev)
        except Unread as e:
            o = unread(str(e))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            o = unread(
                f"its reading is not in the shape the check expects ({type(e).__name__}: {e})"
            )
        side = target.side
        value = o.value
        if o.setting == "dsm_pointer" and isinstance(value, dict):
            side, value = value.get("side"), value.get("value")
        elif o.setting in ("fsnameservers", "client_portal", "side_targets"):
            side = ev.client_side()
        component = ""
        if o.setting == "browse_services":
            component = _service_setting(ev)[1]["component"]
        out.append(
            AssumptionResult(
                id=a.id,
                host=target.host,
                assumption=a.assumption,
                source=a.source,
                verdict=o.verdict,
                evidence=o.evidence,
                setting=setting_name(o.setting, target.host, side, component),
                value=value,
                fix=o.fix,
            )
        )
    return out
