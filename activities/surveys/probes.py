"""The survey's own probes: what the drivers do not read (yet) but a site must be known
by before its first switch. Each reads only; the document that says so is named beside
it. A probe that a host cannot answer is recorded with its error, never guessed.

Host probes are PowerShell statements run through the host driver (its script, its
strict reading of the answer); DSM probes are SELECTs run through the DSM driver's
session (Microsoft Learn: a SELECT "retrieves rows from the database")."""

from __future__ import annotations

import ipaddress
import ntpath
import re
from typing import Any

from activities.drivers import powershell as ps
from activities.drivers.dsm_profiles import DsmProfile, ProfileError, Row, Sql
from activities.drivers.facts import clients as clients_facts
from activities.drivers.host import HostDriver, reads_answers
from activities.surveys.kinds import DsmFact, HostFact
from activities.surveys.models import SurveyTarget
from inventory.models import Inventory

# StorNext's fsnameservers(4): the file is `<install path>\config\fsnameservers`. The
# first is where the inventory's default (devices.snfs_nameservers_file) puts it; the
# others are assumed: a 32-bit install, and the SNFS folder of older K2 clients.
FSNAMESERVERS_PLACES = (
    r"C:\Program Files\StorNext\config\fsnameservers",
    r"C:\Program Files (x86)\StorNext\config\fsnameservers",
    r"C:\SNFS\config\fsnameservers",
)
# The write filters of Windows and Windows Embedded, each by the tool that manages it
# (installed with the filter): UWF's state from its WMI class UWF_Filter, which "users
# with any kind of account can read" (Microsoft Learn, "UWF_Filter": CurrentEnabled,
# NextEnabled); FBWF's and EWF's from the command that only displays it: fbwfmgr.exe
# /displayconfig (Microsoft Learn, "FBWFMgr.exe Command-Line Options": "displays the
# current configuration") and ewfmgr.exe <volume> (Microsoft Learn, "EWFMgr Commands":
# without an option it displays the volume's configuration, its State among them).
# Each native command's output is piped into Out-String (NATIVE): left bare at the end of
# a pipeline, Windows PowerShell 5.1 lets it write straight to the inherited stdout in the
# console's code page, past [Console]::OutputEncoding (PowerShell/PowerShell#14945), and
# on a localized Windows the whole answer is then not UTF-8 (host._decode refuses it);
# piped, PowerShell reads it as text and writes it as the script's UTF-8 output.
NATIVE = " | Out-String"
WRITE_FILTER_TOOLS = {
    "fbwf": ("fbwfmgr.exe", "fbwfmgr.exe /displayconfig" + NATIVE),
    "ewf": ("ewfmgr.exe", "ewfmgr.exe C:" + NATIVE),
}
# Win32-OpenSSH's default shell: DefaultShell (the shell's full path) and
# DefaultShellCommandOption (its switch to run a command, "-c" when absent) under this key
# (PowerShell/Win32-OpenSSH wiki, "DefaultShell"; Microsoft Learn, "OpenSSH Server
# configuration for Windows"). Without DefaultShell sshd runs an exec request as cmd.exe /c
# (contrib/win32/win32compat/w32-doexec.c), the command line the drivers build.
OPENSSH_KEY = r"HKLM:\SOFTWARE\OpenSSH"
OPENSSH_VALUES = ("DefaultShell", "DefaultShellCommandOption")
# WOW64 gives a 32-bit program's HKLM\SOFTWARE the key HKLM\SOFTWARE\WOW6432Node (the
# 32-bit view), which a 64-bit program such as 64-bit powershell.exe reads by that path
# (Microsoft Learn, "Registry Redirector"; "Registry Keys Affected by WOW64": HKLM\SOFTWARE
# is redirected).
_SOFTWARE = re.compile(r"(?i)^(HKLM:\\SOFTWARE)\\(?:WOW6432Node\\)?(.+)$")
# .NET Framework 4.5 and later: the Release value of this key (Microsoft Learn, "How to:
# Determine which .NET Framework versions are installed"); reading a key changes nothing.
NDP_KEY = r"HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full"


# -- pure readings ------------------------------------------------------------------------
def filter_state(text: str) -> str:
    """'on', 'off' or 'unknown' from a write filter tool's display: its first line
    naming a state (the current session's, which each tool lists first)."""
    for line in text.replace("\r\n", "\n").split("\n"):
        low = line.strip().lower()
        if "state" not in low:
            continue
        value = low.split(":", 1)[1] if ":" in low else low.split("state", 1)[1]
        words = set(re.findall(r"[a-z]+", value))
        if words & {"on", "enabled"}:
            return "on"
        if words & {"off", "disabled"}:
            return "off"
    return "unknown"


def runs_cmd(shell: Any) -> bool:
    """Whether sshd with this DefaultShell (None or empty: not set) runs an exec request
    through cmd.exe /c, the command line the drivers build."""
    return not shell or ntpath.basename(str(shell).strip().strip('"')).lower() == "cmd.exe"


def registry_views(key: str) -> dict[str, str]:
    """The key in the 64-bit and in the 32-bit registry view, as 64-bit PowerShell names
    them: HKLM:\\SOFTWARE\\X and HKLM:\\SOFTWARE\\WOW6432Node\\X, whichever of them `key`
    is. A key outside HKLM\\SOFTWARE has the one view."""
    m = _SOFTWARE.match(key)
    if m is None:
        return {"64-bit": key}
    return {"64-bit": f"{m[1]}\\{m[2]}", "32-bit": f"{m[1]}\\WOW6432Node\\{m[2]}"}


def pointer_form(value: str) -> str:
    """The form of the Aurora DSM pointer's value: 'instance' (HOST\\INSTANCE), 'ip',
    'fqdn' (a dotted name) or 'name'."""
    v = value.strip()
    if "\\" in v:
        return "instance"
    try:
        ipaddress.ip_address(v)
        return "ip"
    except ValueError:
        pass
    return "fqdn" if "." in v else "name"


# -- host probes --------------------------------------------------------------------------
@reads_answers
async def os_version(drv: HostDriver) -> dict[str, Any]:
    # Get-CimInstance gets instances, it changes none (Microsoft Learn, Get-CimInstance).
    obj = ps.parse_json_object(
        await drv.run_one(
            "Get-CimInstance -ClassName Win32_OperatingSystem | "
            f"Select-Object Caption,Version | {ps.JSON}"
        )
    )
    return {"caption": ps.prop(obj, "Caption"), "version": ps.prop(obj, "Version")}


@reads_answers
async def time_zone(drv: HostDriver) -> dict[str, Any]:
    # Win32_TimeZone: Caption, Bias (minutes from UTC), StandardName (Microsoft Learn).
    obj = ps.parse_json_object(
        await drv.run_one(
            "Get-CimInstance -ClassName Win32_TimeZone | "
            f"Select-Object Caption,Bias,StandardName | {ps.JSON}"
        )
    )
    return {k.lower(): ps.prop(obj, k) for k in ("Caption", "Bias", "StandardName")}


@reads_answers
async def dotnet_version(drv: HostDriver) -> dict[str, Any]:
    obj = ps.parse_json_object(await drv.run_one(ps.get_registry(NDP_KEY, ["Release", "Version"])))
    return {"release": ps.prop(obj, "Release"), "version": ps.prop(obj, "Version")}


@reads_answers
async def write_filters(drv: HostDriver) -> dict[str, str]:
    """Each filter 'absent' (its tool is not installed), 'on' or 'off' (in the current
    session; UWF also 'on' when enabled for the next one), or 'unknown'. Which filters
    are installed and UWF's state are the client switch's own reading (facts/clients.py
    write_filters, with the statements it sends); FBWF's and EWF's state, which the
    switch cannot read, from their tools' display, each in a script of its own."""
    found = await clients_facts.write_filters(drv)
    out: dict[str, str] = {"uwf": "absent"}
    if "UWF" in found.installed:
        out["uwf"] = "on" if found.uwf_on or found.uwf_next else "off"
    for name, (_, show) in WRITE_FILTER_TOOLS.items():
        installed = name.upper() in found.installed
        out[name] = filter_state(await drv.run_one(show)) if installed else "absent"
    return out


@reads_answers
async def iscsi_sessions(drv: HostDriver) -> list[dict[str, Any]]:
    # The drivers' own statement (clients.client_verify reads it): every session.
    sessions = clients_facts.parse_sessions(await drv.run_one(ps.iscsi_session_details()))
    return [
        {"target": s.target, "connected": s.connected, "persistent": s.persistent} for s in sessions
    ]


@reads_answers
async def iscsi_connections(drv: HostDriver) -> list[dict[str, Any]]:
    # Get-IscsiConnection: which portal (TargetAddress) each connection goes to
    # (Microsoft Learn, Get-IscsiConnection; "Gets information about connected iSCSI
    # initiator connections").
    line = await drv.run_one(
        f"Get-IscsiConnection | Select-Object TargetAddress,InitiatorAddress | {ps.JSON}"
    )
    return [
        {
            "portal": str(ps.prop(o, "TargetAddress")),
            "initiator": str(ps.prop(o, "InitiatorAddress")),
        }
        for o in ps.parse_json_list(line)
    ]


@reads_answers
async def fsnameservers(drv: HostDriver, places: list[str]) -> dict[str, Any]:
    """Where the fsnameservers file is among `places` and what the first found lists."""
    there = [ps.parse_bool(a) for a in await drv.run(*[ps.test_path(p) for p in places])]
    found = next((p for p, ok in zip(places, there, strict=True) if ok), None)
    listed = None
    if found is not None:
        text = ps.parse_json_string(await drv.run_one(ps.get_content(found)))
        listed = clients_facts.parse_nameservers(text)
    return {"places": dict(zip(places, there, strict=True)), "found": found, "lists": listed}


@reads_answers
async def dsm_pointer(drv: HostDriver, key: str, name: str) -> dict[str, Any]:
    obj = ps.parse_json_object(await drv.run_one(ps.get_registry(key, [name])))
    value = ps.prop(obj, name)
    return {"value": value, "form": pointer_form(str(value)) if value is not None else None}


async def _registry_keys(
    drv: HostDriver, keys: dict[str, str], names: list[str]
) -> dict[str, dict[str, Any] | None]:
    """Each key's values `names` (None where the key has no such value), or None where
    the key is not there: Test-Path of each key first (about_Registry_Provider: it tests
    keys), then Get-ItemProperty of those that are, each in one script. A key that holds
    no value at all answers nothing: PowerShell's RegistryProvider.GetProperty writes
    the property object only once a value was added."""
    there = [ps.parse_bool(a) for a in await drv.run(*[ps.test_path(k) for k in keys.values()])]
    present = [view for view, ok in zip(keys, there, strict=True) if ok]
    out: dict[str, dict[str, Any] | None] = {view: None for view in keys}
    if present:
        answers = await drv.run(*[ps.get_registry(keys[v], names) for v in present])
        for view, answer in zip(present, answers, strict=True):
            found = ps.parse_json_list(answer)
            if len(found) > 1:
                raise ps.BadOutput(f"expected one JSON object, got {len(found)}")
            out[view] = {n: ps.prop(found[0], n) if found else None for n in names}
    return out


@reads_answers
async def dsm_pointer_views(drv: HostDriver, key: str, name: str) -> dict[str, Any]:
    """The Aurora DSM pointer in each registry view (registry_views of the inventory's
    key): the key's path, whether it is there, the value (None: no key or no value)."""
    keys = registry_views(key)
    read = await _registry_keys(drv, keys, [name])
    return {
        view: {"key": k, "there": read[view] is not None, "value": (read[view] or {}).get(name)}
        for view, k in keys.items()
    }


@reads_answers
async def ssh_default_shell(drv: HostDriver) -> dict[str, Any]:
    """Win32-OpenSSH's DefaultShell and DefaultShellCommandOption (None: not set, and
    sshd runs cmd.exe), and whether their key is there."""
    read = (await _registry_keys(drv, {"key": OPENSSH_KEY}, list(OPENSSH_VALUES)))["key"]
    values = read or {}
    return {
        "key": read is not None,
        "shell": values.get("DefaultShell"),
        "option": values.get("DefaultShellCommandOption"),
    }


@reads_answers
async def dsm_pointer_kind(drv: HostDriver, key: str, name: str) -> str:
    # RegistryKey.GetValueKind reads the value's type (Microsoft Learn); its name as text:
    # Windows PowerShell 5.1's ConvertTo-Json writes an enum as its number.
    statement = f"(Get-Item -LiteralPath {ps.q(key)}).GetValueKind({ps.q(name)}).ToString()"
    return ps.parse_json_string(await drv.run_one(f"{statement} | {ps.JSON}"))


def _places(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, dict[str, Any]]]:
    first = inv.devices.snfs_nameservers_file
    rest = [p for p in FSNAMESERVERS_PLACES if p.lower() != first.lower()]
    return [(None, {"places": [first, *rest]})]


def _pointer(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, dict[str, Any]]]:
    return [(None, {"key": inv.devices.aurora_registry, "name": inv.devices.aurora_dsm_value})]


def _over_ssh(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, dict[str, Any]]]:
    # Only sshd runs a command through a default shell; WinRM starts powershell.exe itself.
    return [(None, {})] if inv.host(t.host).transport == "ssh" else []


# -- DSM probes (sqlserver) ---------------------------------------------------------------
def _row(rows: list[Row], width: int, what: str) -> Row:
    if len(rows) != 1 or len(rows[0]) != width:
        raise ProfileError(f"{what}: expected one row of {width} columns, got {rows!r:.200}")
    return rows[0]


def sql_version(profile: DsmProfile, sql: Sql) -> dict[str, Any]:
    names = ("ProductVersion", "ProductLevel", "Edition", "ServerName")
    # SERVERPROPERTY (Microsoft Learn): sql_variant, so cast to text.
    cols = ", ".join(f"CAST(SERVERPROPERTY('{n}') AS nvarchar(128))" for n in names)
    row = _row(sql.query(f"SELECT {cols}"), len(names), "SERVERPROPERTY")
    return dict(zip([n.lower() for n in names], row, strict=True))


def sql_databases(profile: DsmProfile, sql: Sql) -> list[dict[str, Any]]:
    # sys.databases: one row per database of the server (Microsoft Learn); `current`
    # marks the DSM's own (the ODBC string's Database, DB_NAME()).
    rows = sql.query(
        "SELECT name, compatibility_level, recovery_model_desc, state_desc "
        "FROM sys.databases ORDER BY name"
    )
    keys = ("name", "compatibility_level", "recovery_model", "state")
    out = []
    for r in rows:
        if len(r) != len(keys):
            raise ProfileError(f"sys.databases row {r!r:.200} is not 4 columns")
        out.append(dict(zip(keys, r, strict=True)))
    current = _row(sql.query("SELECT DB_NAME()"), 1, "DB_NAME()")[0]
    return [{**d, "current": d["name"] == current} for d in out]


def sql_jobs(profile: DsmProfile, sql: Sql) -> dict[str, Any]:
    # msdb.dbo.sysjobs: the Agent jobs of this server (Microsoft Learn, dbo.sysjobs).
    rows = sql.query("SELECT name, enabled FROM msdb.dbo.sysjobs ORDER BY name")
    server = _row(
        sql.query("SELECT CAST(SERVERPROPERTY('ServerName') AS nvarchar(128))"), 1, "ServerName"
    )
    return {"server": server[0], "jobs": [{"name": r[0], "enabled": bool(r[1])} for r in rows]}


def sql_rights(profile: DsmProfile, sql: Sql) -> dict[str, Any]:
    # HAS_PERMS_BY_NAME answers 1 or 0 for the caller (Microsoft Learn), since 2005.
    procs = ("sp_start_job", "sp_stop_job", "sp_help_job")
    cols = ", ".join(f"HAS_PERMS_BY_NAME('msdb.dbo.{p}', 'OBJECT', 'EXECUTE')" for p in procs)
    row = _row(sql.query(f"SELECT {cols}, IS_SRVROLEMEMBER('sysadmin')"), 4, "rights")
    return {**{p: row[i] == 1 for i, p in enumerate(procs)}, "sysadmin": row[3] == 1}


HOST_PROBES: list[HostFact] = [
    HostFact(
        "os_version", "Win32_OperatingSystem Caption and Version", lambda d, i, t, a: os_version(d)
    ),
    HostFact("time_zone", "Win32_TimeZone", lambda d, i, t, a: time_zone(d)),
    HostFact("dotnet_version", ".NET Framework 4.x Release", lambda d, i, t, a: dotnet_version(d)),
    HostFact(
        "write_filter_state",
        "UWF, FBWF, EWF state",
        lambda d, i, t, a: write_filters(d),
        roles=("client",),
    ),
    HostFact(
        "iscsi_sessions",
        "every iSCSI session",
        lambda d, i, t, a: iscsi_sessions(d),
        roles=("client",),
    ),
    HostFact(
        "iscsi_connections",
        "the portal of each connection",
        lambda d, i, t, a: iscsi_connections(d),
        roles=("client",),
    ),
    HostFact(
        "fsnameservers",
        "where the SNFS fsnameservers file is and what it lists",
        lambda d, i, t, a: fsnameservers(d, a["places"]),
        roles=("client",),
        calls=_places,
    ),
    HostFact(
        "dsm_pointer_value",
        "the Aurora DSM pointer's value and its form",
        lambda d, i, t, a: dsm_pointer(d, a["key"], a["name"]),
        roles=("client",),
        calls=_pointer,
    ),
    HostFact(
        "dsm_pointer_views",
        "the Aurora DSM pointer in the 64-bit and the 32-bit (WOW6432Node) registry view",
        lambda d, i, t, a: dsm_pointer_views(d, a["key"], a["name"]),
        roles=("client",),
        calls=_pointer,
    ),
    HostFact(
        "ssh_default_shell",
        "Win32-OpenSSH's DefaultShell, through which sshd runs the drivers' command line",
        lambda d, i, t, a: ssh_default_shell(d),
        calls=_over_ssh,
    ),
    HostFact(
        "dsm_pointer_kind",
        "the Aurora DSM pointer's registry type",
        lambda d, i, t, a: dsm_pointer_kind(d, a["key"], a["name"]),
        roles=("client",),
        calls=_pointer,
    ),
]
DSM_PROBES: list[DsmFact] = [
    DsmFact("sql_version", "SERVERPROPERTY", sql_version, profiles=("sqlserver",)),
    DsmFact("sql_databases", "sys.databases", sql_databases, profiles=("sqlserver",)),
    DsmFact("sql_jobs", "msdb.dbo.sysjobs", sql_jobs, profiles=("sqlserver",)),
    DsmFact("sql_rights", "HAS_PERMS_BY_NAME", sql_rights, profiles=("sqlserver",)),
]
