"""The PowerShell the drivers send: one source for every transport.

Each builder returns one *statement*; `script()` joins statements into a script
that stops at the first error (`$ErrorActionPreference = 'Stop'`), writes no
progress records (`$ProgressPreference`), prints UTF-8 (`[Console]::OutputEncoding`)
and frames every statement's output between marker lines, so a statement that
prints nothing (an empty pipeline into ConvertTo-Json prints nothing at all) or
several lines cannot shift the others: `split_output()` cuts stdout back into one
text per statement and refuses an answer that is not framed whole. It is the exact
subset the lab's interpreter accepts (lab/powershell.py), so the drivers cannot
drift from what the lab understands.

Values are never interpolated into code: every value is a single-quoted
PowerShell literal (no variable or sub-expression expansion inside '...'),
with the quote doubled, and control characters are refused outright.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from activities.drivers.errors import UnsafeValue

# PowerShell treats these as single quotes too; each must be doubled.
_QUOTES = "'\u2018\u2019\u201a\u201b"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def q(value: str) -> str:
    """Quote `value` as a PowerShell single-quoted literal."""
    if not isinstance(value, str):
        raise UnsafeValue(f"expected text, got {type(value).__name__}")
    if _CONTROL.search(value):
        raise UnsafeValue(f"control characters are not allowed in {value!r}")
    out = "".join(c + c if c in _QUOTES else c for c in value)
    return f"'{out}'"


def qlist(values: Sequence[str]) -> str:
    if not values:
        raise UnsafeValue("an empty list")
    return ",".join(q(v) for v in values)


_BARE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _props(names: Sequence[str]) -> str:
    for n in names:
        if not _BARE.fullmatch(n):
            raise UnsafeValue(f"not a property name: {n!r}")
    return ",".join(names)


JSON = "ConvertTo-Json -Compress"

# What every script sets before its statements run:
# - the first failing statement ends the script (its error is terminating);
# - no progress records on stderr (about_Preference_Variables, $ProgressPreference:
#   powershell.exe serialises them to a redirected stderr as CLIXML `<Obj S="progress">`);
# - output in UTF-8 instead of the console's OEM code page (cp437/cp850, localized),
#   which is what powershell.exe writes to a redirected stdout otherwise.
PREAMBLE = (
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8",
)
# The line printed after statement i of n: `#amsm 3/5`. PowerShell prints a string
# statement as one line; no statement's own output can start with '#' (JSON, True or
# False), and the count makes a cut answer visible whatever it ends with.
MARK = "#amsm"
_MARK_RE = re.compile(r"^#amsm (\d+)/(\d+)$")


def _mark(i: int, n: int) -> str:
    return f"'{MARK} {i}/{n}'"


def script(*statements: str) -> str:
    """The statements as one script: the preamble, then each statement followed by its
    marker line (see split_output)."""
    n = len(statements)
    body: list[str] = []
    for i, st in enumerate(statements, 1):
        body += [st, _mark(i, n)]
    return "\n".join([*PREAMBLE, *body])


class BadOutput(ValueError):
    """An answer that cannot be read whole; the driver reports it as the host's
    CommandFailed, never as an empty result."""


def split_output(stdout: str, n: int) -> list[str]:
    """One text per statement (its lines joined by '\n', '' when it printed nothing)
    from the stdout of `script()` with `n` statements. BadOutput unless every marker
    is there, in order, with nothing after the last."""
    out: list[str] = []
    pending: list[str] = []
    lines = stdout.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        m = _MARK_RE.match(line)
        if m is None:
            if len(out) == n:
                raise BadOutput(f"output after the last statement: {line[:80]!r}")
            pending.append(line)
            continue
        i, total = int(m.group(1)), int(m.group(2))
        if total != n or i != len(out) + 1:
            raise BadOutput(f"statement marker {i}/{total} where {len(out) + 1}/{n} was due")
        out.append("\n".join(pending))
        pending = []
    if len(out) != n:
        raise BadOutput(f"the answer stops after {len(out)} of {n} statements")
    return out


# -- the command line -------------------------------------------------------------------
_ARGUMENTS = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand"
_PREFIX = f"powershell.exe {_ARGUMENTS} "

# The longest command line a transport carries. OpenSSH for Windows hands an exec
# request to its default shell as `"...\cmd.exe" /c "<command>"` (PowerShell/openssh-
# portable, contrib/win32/win32compat/w32-doexec.c, do_exec_windows), and cmd.exe
# refuses more than 8,191 characters of what follows /c, the two quotes included ("The
# command line is too long.", Microsoft Learn: "Command prompt (Cmd.exe) command-line
# string limitation"): 8,189 for the command. (The whole line, shell path and all, is
# far below CreateProcess's 32,767.) WinRM starts powershell.exe itself
# (WINRS_SKIP_CMD_SHELL) with CreateProcess, whose lpCommandLine holds at most 32,767
# characters including its terminating null (Microsoft Learn: CreateProcessW).
CMD_EXE_MAX = 8191
MAX_COMMAND_LENGTH = {"ssh": CMD_EXE_MAX - 2, "winrm": 32766}


def encoded_command(text: str) -> str:
    """The command line that OpenSSH for Windows runs (default shell cmd.exe)."""
    b64 = base64.b64encode(text.encode("utf-16-le")).decode("ascii")
    return _PREFIX + b64


def command_length(statements: Sequence[str]) -> int:
    """Characters of the command line that runs `statements` as one script (base64 of
    UTF-16: 8 characters for every 3 of the script, plus the preamble and markers)."""
    script_chars = len(script(*statements).encode("utf-16-le"))
    return len(_PREFIX) + 4 * ((script_chars + 2) // 3)


def max_command_length(transport: str) -> int:
    """The longest command line `transport` ('ssh' or 'winrm') carries to the host."""
    return MAX_COMMAND_LENGTH[transport]


def fits(statements: Sequence[str], transport: str) -> bool:
    """Whether `statements` go to the host as one script over `transport`; callers
    with many statements (a purge) send them in batches that fit."""
    return command_length(statements) <= max_command_length(transport)


def batch_groups(groups: Sequence[Sequence[str]], transport: str) -> list[list[list[str]]]:
    """Groups of statements, each kept whole and in order, packed into as few scripts as
    fit the transport's command line. UnsafeValue if one group alone does not fit."""
    out: list[list[list[str]]] = []
    for group in groups:
        g = list(group)
        if out and fits([st for done in out[-1] for st in done] + g, transport):
            out[-1].append(g)
            continue
        if not fits(g, transport):
            raise UnsafeValue(
                f"{len(g)} statement(s) make a command line of {command_length(g)} characters, "
                f"over {transport}'s {max_command_length(transport)}"
            )
        out.append([g])
    return out


def batches(statements: Sequence[str], transport: str) -> list[list[str]]:
    """`statements` in order, cut into as few scripts as fit the transport's limit."""
    return [[st for g in b for st in g] for b in batch_groups([[s] for s in statements], transport)]


def decode_command(command: str) -> str:
    """Inverse of encoded_command (used by the lab)."""
    if not command.startswith(_PREFIX):
        raise ValueError("not an amsm PowerShell command line")
    return base64.b64decode(command[len(_PREFIX) :]).decode("utf-16-le")


# -- what powershell.exe writes to a redirected stderr ------------------------------------
# An encoded, non-interactive powershell.exe whose stderr is not a console writes its
# error, warning, verbose and progress records there as CLIXML: a `#< CLIXML` line, then
# one <Objs> document (shape: PowerShell/PowerShell issue #5912; the ConsoleHost writes
# each line of a record's text as an <S S="Error"> string). Strings escape characters
# XML cannot carry, and a '_' that would read as an escape, as `_xHHHH_` (PowerShell's
# serializer, src/System.Management.Automation/engine/serialization.cs).
CLIXML_HEADER = "#< CLIXML"
CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def clixml_unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


@dataclass(frozen=True)
class Stderr:
    """stderr read: the error records' text, and anything that was not CLIXML."""

    errors: str
    other: str

    def text(self) -> str:
        return "\n".join(t for t in (self.errors, self.other) if t)


def parse_stderr_lenient(stderr: str) -> str:
    """parse_stderr's text, or the stream as it came when it does not parse: for an
    error message only, never for a decision."""
    try:
        return parse_stderr(stderr).text()
    except BadOutput:
        return stderr[:500]


def parse_stderr(stderr: str) -> Stderr:
    """The plain text of the error records in a CLIXML stderr (progress, verbose and
    warning records dropped); text that is not CLIXML is kept as it came. BadOutput
    for a CLIXML document that does not parse."""
    text = stderr.lstrip("\ufeff")
    errors: list[str] = []
    other: list[str] = []
    rest = text
    while rest:
        at = rest.find(CLIXML_HEADER)
        if at < 0:
            other.append(rest)
            break
        other.append(rest[:at])
        rest = rest[at + len(CLIXML_HEADER) :].lstrip("\r\n")
        end = rest.find("</Objs>")
        if end < 0:
            raise BadOutput("a CLIXML error stream without its end")
        doc, rest = rest[: end + len("</Objs>")], rest[end + len("</Objs>") :]
        try:
            root = ET.fromstring(doc)
        except ET.ParseError as e:
            raise BadOutput(f"CLIXML error stream that does not parse: {e}") from None
        for el in root:
            if el.tag == f"{{{CLIXML_NS}}}S" and el.get("S", "").lower() == "error":
                errors.append(clixml_unescape(el.text or ""))
    return Stderr(
        "".join(errors).replace("\r\n", "\n").strip(),
        "".join(other).replace("\r\n", "\n").strip(),
    )


# -- services and processes ----------------------------------------------------
def get_services(names: Sequence[str]) -> str:
    """Name is the key name even when asked by display name: match either."""
    return f"Get-Service -Name {qlist(names)} | Select-Object Name,DisplayName,Status | {JSON}"


def find_services(names: Sequence[str]) -> str:
    """Those of `names` the host has (a missing one is a non-terminating error, silenced
    here), with their key and display names: for the site check, which reads what exists."""
    return (
        f"Get-Service -Name {qlist(names)} -ErrorAction SilentlyContinue | "
        f"Select-Object Name,DisplayName,Status,StartType | {JSON}"
    )


def get_dependent_services(name: str) -> str:
    """The services that depend on `name` (stopped before it, see stop_service)."""
    return (
        f"Get-Service -Name {q(name)} -DependentServices | "
        f"Select-Object Name,DisplayName,Status,StartType | {JSON}"
    )


def start_service(name: str) -> str:
    """ServiceController.Start(): asks the service control manager to start the service
    and returns at once (.NET ServiceController.Start; Microsoft Learn's example waits
    with WaitForStatus itself); the caller polls with a deadline. Never Start-Service:
    it waits for as long as the service stays StartPending, without a bound
    (PowerShell's Service.cs DoStartService -> DoWaitForStatus), so a slow service would
    end as the transport's timeout, the host called unreachable. Refused by the host
    (an exception: "Cannot start service X on computer '.'.") unless the service is
    Stopped, and for a disabled one."""
    return f"(Get-Service -Name {q(name)}).Start()"


def stop_service(name: str) -> str:
    """-NoWait: Stop-Service otherwise waits as long as the service takes to stop, forever
    for a stuck one (Microsoft Learn, Stop-Service); the caller polls with a deadline.
    No -Force: with it, ServiceController.Stop() stops each running dependent first and
    waits up to 30 s for each, -NoWait or not, and throws when one is slower (.NET's
    ServiceController.Stop; PowerShell's Service.cs DoStopService). Without it the host
    refuses while a dependent is not Stopped: the caller stops them first."""
    return f"Stop-Service -Name {q(name)} -NoWait"


def get_process(*names: str) -> str:
    """The processes of these names that run, as (Name, Id) objects: one name or several
    in one statement (-Name takes a list; a name without a process is a silenced
    NoProcessFoundForGivenName). A name is the ProcessName, without '.exe'."""
    return (
        f"Get-Process -Name {qlist(names)} -ErrorAction SilentlyContinue | "
        f"Select-Object Name,Id | {JSON}"
    )


def _pid(pid: int) -> str:
    """A process Id as Stop-Process and Wait-Process take it (-Id <Int32[]>): a whole
    number above 0, written as digits, never text from the host."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise UnsafeValue(f"a process Id is a whole number above 0, not {pid!r}")
    return str(pid)


def stop_process(pid: int) -> str:
    """Kill the one process with this Id (read before by get_process). One process per
    statement: Stop-Process's CouldNotStopProcess, terminating under 'Stop', ends its
    statement, so piped from Get-Process -Name it would leave every later process of
    that name running; by Id, a refusal is this process's alone (PowerShell's
    Process.cs, StopProcessCommand; Microsoft Learn, Stop-Process: -Id <Int32[]>).
    -Force: no confirmation for a process of another user. Stop-Process does not wait
    for the process to exit (Process.Kill, TerminateProcess: "asynchronous; it initiates
    termination and returns immediately", Microsoft Learn): wait_process follows.
    The catch prints the error's message as the statement's output
    (about_Try_Catch_Finally), so the script goes on to the wait and the read that
    decide. What reaches it: a real refusal (CouldNotStopProcess, "Access is denied": a
    protected process, another session's), or a process mid-termination (Kill() fails
    on it; a process that has exited with its handles still open is skipped by
    Stop-Process itself, TryHasExited), or one gone since the read (NoProcessFoundForGivenId,
    "Cannot find a process with the process identifier N."): no -ErrorAction
    SilentlyContinue, which would hide a denial too; the read after the wait decides."""
    return f"try {{ Stop-Process -Id {_pid(pid)} -Force }} catch {{ $_.Exception.Message }}"


def wait_process(pids: Sequence[int], seconds: int) -> str:
    """Wait up to `seconds` for every process of these Ids to exit, all in one
    statement: one bound for all (WaitProcessCommand waits once for all its processes),
    below the transport's operation timeout (a killed process cannot exit while its I/O
    is pending: Microsoft Learn, TerminateProcess). By Id, not piped from Get-Process:
    the cmdlet resolves each Id itself (GetProcessById; one already gone is its
    non-terminating NoProcessFoundForGivenId, silenced), where piped processes that
    exited between the two cmdlets make it throw InvalidOperationException before
    waiting for any (it sets EnableRaisingEvents and catches only Win32Exception:
    PowerShell's Process.cs, WaitProcessCommand). A process still running after the
    timeout is the non-terminating ProcessNotTerminated, silenced: get_process read after
    it decides. The catch is for what is left of that window, inside the cmdlet.
    -Timeout is 0..32767 (WaitProcessCommand's ValidateRange)."""
    if isinstance(pids, (str, int)) or not pids:
        raise UnsafeValue(f"Wait-Process takes a list of process Ids, not {pids!r}")
    if not 0 <= seconds <= 32767:
        raise UnsafeValue(f"Wait-Process -Timeout takes 0 to 32767 seconds, not {seconds}")
    ids = ",".join(_pid(pid) for pid in pids)
    return (
        f"try {{ Wait-Process -Id {ids} -Timeout {seconds} "
        "-ErrorAction SilentlyContinue } catch { }"
    )


# -- registry and files ----------------------------------------------------------
# Select-Object -Property takes wildcards (Microsoft Learn, Select-Object: "Wildcards
# are permitted"): a value name holding one would select other values, or none.
_WILDCARDS = "*?[]"


def _value_names(names: Sequence[str]) -> str:
    """Registry value names for Select-Object: a bare word as it is, any other name
    (a space, '_', '.', '(', '-', a leading digit: all legal in a value name) as a
    quoted literal. UnsafeValue for a name with a wildcard character."""
    if not names:
        raise UnsafeValue("an empty list")
    out = []
    for n in names:
        if not isinstance(n, str) or not n or any(c in _WILDCARDS for c in n):
            raise UnsafeValue(f"not a registry value name Select-Object can pick: {n!r}")
        out.append(n if _BARE.fullmatch(n) else q(n))
    return ",".join(out)


def get_registry(path: str, names: Sequence[str]) -> str:
    return f"Get-ItemProperty -LiteralPath {q(path)} | Select-Object {_value_names(names)} | {JSON}"


def set_registry(path: str, name: str, value: str) -> str:
    return f"Set-ItemProperty -LiteralPath {q(path)} -Name {q(name)} -Value {q(value)}"


def copy_file(source: str, destination: str) -> str:
    return f"Copy-Item -LiteralPath {q(source)} -Destination {q(destination)} -Force"


def rename_file(path: str, new_name: str) -> str:
    if "\\" in new_name or "/" in new_name:
        raise UnsafeValue(f"a new name is a file name, not a path: {new_name!r}")
    return f"Rename-Item -LiteralPath {q(path)} -NewName {q(new_name)}"


def test_path(path: str) -> str:
    return f"Test-Path -LiteralPath {q(path)}"


def get_content(path: str) -> str:
    return f"Get-Content -LiteralPath {q(path)} -Raw | {JSON}"


def file_hash(path: str) -> str:
    return f"Get-FileHash -LiteralPath {q(path)} -Algorithm SHA256 | Select-Object Hash | {JSON}"


def list_folders(path: str, pattern: str) -> str:
    """Folders below `path` whose name matches `pattern` (an Aurora master clip is a folder)."""
    return (
        f"Get-ChildItem -LiteralPath {q(path)} -Recurse -Directory -Filter {q(pattern)} | "
        f"Select-Object FullName | {JSON}"
    )


def remove_tree(path: str) -> str:
    """Windows PowerShell 5.1 follows junctions and symbolic links inside `path` and
    deletes their targets' contents (PowerShell/PowerShell#621): never for media."""
    return f"Remove-Item -LiteralPath {q(path)} -Recurse -Force"


# What each entry of a folder listing reports: Attributes (System.IO.FileAttributes,
# a number in 5.1's JSON: ReparsePoint 0x400 marks a junction or symbolic link) and
# LinkType (5.1's types.ps1xml CodeProperty: 'Junction', 'SymbolicLink' or null).
ENTRY_PROPERTIES = ("Name", "Attributes", "Length", "LastWriteTimeUtc", "LinkType")


def list_children(path: str) -> str:
    """The entries directly in `path`, hidden ones too (no -Recurse: nothing below is
    entered, so no reparse point is ever followed; the caller lists a sub-folder only
    after seeing that it is not one). One enumeration, always printed as a JSON array
    (`[]` for an empty folder): given to -InputObject, not piped, the array is one
    object to ConvertTo-Json, so even one entry stays an array in Windows PowerShell
    5.1 (PowerShell/PowerShell#11857; `ConvertTo-Json @('x') -Compress` prints `["x"]`
    in 5.1, Badgerati/Pode#845). So an empty folder is known to be empty, not taken
    from an empty answer, and nothing recorded between two enumerations can make them
    disagree."""
    return (
        f"ConvertTo-Json -InputObject @(Get-ChildItem -LiteralPath {q(path)} -Force | "
        f"Select-Object {_props(ENTRY_PROPERTIES)}) -Compress"
    )


def remove_item(path: str) -> str:
    """Remove one file, or one empty folder: without -Recurse a folder that still has
    children is not removed (in -NonInteractive mode the confirmation fails)."""
    return f"Remove-Item -LiteralPath {q(path)} -Force"


# -- the machine ---------------------------------------------------------------------
# Two statements: $PSVersionTable.PSVersion's major and minor parts, each printed as a
# bare number: PowerShell 2.0 and
# later have the variable (about_Automatic_Variables), and printing a number needs no
# ConvertTo-Json (3.0 and later), so even a host too old for the other statements says
# which PowerShell it runs.
POWERSHELL_VERSION = ("$PSVersionTable.PSVersion.Major", "$PSVersionTable.PSVersion.Minor")


def parse_version_part(text: str) -> int:
    v = text.strip()
    if not v.isascii() or not v.isdigit():
        raise BadOutput(f"expected a version number, got {v[:80]!r}")
    return int(v)


# The WinRM service's settings the worker depends on, read through the WSMan: drive
# (Microsoft Learn, "Installation and configuration for Windows Remote Management":
# winrm/config/Winrs MaxShellsPerUser, default 30; winrm/config/Service
# MaxConcurrentOperationsPerUser, default 1500, AllowUnencrypted, default false;
# winrm/config/Service/Auth Basic, default false). Each is a WSManConfigLeafElement
# whose Value is text.
WSMAN_SETTINGS = {
    "MaxShellsPerUser": r"WSMan:\localhost\Shell\MaxShellsPerUser",
    "MaxConcurrentOperationsPerUser": r"WSMan:\localhost\Service\MaxConcurrentOperationsPerUser",
    "AllowUnencrypted": r"WSMan:\localhost\Service\AllowUnencrypted",
    "Basic": r"WSMan:\localhost\Service\Auth\Basic",
}


def wsman_setting(path: str) -> str:
    return f"Get-Item -LiteralPath {q(path)} | Select-Object Name,Value | {JSON}"


def restart_computer() -> str:
    return "Restart-Computer -Force"


def boot_info() -> str:
    """The boot time and the host's time now, from one instance: their difference is the
    uptime, which a step of the host's clock does not change (Windows moves the boot time
    with the clock: ReactOS ntoskrnl KeSetSystemTime, `KeBootTime += DeltaTime`; PowerShell's
    GetUptimeCommand.cs: the boot moment is now minus the uptime)."""
    return (
        "Get-CimInstance -ClassName Win32_OperatingSystem | "
        f"Select-Object CSName,LastBootUpTime,LocalDateTime | {JSON}"
    )


def os_times() -> str:
    """The boot time and the host's time now, each with its offset from UTC: WMI gives
    Win32_OperatingSystem's times as CIM_DATETIME text, `yyyymmddHHMMSS.mmmmmmsUUU`
    (local time, then the offset in minutes: Microsoft Learn, "CIM_DATETIME"), where
    Get-CimInstance turns them into local DateTimes that 5.1's ConvertTo-Json brings
    back to UTC with ToUniversalTime, which takes a time of the repeated autumn hour
    for standard time (TimeZoneInfo.ConvertTimeToUtc): an hour off. One instance, so
    their difference is the uptime whatever the clock did (see boot_info)."""
    return (
        "Get-WmiObject -Class Win32_OperatingSystem | "
        f"Select-Object CSName,LastBootUpTime,LocalDateTime | {JSON}"
    )


# -- iSCSI (the iSCSI module: Windows 8 / Windows Server 2012 and later) -----------------
# The cmdlets a client switch sends (the logins themselves go through iscsicli); a client
# without them is refused by name. Test-NetConnection (NetTCPIP module) is the portals'
# reachability test.
ISCSI_CMDLETS = (
    "Get-IscsiSession",
    "Get-IscsiTargetPortal",
    "Get-IscsiTarget",
    "New-IscsiTargetPortal",
    "Update-IscsiTargetPortal",
    "Register-IscsiSession",
    "Test-NetConnection",
)
SESSION_PROPERTIES = ("TargetNodeAddress", "IsConnected", "IsPersistent", "SessionIdentifier")


def get_commands(names: Sequence[str]) -> str:
    """Those of `names` the host has: Get-Command of a missing one is a non-terminating
    error, silenced here, so the answer lists exactly the cmdlets present."""
    return (
        f"Get-Command -Name {qlist(names)} -ErrorAction SilentlyContinue | "
        f"Select-Object Name | {JSON}"
    )


def iscsi_sessions() -> str:
    return f"Get-IscsiSession | Select-Object TargetNodeAddress,IsConnected | {JSON}"


def iscsi_session_details() -> str:
    """Each session with whether it is persistent and its identifier (what
    Register-/Unregister-IscsiSession take)."""
    return f"Get-IscsiSession | Select-Object {_props(SESSION_PROPERTIES)} | {JSON}"


def iscsi_targets() -> str:
    """The targets the initiator has discovered through its registered portals
    (MSFT_iSCSITarget: Get-IscsiTarget lists them whether or not logged in to)."""
    return f"Get-IscsiTarget | Select-Object NodeAddress,IsConnected | {JSON}"


def iscsi_portals() -> str:
    return (
        f"Get-IscsiTargetPortal | Select-Object TargetPortalAddress,TargetPortalPortNumber | {JSON}"
    )


def iscsi_add_portal(address: str, port: int) -> str:
    """Register a target portal; the initiator discovers its targets (SendTargets) at
    once and at every boot. It prints the MSFT_iSCSITargetPortal: dropped, so that only
    the marker follows."""
    return (
        f"New-IscsiTargetPortal -TargetPortalAddress {q(address)} "
        f"-TargetPortalPortNumber {int(port)} | Out-Null"
    )


def iscsi_refresh_portal(address: str, port: int) -> str:
    """Discover a registered portal's targets again (RefreshIScsiSendTargetPortal):
    Update-IscsiTarget only refreshes targets already connected."""
    return (
        f"Update-IscsiTargetPortal -TargetPortalAddress {q(address)} "
        f"-TargetPortalPortNumber {int(port)}"
    )


def iscsi_connect(iqn: str, portal: str, port: int = 3260) -> str:
    """Log in to a target discovered through a registered portal, persistently (the
    initiator logs in again at every boot). Connect-IscsiTarget prints the new
    MSFT_iSCSISession as a list of properties: dropped, so that only the marker follows."""
    return (
        f"Connect-IscsiTarget -NodeAddress {q(iqn)} -TargetPortalAddress {q(portal)} "
        f"-TargetPortalPortNumber {int(port)} -IsPersistent $true | Out-Null"
    )


def iscsi_persistent_login(iqn: str, portal: str, port: int = 3260) -> str:
    """Record a persistent login to a discovered target through exactly `portal`,
    without logging in now: `iscsicli PersistentLoginTarget <TargetName> <ReportToPNP>
    <TargetPortalAddress> <TargetPortalSocket> <InitiatorInstance> <Port number>
    <Security Flags> <Login Flags> <Header Digest> <Data Digest> <Max Connections>
    <DefaultTime2Wait> <DefaultTime2Retain> <Username> <Password> <AuthType> <Key>
    <Mapping Count>` (iscsicli's usage text), `T` to report the LUNs to Plug and Play
    (a full session, not an informational one), `*` for the defaults and no mapping (as
    Microsoft's KB 870964 writes it). It is LoginIScsiTarget with IsPersistent TRUE
    (Microsoft's iscsicli.c sample), which "either establishes a single login session
    with a target, or creates a persistent login to a target" that the initiator makes
    "each time the initiator is started, typically at system boot" (Microsoft Learn,
    LoginIScsiTargetW, Remarks). Connect-IscsiTarget -IsPersistent $true would log in
    now as well (review H1). Read through Out-String, as every iscsicli (see
    iscsi_remove_persistent_login); its exit code does not stop the script: the caller
    reads the logins again, and that read decides."""
    any_ = "'*'"
    return (
        f"iscsicli PersistentLoginTarget {q(iqn)} 'T' {q(portal)} {int(port)} "
        + " ".join([any_] * 13)
        + " 0 | Out-String"
    )


def iscsi_register(session_id: str) -> str:
    """Make a connected session persistent."""
    return f"Register-IscsiSession -SessionIdentifier {q(session_id)}"


def iscsi_unregister(session_id: str) -> str:
    """Remove a session's persistent login, so it is not logged in again at boot (the
    only way: Disconnect-IscsiTarget ends the session but leaves the login registered)."""
    return f"Unregister-IscsiSession -SessionIdentifier {q(session_id)}"


# The initiator's persistent logins: WMI class MSiSCSIInitiator_PersistentLoginClass in
# root\wmi (Microsoft Learn, MSIscsiInitiator_PersistentLoginClass: "a persistent logon
# that the operating system initiates automatically when the computer boots up"). It
# lists every login whether or not its session is up; Get-IscsiSession lists sessions
# only, so a login whose portal is down is invisible to the iSCSI cmdlets.
WMI_NAMESPACE = "root\\wmi"
PERSISTENT_LOGIN_PROPERTIES = (
    "TargetName",
    "InitiatorInstance",
    "InitiatorPortNumber",
    "TargetPortal",
)


def iscsi_persistent_logins() -> str:
    """Each persistent login: its target, initiator instance and port, and its portal
    (TargetPortal, an embedded MSiSCSIInitiator_Portal with Address and Port)."""
    return (
        f"Get-CimInstance -Namespace {q(WMI_NAMESPACE)} "
        f"-ClassName MSiSCSIInitiator_PersistentLoginClass | "
        f"Select-Object {_props(PERSISTENT_LOGIN_PROPERTIES)} | {JSON}"
    )


def iscsi_remove_persistent_login(
    initiator: str, target: str, initiator_port: int | None, address: str, socket: int | None
) -> str:
    """Remove one persistent login, whether or not a session is up: `iscsicli
    RemovePersistentTarget <Initiator Name> <TargetName> <Initiator Port Number> <Target
    Portal Address> <Target Portal Socket>` (iscsicli's usage text; it calls
    RemoveIScsiPersistentTarget, Microsoft Learn), each value exactly as the login lists
    it, and `*` for one the login has not: iscsicli passes a NULL initiator,
    ISCSI_ALL_INITIATOR_PORTS and a NULL portal for `*` (Microsoft's iscsicli.c sample,
    RemovePersistentTarget: "Both empty and NULL portal have the same effect"), and
    RemoveIScsiPersistentTarget takes a null portal as every portal (review M3).
    Unregister-IscsiSession cannot: it needs the session's identifier, and a session
    whose portal is down is not listed. iscsicli prints a banner and the outcome, and a
    native command's exit code does not stop the script: the caller reads the logins
    again in the same script, and that read decides. Its output goes through
    `| Out-String`: a native command at the end of a pipeline writes straight to
    powershell.exe's stdout in the console's OEM code page, past
    [Console]::OutputEncoding (PowerShell/PowerShell#14945), so a localized message
    would break the script's UTF-8 answer; piped, PowerShell decodes it first (review M2)."""

    any_ = "'*'"
    port = any_ if initiator_port is None else str(int(initiator_port))
    sock = any_ if socket is None or not address else str(int(socket))
    return (
        f"iscsicli RemovePersistentTarget {q(initiator) if initiator else any_} {q(target)} "
        f"{port} {q(address) if address else any_} {sock} | Out-String"
    )


def iscsi_disconnect(iqn: str) -> str:
    return f"Disconnect-IscsiTarget -NodeAddress {q(iqn)} -Confirm:$false"


def set_content(path: str, lines: Sequence[str]) -> str:
    """Write `lines` as the whole text file (ASCII, CRLF), replacing it."""
    return f"Set-Content -LiteralPath {q(path)} -Value {qlist(lines)} -Encoding ASCII"


def test_port(host: str, port: int) -> str:
    return f"Test-NetConnection -ComputerName {q(host)} -Port {int(port)} -InformationLevel Quiet"


# -- write filters (a client switch's own reads: issue 25, defect 9) -------------------------
# The manager tool each write filter installs in %WINDIR%\System32 (Microsoft Learn:
# uwfmgr.exe for the Unified Write Filter, Windows 10 / IoT Enterprise; fbwfmgr.exe and
# ewfmgr.exe for Windows Embedded's File Based and Enhanced Write Filters): a tool that is
# there says its filter is installed. *Assumed*: Windows lives in C:\Windows.
WRITE_FILTER_TOOLS = {
    "UWF": "C:\\Windows\\System32\\uwfmgr.exe",
    "FBWF": "C:\\Windows\\System32\\fbwfmgr.exe",
    "EWF": "C:\\Windows\\System32\\ewfmgr.exe",
}
# UWF's WMI provider (Microsoft Learn, "UWF_Filter", "UWF_Volume"): readable by any account.
UWF_NAMESPACE = "root\\standardcimv2\\embedded"


# One Test-Path per filter of WRITE_FILTER_TOOLS, in its order.
WRITE_FILTER_PROBES = tuple(test_path(p) for p in WRITE_FILTER_TOOLS.values())


def uwf_filter() -> str:
    """UWF_Filter: CurrentEnabled (this session) and NextEnabled (after the next restart)."""
    return (
        f"Get-CimInstance -Namespace {q(UWF_NAMESPACE)} -ClassName UWF_Filter | "
        f"Select-Object CurrentEnabled,NextEnabled | {JSON}"
    )


def uwf_volumes() -> str:
    """UWF_Volume: one instance per volume and session (CurrentSession true: this one),
    with its DriveLetter and whether UWF protects it."""
    return (
        f"Get-CimInstance -Namespace {q(UWF_NAMESPACE)} -ClassName UWF_Volume | "
        f"Select-Object CurrentSession,DriveLetter,Protected | {JSON}"
    )


def uwf_set(enabled: bool) -> str:
    """Turn UWF on or off from the next restart (UWF_Filter.Enable / Disable, Microsoft
    Learn: "enables/disables UWF on the next restart"; this session is not changed).
    Prints the method's ReturnValue, 0 when done."""
    method = "Enable" if enabled else "Disable"
    return (
        f"Get-CimInstance -Namespace {q(UWF_NAMESPACE)} -ClassName UWF_Filter | "
        f"Invoke-CimMethod -MethodName {method} | Select-Object ReturnValue | {JSON}"
    )


# -- output parsing -------------------------------------------------------------------
SERVICE_STATUS = {1: "Stopped", 2: "StartPending", 3: "StopPending", 4: "Running", 7: "Paused"}
# ServiceStartMode as 5.1's ConvertTo-Json writes it.
START_TYPE = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:  # json.JSONDecodeError
        raise BadOutput(f"not JSON ({e}): {text[:80]!r}") from None


def parse_json_list(text: str) -> list[dict[str, Any]]:
    """ConvertTo-Json prints one object for one item, a list for several, nothing at all
    for none (its EndProcessing writes only when it received objects). `text` is one
    statement's whole output (split_output); anything but objects is BadOutput."""
    if not text.strip():
        return []
    data = _json(text)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and all(isinstance(d, dict) for d in data):
        return data
    raise BadOutput(f"expected JSON objects, got {text[:80]!r}")


def parse_json_array(text: str) -> list[dict[str, Any]]:
    """ConvertTo-Json -InputObject @(...): a JSON array of objects, `[]` for none.
    Anything else, an empty answer too, is BadOutput."""
    data = _json(text) if text.strip() else None
    if isinstance(data, list) and all(isinstance(d, dict) for d in data):
        return data
    raise BadOutput(f"expected a JSON array of objects, got {text[:80]!r}")


def parse_json_object(text: str) -> dict[str, Any]:
    items = parse_json_list(text)
    if len(items) != 1:
        raise BadOutput(f"expected one JSON object, got {len(items)}")
    return items[0]


def parse_json_string(text: str) -> str:
    """Get-Content -Raw | ConvertTo-Json: the file's text as one JSON string."""
    if not text.strip():
        return ""
    data = _json(text)
    if isinstance(data, dict) and "value" in data:  # PowerShell 5.1 wraps with NoteProperties
        data = data["value"]
    if not isinstance(data, str):
        raise BadOutput(f"expected a JSON string, got {text[:80]!r}")
    return data


def parse_bool(text: str) -> bool:
    v = text.strip()
    if v not in ("True", "False"):
        raise BadOutput(f"expected True or False, got {v[:80]!r}")
    return v == "True"


def prop(obj: dict[str, Any], name: str) -> Any:
    """A property Select-Object was asked for (it writes every one, null when absent)."""
    if name not in obj:
        raise BadOutput(f"no property {name!r} in {sorted(obj)}")
    return obj[name]


def parse_service_status(value: Any) -> str:
    """Windows PowerShell 5.1 serialises the status enum as a number; 7 as a name."""
    if isinstance(value, int):
        return SERVICE_STATUS.get(value, f"Unknown({value})")
    return str(value)


_DOTNET_DATE = re.compile(r"^/Date\((-?\d+)\)/$")
_CIM_DATETIME = re.compile(r"^(\d{14})\.(\d{6})([+-])(\d{3})$")


def parse_cim_datetime(value: Any) -> datetime:
    """A CIM_DATETIME `yyyymmddHHMMSS.mmmmmmsUUU` (local time, then its offset from UTC
    in minutes) as the instant it names, in UTC. BadOutput for anything else (an
    interval, or fields left out as '*')."""
    m = _CIM_DATETIME.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise BadOutput(f"not a CIM datetime: {value!r}")
    try:
        local = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    except ValueError:
        raise BadOutput(f"not a CIM datetime: {value!r}") from None
    minutes = int(m.group(4)) * (1 if m.group(3) == "+" else -1)
    zone = timezone(timedelta(minutes=minutes))
    return local.replace(microsecond=int(m.group(2)), tzinfo=zone).astimezone(UTC)


def parse_datetime(value: Any) -> datetime:
    """ConvertTo-Json writes DateTime as /Date(ms)/ in 5.1 and ISO 8601 in 7."""
    if isinstance(value, str):
        m = _DOTNET_DATE.fullmatch(value)
        if m:
            return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise BadOutput(f"not a date: {value!r}") from None
    if isinstance(value, dict) and "value" in value:
        return parse_datetime(value["value"])
    raise BadOutput(f"not a date: {value!r}")
