"""The PowerShell subset a simulated Windows host understands, and how powershell.exe
writes its answer.

The lab accepts exactly the statements that `activities.drivers.powershell` builds
and refuses everything else *before running any of it*: an unknown cmdlet, an
unknown or missing parameter, a pipeline shape the builders never produce, a
double-quoted string, a variable other than `$true`/`$false`, a sub-expression, a
backtick, `&`, a comment... The refusal is a parse error,
`amsm-lab: unsupported PowerShell: <the statement>`, and exit status 1, so a driver
that drifts from the subset fails loudly in tests instead of silently "working".

Values are never evaluated: a single-quoted literal (quote characters ' ‘ ’ ‚ ‛,
doubled to escape) is text, whatever it contains.

Grammar::

    script    = statement { (NEWLINE | ';') statement }
    statement = setting | 'single-quoted' | command { '|' command }
              | "ConvertTo-Json -InputObject @(" command { '|' command } ") -Compress"
    setting   = "$ErrorActionPreference = 'Stop'"
              | "$ProgressPreference = 'SilentlyContinue'" | "$ProgressPreference = 'Continue'"
              | "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8"
    command   = CMDLET { '-Param' [':' value] | value }
    value     = literal { ',' literal }
    literal   = 'single-quoted' | $true | $false | INTEGER | BAREWORD

A script must begin with `$ErrorActionPreference = 'Stop'` (what `script()` writes),
so the first failing statement ends it. What it prints, as powershell.exe does with
redirected output (`ScriptResult.wire`):
- a statement prints its output lines; one that has nothing to say prints nothing
  at all (an empty pipeline into ConvertTo-Json writes nothing: ConvertToJsonCommand
  writes only in EndProcessing, and only when it received objects); a string
  statement prints the string;
- stdout is in the console's OEM code page (cp850 here) unless the script set
  `[Console]::OutputEncoding` to UTF-8; lines end with CRLF;
- a failing statement's error goes to stderr as CLIXML (an `<S S="Error">` per line
  of the error as the console shows it), and so do progress records unless
  `$ProgressPreference = 'SilentlyContinue'`;
- the exit status is 1 after a terminating error, else 1 when the last statement's
  `$?` is false (an error silenced with -ErrorAction SilentlyContinue still makes it
  false), else 0 (about_PowerShell_exe, -Command: "the exit code is determined by
  status of the last command").
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from lab.winrm_config import service_config

QUOTES = "'\u2018\u2019\u201a\u201b"
UNSUPPORTED = "amsm-lab: unsupported PowerShell: "
PREAMBLE_VARIABLE = "ErrorActionPreference"
# The settings a script may make, by variable (lower case): the values understood.
SETTINGS = {
    "erroractionpreference": ("ErrorActionPreference", ("Stop",)),
    "progresspreference": ("ProgressPreference", ("SilentlyContinue", "Continue")),
}
# [Console]::OutputEncoding = [System.Text.Encoding]::UTF8, in the spellings PowerShell
# resolves to the same type and property (type names without System., any case).
_CONSOLE_TYPES = ("console", "system.console")
_ENCODING_TYPES = ("text.encoding", "system.text.encoding")
# The console's OEM code page of a Western European Windows (cp437 in the US).
OEM_CODEPAGE = "cp850"

# Windows PowerShell 5.1 serialises ServiceControllerStatus as its number.
SERVICE_STATUS_NUMBER = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4}
# ... and ServiceStartMode (StartType) too.
START_TYPE_NUMBER = {"Automatic": 2, "Manual": 3, "Disabled": 4}

# What Get-ChildItem's items (FileInfo/DirectoryInfo) offer Select-Object in the lab;
# LinkType is the CodeProperty that Windows PowerShell 5.1's types.ps1xml adds to
# FileSystemInfo ('Junction', 'SymbolicLink', 'HardLink' or null).
CHILD_ITEM_PROPERTIES = ("FullName", "Name", "Attributes", "Length", "LastWriteTimeUtc", "LinkType")
# System.IO.FileAttributes; 5.1's ConvertTo-Json writes an enum as its number.
ATTR_DIRECTORY, ATTR_ARCHIVE, ATTR_REPARSE_POINT = 0x10, 0x20, 0x400
# Windows PowerShell 5.1 in -NonInteractive mode cannot ask Remove-Item's question
# "The item at ... has children and the Recurse parameter was not specified".
NON_INTERACTIVE = (
    "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available."
)

# Hosts that see their own side's V: without an iSCSI initiator of their own.
SIDE_VOLUME_KINDS = frozenset({"smartbins", "nas-cifs", "nas-ftp", "bridge"})
ISCSI_PORT = 3260
SESSION_PROPERTIES = ("TargetNodeAddress", "IsConnected", "IsPersistent", "SessionIdentifier")
# The iSCSI module (learn.microsoft.com/powershell/module/iscsi) came with Windows 8 and
# Windows Server 2012 (its first reference is the wps.620 docset: NT 6.2). A host
# document's `windows` (NT version, default "10.0") older than that has none of them.
ISCSI_MODULE_SINCE = (6, 2)
ISCSI_MODULE = frozenset(
    {
        "Get-IscsiSession", "Get-IscsiTarget", "Get-IscsiTargetPortal", "New-IscsiTargetPortal",
        "Update-IscsiTargetPortal", "Connect-IscsiTarget", "Disconnect-IscsiTarget",
        "Register-IscsiSession", "Unregister-IscsiSession", "Get-IscsiConnection",
    }
)  # fmt: skip
# Get-IscsiConnection: one MSFT_iSCSIConnection per connection of a session, with the
# portal it goes to (TargetAddress, TargetPortNumber) and the initiator's own address and
# port (learn.microsoft.com/powershell/module/iscsi/get-iscsiconnection).
CONNECTION_PROPERTIES = (
    "ConnectionIdentifier", "InitiatorAddress", "InitiatorPortNumber", "TargetAddress",
    "TargetPortNumber",
)  # fmt: skip


# The Microsoft software initiator as the iSCSI WMI classes name it (an HBA's instance
# name; the software initiator is the first instance of its iSCSIPrt miniport), and the
# initiator port "all ports" (ISCSI_ALL_INITIATOR_PORTS, (ULONG)-1; Microsoft Learn,
# RemoveIScsiPersistentTargetW) that a login made through the default initiator keeps.
SOFTWARE_INITIATOR = "ROOT\\ISCSIPRT\\0000_0"
ALL_INITIATOR_PORTS = 4294967295
# iscsicli.exe, the iSCSI initiator's command line (in System32 since Windows Vista /
# Server 2008): the one verb the drivers run, RemovePersistentTarget <Initiator Name>
# <TargetName> <Initiator Port Number> <Target Portal Address> <Target Portal Socket>
# (its own usage text), which calls RemoveIScsiPersistentTarget and so reaches a
# persistent login whether or not a session is up (the iSCSI cmdlets reach one only
# through a session: Unregister-IscsiSession -SessionIdentifier).
ISCSICLI = "iscsicli"
ISCSICLI_VERBS = {
    "removepersistenttarget": ("RemovePersistentTarget", 5),
    # PersistentLoginTarget <TargetName> <ReportToPNP> <TargetPortalAddress>
    # <TargetPortalSocket> <InitiatorInstance> <Port number> <Security Flags> <Login Flags>
    # <Header Digest> <Data Digest> <Max Connections> <DefaultTime2Wait>
    # <DefaultTime2Retain> <Username> <Password> <AuthType> <Key> <Mapping Count> (its
    # usage text; Microsoft's iscsicli.c sample: 18 arguments with no mapping).
    "persistentlogintarget": ("PersistentLoginTarget", 18),
}
# iscsicli's `*` for an argument (Microsoft's iscsicli.c sample, RemovePersistentTarget):
# a NULL initiator, ISCSI_ALL_INITIATOR_PORTS, a NULL portal ("Both empty and NULL portal
# have the same effect"); RemoveIScsiPersistentTarget takes a null portal as every portal.
ISCSICLI_ANY = "*"
ISCSICLI_BANNER = "Microsoft iSCSI Initiator Version 10.0 Build 17763"

# The Unified Write Filter's WMI provider (Microsoft Learn, "UWF WMI provider reference":
# namespace root\standardcimv2\embedded; UWF_Filter {Id, CurrentEnabled, NextEnabled},
# UWF_Volume {CurrentSession, DriveLetter, VolumeName, BindByDriveLetter, CommitPending,
# Protected}: one instance per volume for the current session and one for the next).
UWF_NAMESPACE = "root\\standardcimv2\\embedded"
UWF_CLASSES = ("UWF_Filter", "UWF_Volume")
# Each write filter's manager tool, in %WINDIR%\System32 where the filter is installed
# (Microsoft Learn: uwfmgr.exe for UWF; fbwfmgr.exe and ewfmgr.exe for the Windows Embedded
# File Based and Enhanced Write Filters). The drivers' probe: activities/drivers/powershell.py.
WRITE_FILTER_TOOLS = {
    "UWF": "C:\\Windows\\System32\\uwfmgr.exe",
    "FBWF": "C:\\Windows\\System32\\fbwfmgr.exe",
    "EWF": "C:\\Windows\\System32\\ewfmgr.exe",
}
VOLUME_GUID = "3c7f2e4a-0000-0000-0000-100000000000"
UWF_PROPERTIES = (
    "Id", "CurrentEnabled", "NextEnabled", "CurrentSession", "DriveLetter", "VolumeName",
    "BindByDriveLetter", "CommitPending", "Protected",
)  # fmt: skip
# The CIM classes the lab answers, with the properties Select-Object may pick: the
# operating system (root/cimv2, the default namespace) and the iSCSI initiator's
# persistent logins (root/wmi; Microsoft Learn, MSIscsiInitiator_PersistentLoginClass:
# "a persistent logon that the operating system initiates automatically when the
# computer boots up"), which it lists whether or not a session is up; UWF's classes (above).
CIM_CLASSES = {
    "Win32_OperatingSystem": ("CSName", "LastBootUpTime", "LocalDateTime"),
    "MSiSCSIInitiator_PersistentLoginClass": (
        "TargetName",
        "InitiatorInstance",
        "InitiatorPortNumber",
        "TargetPortal",
    ),
    "UWF_Filter": ("Id", "CurrentEnabled", "NextEnabled"),
    "UWF_Volume": UWF_PROPERTIES[3:],
    "Win32_TimeZone": ("Caption", "Bias", "StandardName", "DaylightName"),
}
CIM_NAMESPACES = {
    "Win32_OperatingSystem": None,
    "MSiSCSIInitiator_PersistentLoginClass": "root\\wmi",
    "UWF_Filter": UWF_NAMESPACE,
    "UWF_Volume": UWF_NAMESPACE,
    "Win32_TimeZone": None,
}
# Win32_TimeZone of the zones lab hosts keep (`time_zone`, an IANA name; UTC when
# absent), with Windows' own names for them (Microsoft Learn, "Default Time Zones";
# Win32_TimeZone: Bias is the standard offset from UTC in minutes).
WINDOWS_ZONES = {
    "UTC": ("(UTC) Coordinated Universal Time", 0, "Coordinated Universal Time",
            "Coordinated Universal Time"),
    "Europe/London": ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", 0, "GMT Standard Time",
                      "GMT Daylight Time"),
    "Europe/Berlin": ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", 60,
                      "W. Europe Standard Time", "W. Europe Daylight Time"),
    "America/New_York": ("(UTC-05:00) Eastern Time (US & Canada)", -300,
                         "Eastern Standard Time", "Eastern Daylight Time"),
}  # fmt: skip
# Cmdlets of the subset that came after PowerShell 2.0, by the version that brought them
# (Microsoft Learn: ConvertTo-Json "was introduced in PowerShell 3.0"; the CimCmdlets
# module, Get-CimInstance, came with 3.0; Get-FileHash with 4.0). A host whose
# `powershell` is older has no such command.
CMDLET_SINCE = {"ConvertTo-Json": (3, 0), "Get-CimInstance": (3, 0), "Get-FileHash": (4, 0)}


def not_recognized(name: str) -> str:
    """about_Command_Precedence: a name that is no command is a CommandNotFoundException,
    which ends the script under 'Stop'."""
    return (
        f"The term '{name}' is not recognized as the name of a cmdlet, function, "
        "script file, or operable program. Check the spelling of the name, or if a "
        "path was included, verify that the path is correct and try again."
    )


class Unsupported(Exception):
    """The script leaves the subset; none of it runs."""

    def __init__(self, statement: str, why: str) -> None:
        self.statement = statement
        self.why = why
        super().__init__(f"{UNSUPPORTED}{statement}")

    def stderr(self) -> str:
        return f"{UNSUPPORTED}{self.statement}\namsm-lab: ({self.why})\n"


class CmdletError(Exception):
    """A statement failed the way the real cmdlet fails (a terminating error)."""

    def __init__(self, cmdlet: str, message: str) -> None:
        self.cmdlet = cmdlet
        self.message = message
        super().__init__(f"{cmdlet} : {message}")

    def display(self, statement: Statement) -> str:
        """The error as Windows PowerShell 5.1's console shows it: the message, where it
        happened, the statement underlined (the lab's statements start a line)."""
        first = statement.text.split("|", 1)[0].rstrip()
        return (
            f"{self}\nAt line:{statement.line} char:1\n+ {statement.text}\n+ {'~' * len(first)}\n"
        )


class MethodError(CmdletError):
    """A .NET method called from a statement threw: PowerShell shows the
    MethodInvocationException's message alone, without a cmdlet name."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


# What a WMI query answers while its provider cannot be loaded (WMI's error text for
# WBEM_E_PROVIDER_LOAD_FAILURE, 0x80041013: Microsoft Learn, WbemErrorEnum / WMI Error
# Constants), as early in a boot while Winmgmt and the iSCSI initiator service start.
# The iSCSI cmdlets are CIM classes (MSFT_iSCSISession, ...) served through WMI.
PROVIDER_LOAD_FAILURE = "Provider load failure "
WMI_CMDLETS = frozenset({"Get-CimInstance", "Get-WmiObject"}) | ISCSI_MODULE


# -- tokens ----------------------------------------------------------------------------
TokenKind = Literal[
    "word",
    "string",
    "param",
    "variable",
    "int",
    "comma",
    "pipe",
    "assign",
    "static",
    "psversion",
    "open",
    "close",
    "method",
]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    value: str
    # A parameter written `-Name:value` binds the next token as its value.
    colon: bool = False


@dataclass(frozen=True)
class RawStatement:
    text: str
    tokens: tuple[Token, ...]
    line: int = 1


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PARAM = re.compile(r"-([A-Za-z][A-Za-z0-9]*)(:?)")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# The one automatic variable read: a part of $PSVersionTable.PSVersion, printed alone.
_PSVERSION = re.compile(r"\$PSVersionTable\.PSVersion\.(Major|Minor)", re.I)
_INT = re.compile(r"[0-9]+")
# A static member of a type: [Console]::OutputEncoding
_STATIC = re.compile(r"\[([A-Za-z][A-Za-z.]*)\]::([A-Za-z][A-Za-z0-9]*)")
_SPACE = " \t\r"
_SEPARATORS = "\n;"
# What may follow a word, number, string or variable without a space.
_DELIMITERS = _SPACE + _SEPARATORS + "|,)"


def _statement_text(src: str, start: int, at: int) -> str:
    """The source of the statement that holds position `at`, for an error message."""
    end = len(src)
    for sep in _SEPARATORS:
        i = src.find(sep, at)
        if i != -1:
            end = min(end, i)
    return src[start:end].strip()


# `(Get-Service -Name 'X').Start()`: ServiceController.Start(), which asks the service
# control manager to start the service and returns without waiting for it to run (.NET,
# ServiceController.Start: StartService; Microsoft Learn's example waits itself with
# WaitForStatus). The lab runs it as the pseudo-cmdlet SERVICE_START.
START_METHOD_CALL = ").Start()"
SERVICE_START = "ServiceController.Start"


def tokenize(src: str) -> list[RawStatement]:
    """Split a script into statements of tokens; raise Unsupported on anything else."""
    statements: list[RawStatement] = []
    tokens: list[Token] = []
    start = 0
    i = 0
    n = len(src)
    line = 1

    def fail(why: str) -> Unsupported:
        return Unsupported(_statement_text(src, start, i), why)

    def delimited(j: int, extra: str = "") -> bool:
        return j >= n or src[j] in _DELIMITERS + extra

    while i < n:
        c = src[i]
        if c in _SPACE:
            i += 1
        elif c in _SEPARATORS:
            text = src[start:i].strip()
            if tokens:
                statements.append(RawStatement(text, tuple(tokens), line))
            tokens = []
            line += c == "\n"
            i += 1
            start = i
        elif c in QUOTES:
            out: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise fail("unterminated single-quoted string")
                if src[j] in QUOTES:
                    if j + 1 < n and src[j + 1] in QUOTES:
                        # PowerShell keeps the second quote of a doubled pair.
                        out.append(src[j + 1])
                        j += 2
                        continue
                    j += 1
                    break
                out.append(src[j])
                j += 1
            if not delimited(j):
                raise fail("a quoted string must be followed by a space, ',' or '|'")
            tokens.append(Token("string", "".join(out)))
            i = j
        elif c == "[":
            m = _STATIC.match(src, i)
            if not m or not delimited(m.end(), "="):
                raise fail("only [Console]::OutputEncoding and [System.Text.Encoding]::UTF8")
            tokens.append(Token("static", f"{m.group(1)}::{m.group(2)}"))
            i = m.end()
        elif c == "|":
            tokens.append(Token("pipe", c))
            i += 1
        elif c == "@" and src.startswith("@(", i):
            tokens.append(Token("open", "@("))
            i += 2
        elif c == "(" and not tokens:
            # `(Get-Service -Name 'X').Start()`: the one method call the builders write.
            tokens.append(Token("open", "("))
            i += 1
        elif src.startswith(START_METHOD_CALL, i):
            if not delimited(i + len(START_METHOD_CALL)):
                raise fail("unexpected character after .Start()")
            tokens.append(Token("method", "Start"))
            i += len(START_METHOD_CALL)
        elif c == ")":
            if not delimited(i + 1):
                raise fail("unexpected character after ')'")
            tokens.append(Token("close", c))
            i += 1
        elif c == ",":
            tokens.append(Token("comma", c))
            i += 1
        elif c == "=":
            tokens.append(Token("assign", c))
            i += 1
        elif c == "$" and (v := _PSVERSION.match(src, i)) is not None and delimited(v.end()):
            tokens.append(Token("psversion", v.group(1).capitalize()))
            i = v.end()
        elif c == "$":
            m = _VARIABLE.match(src, i)
            if not m or not delimited(m.end(), "="):
                raise fail("only $true, $false and $ErrorActionPreference are understood")
            tokens.append(Token("variable", m.group(1)))
            i = m.end()
        elif c == "-" and i + 1 < n and src[i + 1].isascii() and src[i + 1].isalpha():
            m = _PARAM.match(src, i)
            assert m is not None
            colon = m.group(2) == ":"
            if colon:
                if m.end() >= n or src[m.end()] in _DELIMITERS:
                    raise fail("-Param: must be followed directly by its value")
            elif not delimited(m.end()):
                raise fail(f"unexpected character after -{m.group(1)}")
            tokens.append(Token("param", m.group(1), colon=colon))
            i = m.end()
        elif c.isascii() and c.isdigit():
            m = _INT.match(src, i)
            assert m is not None
            if not delimited(m.end()):
                raise fail("a number must be followed by a space, ',' or '|'")
            tokens.append(Token("int", m.group(0)))
            i = m.end()
        elif c.isascii() and (c.isalpha() or c == "_"):
            m = _WORD.match(src, i)
            assert m is not None
            if not delimited(m.end()):
                raise fail(f"unexpected character after {m.group(0)!r}")
            tokens.append(Token("word", m.group(0)))
            i = m.end()
        else:
            raise fail(f"character {c!r} outside single quotes")
    if tokens:
        statements.append(RawStatement(src[start:].strip(), tuple(tokens), line))
    return statements


# -- values and parameters ---------------------------------------------------------------
LiteralKind = Literal["string", "word", "int", "bool"]


@dataclass(frozen=True)
class Lit:
    kind: LiteralKind
    value: str | int | bool


Value = Lit | tuple[Lit, ...]

ParamKind = Literal["text", "texts", "choice", "names", "int", "bool", "switch"]


@dataclass(frozen=True)
class Param:
    """How one parameter binds: its kind, allowed choices, a switch's required value."""

    kind: ParamKind
    choices: tuple[str, ...] = ()
    # A switch the builders always write with this value (`-Confirm:$false`).
    switch_value: bool = True


@dataclass(frozen=True)
class CmdletSpec:
    name: str
    params: dict[str, Param]
    positional: tuple[str, ...] = ()
    # Properties Select-Object may pick from this cmdlet's output; None: any name.
    properties: tuple[str, ...] | None = ()
    # The parameter sets the builders write (each exactly); None: every parameter.
    sets: tuple[frozenset[str], ...] | None = None


_TEXT = Param("text")


def _spec(
    name: str,
    params: dict[str, Param],
    positional: tuple[str, ...] = (),
    properties: tuple[str, ...] | None = (),
    sets: tuple[tuple[str, ...], ...] | None = None,
) -> CmdletSpec:
    return CmdletSpec(
        name, params, positional, properties, tuple(frozenset(x) for x in sets) if sets else None
    )


# Every parameter listed is required: the builders always write all of them, and a
# statement without one (Stop-Service without -Force, say) is not in the subset.
CMDLETS: dict[str, CmdletSpec] = {
    s.name.lower(): s
    for s in (
        _spec(
            "Get-Service",
            {
                "Name": Param("texts"),
                "DependentServices": Param("switch"),
                "ErrorAction": Param("choice", ("SilentlyContinue",)),
            },
            properties=("Name", "DisplayName", "Status", "StartType"),
            sets=(("Name",), ("Name", "DependentServices"), ("Name", "ErrorAction")),
        ),
        _spec("Start-Service", {"Name": _TEXT}),
        # Always -NoWait: without it Stop-Service waits as long as the service takes,
        # forever for one stuck in StopPending (Microsoft Learn, Stop-Service -NoWait).
        # With or without -Force (see Interpreter._stop_service).
        _spec(
            "Stop-Service",
            {"Name": _TEXT, "Force": Param("switch"), "NoWait": Param("switch")},
            sets=(("Name", "Force", "NoWait"), ("Name", "NoWait")),
        ),
        _spec(
            "Get-Process",
            {"Name": _TEXT, "ErrorAction": Param("choice", ("SilentlyContinue",))},
            properties=("Name", "Id"),
        ),
        _spec(
            "Stop-Process",
            {
                "Name": _TEXT,
                "Force": Param("switch"),
                "ErrorAction": Param("choice", ("SilentlyContinue",)),
            },
        ),
        _spec("Get-ItemProperty", {"LiteralPath": _TEXT}, properties=None),
        # Only on the WSMan: drive (the service's settings: WSManConfigLeafElement).
        _spec("Get-Item", {"LiteralPath": _TEXT}, properties=("Name", "Value", "Type")),
        _spec("Set-ItemProperty", {"LiteralPath": _TEXT, "Name": _TEXT, "Value": _TEXT}),
        _spec("Copy-Item", {"LiteralPath": _TEXT, "Destination": _TEXT, "Force": Param("switch")}),
        _spec("Rename-Item", {"LiteralPath": _TEXT, "NewName": _TEXT}),
        _spec("Test-Path", {"LiteralPath": _TEXT}),
        _spec("Get-Content", {"LiteralPath": _TEXT, "Raw": Param("switch")}),
        _spec(
            "Get-FileHash",
            {"LiteralPath": _TEXT, "Algorithm": Param("choice", ("SHA256",))},
            properties=("Hash", "Algorithm", "Path"),
        ),
        _spec(
            "Get-ChildItem",
            {
                "LiteralPath": _TEXT,
                "Recurse": Param("switch"),
                "Directory": Param("switch"),
                "Filter": _TEXT,
                "Force": Param("switch"),
            },
            properties=CHILD_ITEM_PROPERTIES,
            sets=(("LiteralPath", "Recurse", "Directory", "Filter"), ("LiteralPath", "Force")),
        ),
        _spec("Measure-Object", {}, properties=("Count",)),
        _spec(
            "Remove-Item",
            {"LiteralPath": _TEXT, "Recurse": Param("switch"), "Force": Param("switch")},
            sets=(("LiteralPath", "Recurse", "Force"), ("LiteralPath", "Force")),
        ),
        _spec("Restart-Computer", {"Force": Param("switch")}),
        _spec(
            "Get-CimInstance",
            {
                "Namespace": Param("choice", ("root\\wmi", UWF_NAMESPACE)),
                "ClassName": Param("choice", tuple(CIM_CLASSES)),
            },
            properties=tuple(dict.fromkeys(p for props in CIM_CLASSES.values() for p in props)),
            sets=(("ClassName",), ("Namespace", "ClassName")),
        ),
        _spec(
            "Get-WmiObject",
            {"Class": Param("choice", ("Win32_OperatingSystem",))},
            properties=("CSName", "LastBootUpTime", "LocalDateTime"),
        ),
        _spec(
            "Get-Command",
            {"Name": Param("texts"), "ErrorAction": Param("choice", ("SilentlyContinue",))},
            properties=("Name",),
        ),
        # Only on UWF_Filter, piped from Get-CimInstance (its -InputObject), and only the
        # two methods that take effect at the next boot (Microsoft Learn, UWF_Filter.Enable,
        # UWF_Filter.Disable); prints a CimMethodResult whose ReturnValue is the HRESULT.
        _spec(
            "Invoke-CimMethod",
            {"MethodName": Param("choice", ("Enable", "Disable"))},
            properties=("ReturnValue",),
        ),
        _spec("Get-IscsiSession", {}, properties=SESSION_PROPERTIES),
        _spec("Get-IscsiTarget", {}, properties=("NodeAddress", "IsConnected")),
        _spec("Get-IscsiConnection", {}, properties=CONNECTION_PROPERTIES),
        _spec(
            "Get-IscsiTargetPortal",
            {},
            properties=("TargetPortalAddress", "TargetPortalPortNumber"),
        ),
        _spec(
            "New-IscsiTargetPortal",
            {"TargetPortalAddress": _TEXT, "TargetPortalPortNumber": Param("int")},
        ),
        _spec(
            "Update-IscsiTargetPortal",
            {"TargetPortalAddress": _TEXT, "TargetPortalPortNumber": Param("int")},
        ),
        _spec(
            "Disconnect-IscsiTarget",
            {"NodeAddress": _TEXT, "Confirm": Param("switch", switch_value=False)},
        ),
        _spec(
            "Connect-IscsiTarget",
            {
                "NodeAddress": _TEXT,
                "TargetPortalAddress": _TEXT,
                "TargetPortalPortNumber": Param("int"),
                "IsPersistent": Param("bool"),
            },
        ),
        _spec("Register-IscsiSession", {"SessionIdentifier": _TEXT}),
        _spec("Unregister-IscsiSession", {"SessionIdentifier": _TEXT}),
        _spec(
            "Set-Content",
            {
                "LiteralPath": _TEXT,
                "Value": Param("texts"),
                "Encoding": Param("choice", ("ASCII",)),
            },
        ),
        _spec("Out-Null", {}),
        _spec("Out-String", {}),
        _spec(
            "Test-NetConnection",
            {
                "ComputerName": _TEXT,
                "Port": Param("int"),
                "InformationLevel": Param("choice", ("Quiet",)),
            },
        ),
        _spec("Select-Object", {"Property": Param("names")}, positional=("Property",)),
        _spec("ConvertTo-Json", {"Compress": Param("switch")}),
    )
}

CMDLETS_BY_NAME = tuple(s.name for s in CMDLETS.values())
_SELECT_TO_JSON = ("Select-Object", "ConvertTo-Json")
# The pipelines the builders write, by their first cmdlet (one shape, or several).
PIPELINES: dict[str, tuple[str, ...] | tuple[tuple[str, ...], ...]] = {
    "Get-Service": _SELECT_TO_JSON,
    "Get-Process": _SELECT_TO_JSON,
    "Get-ItemProperty": _SELECT_TO_JSON,
    "Get-Item": _SELECT_TO_JSON,
    "Get-IscsiTarget": _SELECT_TO_JSON,
    "Get-FileHash": _SELECT_TO_JSON,
    "Get-CimInstance": (_SELECT_TO_JSON, ("Invoke-CimMethod", *_SELECT_TO_JSON)),
    "Get-WmiObject": _SELECT_TO_JSON,
    "Get-IscsiSession": _SELECT_TO_JSON,
    "Get-IscsiConnection": _SELECT_TO_JSON,
    "Get-IscsiTargetPortal": _SELECT_TO_JSON,
    "Get-Command": _SELECT_TO_JSON,
    # New-IscsiTargetPortal and Connect-IscsiTarget print the object they made (an
    # MSFT_iSCSITargetPortal, an MSFT_iSCSISession); the lab takes Connect-IscsiTarget
    # alone too, and prints the session as the console's list view does.
    "New-IscsiTargetPortal": ("Out-Null",),
    "Connect-IscsiTarget": ((), ("Out-Null",)),
    "Get-ChildItem": (_SELECT_TO_JSON, ("Measure-Object", *_SELECT_TO_JSON)),
    "Get-Content": ("ConvertTo-Json",),
    **{
        name: ()
        for name in (
            "Start-Service",
            "Stop-Service",
            "Stop-Process",
            "Set-ItemProperty",
            "Copy-Item",
            "Rename-Item",
            "Test-Path",
            "Remove-Item",
            "Restart-Computer",
            "Disconnect-IscsiTarget",
            "Update-IscsiTargetPortal",
            "Register-IscsiSession",
            "Unregister-IscsiSession",
            "Set-Content",
            "Test-NetConnection",
        )
    },
    # A native command at the end of a pipeline writes straight to powershell.exe's
    # stdout in the console's OEM code page, past [Console]::OutputEncoding
    # (PowerShell/PowerShell#14945): on a localized Windows its text is not the UTF-8
    # the rest of the answer is. The lab refuses it bare, and takes it piped into
    # Out-String, which decodes it as PowerShell text first.
    ISCSICLI: ("Out-String",),
}

_PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_CMDLET_NAME = re.compile(r"^[A-Za-z]+-[A-Za-z]+$")


@dataclass(frozen=True)
class Command:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Statement:
    text: str
    # None for a setting or a string statement.
    commands: tuple[Command, ...] | None
    # A setting: (variable, value), e.g. ("ErrorActionPreference", "Stop"),
    # ("OutputEncoding", "UTF8").
    setting: tuple[str, str] | None = None
    # A string statement: the string it prints.
    output: str | None = None
    line: int = 1
    # A part of $PSVersionTable.PSVersion ('Major' or 'Minor'): the number it prints.
    psversion: str | None = None
    # `ConvertTo-Json -InputObject @(pipeline) -Compress`: the pipeline's objects as
    # one JSON array, `[]` for none (commands ends with that ConvertTo-Json).
    array: bool = False


def _literal(tok: Token, text: str) -> Lit:
    if tok.kind == "string":
        return Lit("string", tok.value)
    if tok.kind == "word":
        return Lit("word", tok.value)
    if tok.kind == "int":
        return Lit("int", int(tok.value))
    if tok.kind == "variable" and tok.value.lower() in ("true", "false"):
        return Lit("bool", tok.value.lower() == "true")
    raise Unsupported(text, f"unexpected {tok.kind} {tok.value!r}")


def _value(tokens: tuple[Token, ...], i: int, text: str) -> tuple[Value, int]:
    """A literal or a comma-separated list of literals starting at tokens[i]."""
    items = [_literal(tokens[i], text)]
    i += 1
    while i < len(tokens) and tokens[i].kind == "comma":
        if i + 1 >= len(tokens):
            raise Unsupported(text, "a list ends with ','")
        items.append(_literal(tokens[i + 1], text))
        i += 2
    return (items[0] if len(items) == 1 else tuple(items)), i


def _bind_one(spec: CmdletSpec, pname: str, p: Param, v: Value | None, text: str) -> Any:
    where = f"{spec.name} -{pname}"
    if p.kind == "switch":
        if v is None:
            given = True
        elif isinstance(v, Lit) and v.kind == "bool":
            given = bool(v.value)
        else:
            raise Unsupported(text, f"{where} takes no value other than $true/$false")
        if given != p.switch_value:
            want = "" if p.switch_value else ":$false"
            raise Unsupported(text, f"{where} is only understood as -{pname}{want}")
        return given
    if v is None:
        raise Unsupported(text, f"{where} needs a value")
    items = v if isinstance(v, tuple) else (v,)
    if p.kind == "texts" or (p.kind == "text" and len(items) == 1):
        if any(item.kind != "string" for item in items):
            raise Unsupported(text, f"{where} takes single-quoted text")
        values = [str(item.value) for item in items]
        return values if p.kind == "texts" else values[0]
    if p.kind == "names":
        # A bare name, or a quoted one (a registry value's name may hold a space, '.',
        # '(' ...). Select-Object takes wildcards in -Property (Microsoft Learn,
        # Select-Object); the lab does not expand them, so it refuses them.
        names = [str(item.value) for item in items]
        for item, n in zip(items, names, strict=True):
            bare = item.kind == "word" and _PROPERTY_NAME.fullmatch(n)
            quoted = item.kind == "string" and n and not any(c in "*?[]" for c in n)
            if not (bare or quoted):
                raise Unsupported(text, f"{where} takes property names without wildcards")
        return names
    if len(items) != 1:
        raise Unsupported(text, f"{where} takes one value")
    item = items[0]
    if p.kind == "choice" and item.kind in ("word", "string"):
        for choice in p.choices:
            if str(item.value).lower() == choice.lower():
                return choice
        raise Unsupported(text, f"{where} is only understood as {' or '.join(p.choices)}")
    if p.kind == "int" and item.kind == "int":
        return item.value
    if p.kind == "bool" and item.kind == "bool":
        return item.value
    raise Unsupported(text, f"{where} does not take {item.kind} {item.value!r}")


def _command(tokens: tuple[Token, ...], text: str) -> Command:
    if not tokens:
        raise Unsupported(text, "an empty pipeline element")
    head = tokens[0]
    if head.kind == "word" and head.value.lower() == ISCSICLI:
        return _iscsicli(tokens, text)
    if head.kind != "word" or not _CMDLET_NAME.fullmatch(head.value):
        raise Unsupported(text, f"{head.value!r} is not a cmdlet name")
    spec = CMDLETS.get(head.value.lower())
    if spec is None:
        raise Unsupported(text, f"unknown cmdlet {head.value}")
    by_lower = {name.lower(): name for name in spec.params}
    bound: dict[str, Any] = {}
    positional = list(spec.positional)
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        value: Value | None
        if tok.kind == "param":
            pname = by_lower.get(tok.value.lower())
            if pname is None:
                raise Unsupported(text, f"unknown parameter -{tok.value} for {spec.name}")
            p = spec.params[pname]
            i += 1
            if tok.colon:
                value, i = _value(tokens, i, text)
            elif p.kind != "switch" and i < len(tokens) and tokens[i].kind != "param":
                value, i = _value(tokens, i, text)
            else:
                value = None
        else:
            if not positional:
                raise Unsupported(text, f"unexpected value {tok.value!r} for {spec.name}")
            pname = positional.pop(0)
            p = spec.params[pname]
            value, i = _value(tokens, i, text)
        if pname in bound:
            raise Unsupported(text, f"-{pname} given twice")
        if pname in positional:
            positional.remove(pname)
        bound[pname] = _bind_one(spec, pname, p, value, text)
    if spec.sets is not None:
        if frozenset(bound) not in spec.sets:
            shapes = " or ".join(" ".join(f"-{n}" for n in sorted(x)) for x in spec.sets)
            raise Unsupported(text, f"{spec.name} is only understood with {shapes}")
        return Command(spec.name, bound)
    missing = [f"-{name}" for name in spec.params if name not in bound]
    if missing:
        raise Unsupported(text, f"{spec.name} without {', '.join(missing)}")
    return Command(spec.name, bound)


def _iscsicli(tokens: tuple[Token, ...], text: str) -> Command:
    """`iscsicli VERB arg...`: a native command; PowerShell passes each single-quoted
    argument and number as it is. Only the verbs of ISCSICLI_VERBS, with all their
    arguments, as quoted text or numbers."""
    if len(tokens) < 2 or tokens[1].kind != "word":
        raise Unsupported(text, "iscsicli is only understood with a verb")
    verb = ISCSICLI_VERBS.get(tokens[1].value.lower())
    if verb is None:
        raise Unsupported(text, f"iscsicli {tokens[1].value} is not understood")
    name, count = verb
    args = tokens[2:]
    if len(args) != count or any(t.kind not in ("string", "int") for t in args):
        raise Unsupported(text, f"iscsicli {name} takes {count} quoted or numeric arguments")
    return Command(ISCSICLI, {"verb": name, "args": [t.value for t in args]})


def _setting(raw: RawStatement) -> Statement:
    toks, text = raw.tokens, raw.text
    if len(toks) != 3 or toks[1].kind != "assign":
        raise Unsupported(text, "a setting is `$Variable = 'value'`")
    target, value = toks[0], toks[2]
    if target.kind == "static":
        type_name, _, member = target.value.partition("::")
        v_type, _, v_member = value.value.partition("::")
        if (
            type_name.lower() in _CONSOLE_TYPES
            and member.lower() == "outputencoding"
            and value.kind == "static"
            and v_type.lower() in _ENCODING_TYPES
            and v_member.lower() == "utf8"
        ):
            return Statement(text, None, ("OutputEncoding", "UTF8"), line=raw.line)
        raise Unsupported(
            text,
            "the only encoding understood is [Console]::OutputEncoding = [System.Text.Encoding]::UTF8",
        )
    known = SETTINGS.get(target.value.lower()) if target.kind == "variable" else None
    if known is None:
        raise Unsupported(text, f"the lab has no setting {target.value!r}")
    name, choices = known
    if value.kind == "string":
        for choice in choices:
            if value.value.lower() == choice.lower():
                return Statement(text, None, (name, choice), line=raw.line)
    raise Unsupported(text, f"${name} is only understood as {' or '.join(choices)}")


def _statement(raw: RawStatement) -> Statement:
    toks, text = raw.tokens, raw.text
    if any(t.kind == "assign" for t in toks) or (toks and toks[0].kind == "static"):
        return _setting(raw)
    if any(t.kind in ("variable", "static") and t.value.lower() in SETTINGS for t in toks):
        raise Unsupported(text, "a preference variable is only assigned, never read")
    if len(toks) == 1 and toks[0].kind == "string":
        return Statement(text, None, output=toks[0].value, line=raw.line)
    if len(toks) == 1 and toks[0].kind == "psversion":
        return Statement(text, None, line=raw.line, psversion=toks[0].value)
    if any(t.kind == "psversion" for t in toks):
        raise Unsupported(text, "$PSVersionTable.PSVersion.Major/Minor is only printed alone")
    if toks and toks[0].kind == "open" and toks[0].value == "(":
        return _method_statement(raw)
    if any(t.kind == "method" for t in toks):
        raise Unsupported(text, ".Start() only as (Get-Service -Name 'X').Start()")
    if any(t.kind in ("open", "close") for t in toks):
        return _array_statement(raw)
    return Statement(text, _pipeline(toks, text), line=raw.line)


def _method_statement(raw: RawStatement) -> Statement:
    """`(Get-Service -Name 'X').Start()`, one service by one name: SERVICE_START."""
    toks, text = raw.tokens, raw.text
    inner = toks[1:-1]
    if (
        len(toks) < 4
        or toks[-1].kind != "method"
        or any(t.kind in ("open", "close", "method", "pipe") for t in inner)
    ):
        raise Unsupported(text, "( ) only as (Get-Service -Name 'X').Start()")
    command = _command(tuple(inner), text)
    name: list[str] = command.args.get("Name") or []
    if command.name != "Get-Service" or set(command.args) != {"Name"} or len(name) != 1:
        raise Unsupported(text, "( ) only as (Get-Service -Name 'X').Start()")
    return Statement(text, (Command(SERVICE_START, {"Name": name[0]}),), line=raw.line)


# The pipelines written inside `ConvertTo-Json -InputObject @(...)`, by first cmdlet.
ARRAY_PIPELINES: dict[str, tuple[str, ...] | tuple[tuple[str, ...], ...]] = {
    "Get-ChildItem": ("Select-Object",)
}


def _array_statement(raw: RawStatement) -> Statement:
    """`ConvertTo-Json -InputObject @(<pipeline>) -Compress`: the array subexpression
    collects the pipeline's objects and -InputObject takes the array as one object, so
    ConvertTo-Json writes a JSON array whatever the count, `[]` for none
    (about_Arrays, the array subexpression operator; ConvertTo-Json -InputObject)."""
    toks, text = raw.tokens, raw.text
    shape = (
        len(toks) > 5
        and toks[0].kind == "word"
        and toks[0].value.lower() == "convertto-json"
        and toks[1].kind == "param"
        and toks[1].value.lower() == "inputobject"
        and not toks[1].colon
        and toks[2].kind == "open"
        and toks[-2].kind == "close"
        and toks[-1].kind == "param"
        and toks[-1].value.lower() == "compress"
        and not toks[-1].colon
    )
    inner = toks[3:-2] if shape else ()
    if not shape or any(t.kind in ("open", "close") for t in inner):
        raise Unsupported(text, "@( ) only as ConvertTo-Json -InputObject @(<pipeline>) -Compress")
    commands = _pipeline(inner, text, ARRAY_PIPELINES)
    tail = Command("ConvertTo-Json", {"Compress": True})
    return Statement(text, (*commands, tail), line=raw.line, array=True)


def _pipeline(
    toks: tuple[Token, ...],
    text: str,
    pipelines: dict[str, tuple[str, ...] | tuple[tuple[str, ...], ...]] = PIPELINES,
) -> tuple[Command, ...]:
    parts: list[list[Token]] = [[]]
    for t in toks:
        if t.kind == "pipe":
            parts.append([])
        else:
            parts[-1].append(t)
    commands = tuple(_command(tuple(part), text) for part in parts)
    first = commands[0].name
    if first not in pipelines:
        raise Unsupported(text, f"{first} only appears later in a pipeline")
    tails = pipelines[first]
    shapes = [tails] if not tails or isinstance(tails[0], str) else list(tails)
    names = tuple(c.name for c in commands)
    if not any(names == (first, *tail) for tail in shapes):
        wanted = " or ".join(" | ".join((first, *tail)) for tail in shapes)  # type: ignore[arg-type]
        raise Unsupported(text, f"{first} is only understood as the pipeline {wanted}")
    for source, command in zip(commands, commands[1:], strict=False):
        if command.name != "Select-Object":
            continue
        allowed = CMDLETS[source.name.lower()].properties
        if allowed is not None:
            known = {p.lower() for p in allowed}
            unknown = [p for p in command.args["Property"] if p.lower() not in known]
            if unknown:
                raise Unsupported(
                    text, f"{source.name} has no property {', '.join(unknown)} in the lab"
                )
    return commands


def parse_script(src: str) -> list[Statement]:
    """Parse a whole script; raise Unsupported if any statement leaves the subset."""
    return list(_parse_cached(src))


@functools.lru_cache(maxsize=4096)
def _parse_cached(src: str) -> tuple[Statement, ...]:
    # Hundreds of hosts get the same few scripts (a boot-time probe, a restart): each
    # is parsed once. Statements are frozen; the interpreter only reads their args.
    statements = tuple(_statement(raw) for raw in tokenize(src))
    if not statements or statements[0].setting != ("ErrorActionPreference", "Stop"):
        first = statements[0].text if statements else "(an empty script)"
        raise Unsupported(first, "a script must begin with $ErrorActionPreference = 'Stop'")
    return statements


# -- the world a host lives in -------------------------------------------------------------
class World(Protocol):
    """What a host can see beyond itself: other hosts, the pair, the V: volumes."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def host(self, name: str) -> dict[str, Any] | None:
        """Another lab host's document (case-insensitive name), or None."""
        ...

    def target_side(self, iqn: str) -> str | None:
        """The side whose V: volume the iSCSI target `iqn` is."""
        ...

    def bridge(self, side: str) -> dict[str, Any] | None:
        """The side's bridge host document."""
        ...

    def portals(self, side: str) -> list[str]:
        """The side's iSCSI portal addresses (its bridge on the media network)."""
        ...

    def iqn(self, side: str) -> str:
        """The iSCSI target name of the side's V: volume."""
        ...

    def portal_target(self, portal: str) -> str | None:
        """The target an iSCSI portal serves (a side's, or a server's outside the pair)."""
        ...

    def portal_answers(self, portal: str) -> bool:
        """Whether anything answers iSCSI at this portal address now."""
        ...

    def volume_read(self, side: str, path: str) -> str | None: ...

    def volume_write(self, side: str, path: str, content: str) -> None: ...

    def volume_delete(self, side: str, path: str) -> None: ...

    def volume_has_folder(self, side: str, folder: str) -> bool: ...

    def volume_list(self, side: str, folder: str) -> list[str]:
        """Paths of the files below `folder` on the side's volume."""
        ...

    def volume_delete_tree(self, side: str, folder: str) -> int:
        """Delete every file below `folder`; returns how many."""
        ...

    def volume_stat(self, side: str, path: str) -> tuple[int, float] | None:
        """(size, last write time) of a file, or None."""
        ...

    def volume_dirs(self, side: str, folder: str) -> list[str]:
        """Recorded folders and links below `folder`."""
        ...

    def volume_links(self, side: str) -> dict[str, tuple[str, str, str]]:
        """{lower-cased path: (path, target, link type)} of the side's reparse points."""
        ...

    def dir_delete(self, side: str, folder: str) -> None: ...


# System.ServiceProcess.ServiceController.Stop() waits this long for each running
# dependent service it stops first (dotnet/runtime ServiceController.cs, and .NET
# Framework's referencesource: `currentDependent.WaitForStatus(ServiceControllerStatus
# .Stopped, new TimeSpan(0, 0, 30))`), whatever -NoWait says about the service itself.
DEPENDENT_WAIT_SECONDS = 30.0
# What WaitForStatus throws when the time is up (System.ServiceProcess.TimeoutException,
# SR.Timeout): a .NET exception Stop-Service does not catch, so the statement fails.
SERVICE_TIMEOUT = "Time out has expired and the operation has not been completed."
# A service that never finishes stopping (`stuck`) is StopPending until then.
NEVER_STOPS = 4102444800.0


@dataclass
class ScriptResult:
    """What powershell.exe printed: `stdout` as text ('\n' line ends), `stderr` as the
    console would show its error records (or the transport's own refusal when
    `clixml` is False); `wire()` gives the bytes a redirected powershell.exe writes."""

    stdout: str
    stderr: str
    exit_status: int
    # Restart-Computer ran: the host goes down once the command has returned.
    reboot: bool = False
    # stderr is PowerShell's (serialised as CLIXML on the wire), not the transport's.
    clixml: bool = True
    # Seconds the script spent waiting on the host (Stop-Service waiting on dependents):
    # the listeners answer this much later (lab/host.py run_script).
    waited: float = 0.0
    # Progress records written (their activity), in order.
    progress: tuple[str, ...] = ()
    # Where in stdout the script had set UTF-8 output (None: it never did); errors
    # come after every output line, in the encoding set by then.
    utf8_from: int | None = None

    def wire(self, codepage: str = OEM_CODEPAGE) -> tuple[bytes, bytes]:
        """(stdout, stderr) bytes as written to pipes: CRLF line ends, text in the
        console's `codepage` until the script set UTF-8 (characters the code page
        lacks become '?', as WideCharToMultiByte's default character), stderr CLIXML."""
        cut = len(self.stdout) if self.utf8_from is None else self.utf8_from
        head, tail = self.stdout[:cut], self.stdout[cut:]
        out = _crlf(head).encode(codepage, errors="replace") + _crlf(tail).encode("utf-8")
        err_encoding = codepage if self.utf8_from is None else "utf-8"
        if self.clixml:
            err = clixml_stderr(self.progress, self.stderr)
        else:
            err = _crlf(self.stderr)
        return out, err.encode(err_encoding, errors="replace")


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# -- CLIXML on stderr ---------------------------------------------------------------------------
# powershell.exe with a redirected stderr and a non-interactive, encoded command writes
# its error, and progress, records as CLIXML: a `#< CLIXML` line, then one <Objs>
# document, each line of an error as the console shows it one <S S="Error"> ending in
# an escaped CRLF (PowerShell/PowerShell issue #5912 shows the shape; progress records
# are <Obj S="progress"> with a <PR N="Record"> as in ansible/ansible issue #67964).
# Strings escape what XML cannot carry, and a '_' that would read as an escape, as
# _xHHHH_ (PowerShell's serializer, engine/serialization.cs).
CLIXML_HEAD = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
)
_XML_UNSAFE = re.compile(r"[\x00-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")


def clixml_string(text: str) -> str:
    escaped = _XML_UNSAFE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _progress_record(ref: int, activity: str) -> str:
    types = (
        '<TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>'
        if ref == 0
        else '<TNRef RefId="0" />'
    )
    return (
        f'<Obj S="progress" RefId="{ref}">{types}<MS><I64 N="SourceId">1</I64>'
        f'<PR N="Record"><AV>{clixml_string(activity)}</AV><AI>0</AI><Nil /><PI>-1</PI>'
        "<PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"
    )


def clixml_stderr(progress: tuple[str, ...], errors: str) -> str:
    """The stderr powershell.exe writes for these progress records and error text."""
    if not progress and not errors:
        return ""
    parts = [_progress_record(i, a) for i, a in enumerate(progress)]
    for line in errors.splitlines():
        parts.append('<S S="Error">' + clixml_string(line + "\r\n") + "</S>")
    return CLIXML_HEAD + "".join(parts) + "</Objs>"


# Windows PowerShell 5.1's ConvertTo-Json serialises with .NET's JavaScriptSerializer:
# text outside ASCII as it is, and < > & ' as \u escapes (for HTML safety).
_JSON_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def to_json(value: Any, array: bool = False) -> str:
    """ConvertTo-Json -Compress: one line; an empty pipeline prints nothing (''). With
    `array` (-InputObject @(...)): a list as a JSON array whatever its length."""
    if isinstance(value, list) and not array:
        if not value:
            return ""
        if len(value) == 1:
            value = value[0]
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "".join(_JSON_HTML.get(c, c) for c in text)


def is_up(doc: dict[str, Any]) -> bool:
    return doc.get("down_until") is None


def visible_volume(doc: dict[str, Any]) -> str | None:
    """Which side's V: volume this host sees, if any."""
    if doc.get("kind") in SIDE_VOLUME_KINDS:
        side = doc.get("side")
        return str(side) if side else None
    mounted = doc.get("mounted_v")
    return str(mounted) if mounted else None


_ABSOLUTE = re.compile(r"^[A-Za-z]:\\")
_REGISTRY = re.compile(r"^HKLM:\\", re.I)
# The WinRM service's settings on the WSMan: drive that the lab answers, by path (lower
# case): the name Get-Item shows and the key in the host document's `winrm`
# (lab/winrm.py service_config has the defaults). A WSManConfigLeafElement's Value is
# text: "30", "true" (Microsoft Learn, about_WSMan_Provider).
WSMAN_ITEMS = {
    "wsman:\\localhost\\shell\\maxshellsperuser": ("MaxShellsPerUser", "max_shells_per_user"),
    "wsman:\\localhost\\service\\maxconcurrentoperationsperuser": (
        "MaxConcurrentOperationsPerUser",
        "max_concurrent_operations_per_user",
    ),
    "wsman:\\localhost\\service\\allowunencrypted": ("AllowUnencrypted", "allow_unencrypted"),
    "wsman:\\localhost\\service\\auth\\basic": ("Basic", "basic"),
}
# Windows' error for the WSMan: drive when the WinRM service does not run.
WSMAN_NOT_RUNNING = (
    "The client cannot connect to the destination specified in the request. Verify that "
    "the service on the destination is running and is accepting requests."
)


def _not_found(cmdlet: str, path: str) -> CmdletError:
    return CmdletError(cmdlet, f"Cannot find path '{path}' because it does not exist.")


def _entry(
    folder: str, name: str, attrs: int, size: int | None, mtime: float, link: str | None
) -> dict[str, Any]:
    return {
        "FullName": f"{folder}\\{name}",
        "Name": name,
        "Attributes": attrs,
        "Length": size,
        "_mtime": mtime,
        "LinkType": link,
    }


def _split(path: str) -> tuple[str, str]:
    """(folder, leaf) of an absolute path without a trailing backslash."""
    folder, _, leaf = path.rpartition("\\")
    return (folder + "\\" if len(folder) == 2 else folder), leaf


def powershell_version(doc: dict[str, Any]) -> tuple[int, int]:
    """The host's $PSVersionTable.PSVersion (major, minor): its document's `powershell`,
    "5.1" by default (Windows PowerShell 5.1 ships with Windows 10 / Server 2016 and is
    installable back to Windows 7 / Server 2008 R2; an older host may run 4.0, 3.0 or 2.0:
    Microsoft Learn, "Windows PowerShell System Requirements"). Of what older versions
    lack, the lab takes away the cmdlets of CMDLET_SINCE; their other differences
    (parameters, output shapes) are not modelled."""
    major, _, minor = str(doc.get("powershell", "5.1")).partition(".")
    return int(major), int(minor or 0)


def has_iscsi_module(doc: dict[str, Any]) -> bool:
    major, _, minor = str(doc.get("windows", "10.0")).partition(".")
    return (int(major), int(minor or 0)) >= ISCSI_MODULE_SINCE


def iscsi_doc(doc: dict[str, Any]) -> dict[str, Any]:
    iscsi: dict[str, Any] = doc.setdefault("iscsi", {})
    for key in ("portals", "discovered", "sessions", "persistent"):
        iscsi.setdefault(key, [])
    return iscsi


def new_session(doc: dict[str, Any], iqn: str, portal: str, persistent: bool) -> dict[str, Any]:
    """A session in the identifier's shape Get-IscsiSession shows
    (`fffffa800d008430-4000013700000001`: initiator, then a counter)."""
    iscsi = iscsi_doc(doc)
    iscsi["counter"] = int(iscsi.get("counter", 0)) + 1
    base = zlib.crc32(str(doc["name"]).lower().encode()) & 0xFFFFFFFF
    session = {
        "iqn": iqn,
        "portal": portal,
        "id": f"ffffe000{base:08x}-40000137{iscsi['counter']:08x}",
        "persistent": persistent,
    }
    iscsi["sessions"].append(session)
    return session


def offers(bridge: dict[str, Any], client: dict[str, Any]) -> bool:
    """Whether the bridge's target answers this client's SendTargets. A target returns
    only the targets the initiator may access (RFC 7143 Appendix C, SendTargets); a K2
    bridge serves the clients the K2 System Configuration assigned to it (K2-FACTS.md).
    A bridge document's `iscsi_clients` lists them (absent: every client)."""
    allowed = bridge.get("iscsi_clients")
    if allowed is None:
        return True
    return str(client.get("name", "")).lower() in {str(a).lower() for a in allowed}


def portal_side(world: World, portal: str) -> str | None:
    """The side whose bridge answers at this iSCSI portal address."""
    for side in ("X", "Y"):
        if portal.lower() in (p.lower() for p in world.portals(side)):
            return side
    return None


def _no_cim(cls: str, key: str, value: str) -> str:
    # How the iSCSI module's CDXML cmdlets report an object that is not there.
    return (
        f"No matching {cls} objects found by CIM query for instances of the "
        f"ROOT/Microsoft/Windows/Storage/{cls} class on the CIM server: SELECT * FROM "
        f"{cls} WHERE (({key} LIKE '{value}')). Verify query parameters and retry."
    )


def _list_view(obj: dict[str, Any]) -> str:
    """An object as the console's list view prints it (Format-List)."""
    width = max(len(k) for k in obj)
    lines = [""] + [f"{k.ljust(width)} : {v}" for k, v in obj.items()] + [""]
    return "\n".join(lines)


def _utc_offset_minutes(ms: int, zone: str) -> int:
    at = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(zone))
    delta = at.utcoffset()
    return int(delta.total_seconds() // 60) if delta is not None else 0


def _cim_datetime(ms: int, bias: int) -> str:
    local = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=bias)
    sign = "+" if bias >= 0 else "-"
    return f"{local:%Y%m%d%H%M%S}.{local.microsecond:06d}{sign}{abs(bias):03d}"


def _dotnet_utc_ms(ms: int, zone: str) -> int:
    """The instant `ms` as .NET brings its local wall-clock reading back to UTC: an
    ambiguous wall time is taken for standard time (the later pass, fold=1)."""
    tz = ZoneInfo(zone)
    wall = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz).replace(tzinfo=None)
    back = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return int(round(back.timestamp() * 1000))


@dataclass
class Interpreter:
    """Runs parsed statements against one host's document and its world."""

    host: dict[str, Any]
    world: World
    reboot: bool = False
    # `$?` of the last statement: False also when its error was silenced.
    ok: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    progress: list[str] = field(default_factory=list)
    modules_loaded: bool = False
    waited: float = 0.0
    # The statement running is `ConvertTo-Json -InputObject @(...)` (Statement.array).
    array: bool = False
    _handlers: dict[str, Callable[[tuple[Command, ...]], str]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self._handlers = {
            "Get-Service": self._get_service,
            "Start-Service": self._start_service,
            SERVICE_START: self._service_start,
            "Stop-Service": self._stop_service,
            "Get-Process": self._get_process,
            "Stop-Process": self._stop_process,
            "Get-ItemProperty": self._get_item_property,
            "Get-Item": self._get_item,
            "Set-ItemProperty": self._set_item_property,
            "Copy-Item": self._copy_item,
            "Rename-Item": self._rename_item,
            "Test-Path": self._test_path,
            "Get-Content": self._get_content,
            "Get-FileHash": self._get_file_hash,
            "Get-ChildItem": self._get_child_item,
            "Measure-Object": self._unreachable,
            "Remove-Item": self._remove_item,
            "Restart-Computer": self._restart_computer,
            "Get-CimInstance": self._get_cim_instance,
            "Get-WmiObject": self._get_wmi_object,
            "Get-Command": self._get_command,
            "Get-IscsiSession": self._get_iscsi_session,
            "Get-IscsiTarget": self._get_iscsi_target,
            "Get-IscsiConnection": self._get_iscsi_connection,
            "Get-IscsiTargetPortal": self._get_iscsi_portal,
            "New-IscsiTargetPortal": self._new_iscsi_portal,
            "Update-IscsiTargetPortal": self._update_iscsi_portal,
            "Disconnect-IscsiTarget": self._disconnect_iscsi,
            "Connect-IscsiTarget": self._connect_iscsi,
            "Register-IscsiSession": self._register_iscsi,
            "Unregister-IscsiSession": self._unregister_iscsi,
            "Set-Content": self._set_content,
            "Test-NetConnection": self._test_net_connection,
            ISCSICLI: self._iscsicli,
        }

    def run(self, statement: Statement) -> str:
        """One statement's output ('' when it prints nothing); CmdletError on failure.
        Sets `ok` to the statement's `$?`."""
        self.ok = True
        self.array = statement.array
        self._settle_stops()
        if statement.setting is not None:
            name, value = statement.setting
            self.settings[name] = value
            return ""
        if statement.output is not None:
            return statement.output
        if statement.psversion is not None:
            return str(powershell_version(self.host)[statement.psversion == "Minor"])
        assert statement.commands is not None
        first = statement.commands[0].name
        if first in ISCSI_MODULE and not has_iscsi_module(self.host):
            raise CmdletError(first, not_recognized(first))
        if first in WMI_CMDLETS and self.world.now() < float(self.host.get("providers_at") or 0):
            # Early in a boot (lab/state.py boot, the slow-providers fault).
            raise CmdletError(first, PROVIDER_LOAD_FAILURE)
        version = powershell_version(self.host)
        for command in statement.commands:
            if version < CMDLET_SINCE.get(command.name, (0, 0)):
                raise CmdletError(command.name, not_recognized(command.name))
        if not self.modules_loaded:
            # The first cmdlet of a module not yet imported loads it, and Windows
            # PowerShell reports "Preparing modules for first use." as progress.
            self.modules_loaded = True
            if self.settings.get("ProgressPreference") != "SilentlyContinue":
                self.progress.append("Preparing modules for first use.")
        return self._handlers[statement.commands[0].name](statement.commands)

    # -- helpers ------------------------------------------------------------------------
    def _select(self, commands: tuple[Command, ...], objects: list[dict[str, Any]]) -> str:
        names: list[str] = commands[1].args["Property"]
        out = []
        for obj in objects:
            by_lower = {k.lower(): k for k in obj}
            picked: dict[str, Any] = {}
            for n in names:
                key = by_lower.get(n.lower())
                picked[key or n] = obj[key] if key else None
            out.append(picked)
        return to_json(out, self.array)

    def _service(self, cmdlet: str, name: str) -> str:
        services = self.host.setdefault("services", {})
        for actual in services:
            if actual.lower() == name.lower():
                return str(actual)
        for actual in services:
            if str(self._info(actual).get("DisplayName", "")).lower() == name.lower():
                return str(actual)
        raise CmdletError(cmdlet, f"Cannot find any service with service name '{name}'.")

    def _process_names(self) -> list[str]:
        procs: list[str] = self.host.setdefault("processes", [])
        return procs

    # -- services and processes ------------------------------------------------------------
    # Services: a host document's `services` maps each service's key name to its
    # status; `service_info` (optional) gives a key name its DisplayName, the key names
    # of its DependentServices, its StartType, `stop_seconds` (how long it takes to stop
    # once asked: StopPending until then; 0 by default) and `stuck` (a service that
    # never leaves StopPending once asked to stop), `start_seconds` (how long it takes
    # to start: StartPending until then; 0 by default) and `start_stuck` (one that never
    # leaves StartPending). `stopping` and `starting` ({key: when}) hold the services
    # on their way to Stopped and Running.
    def _settle_stops(self) -> None:
        starting: dict[str, float] = self.host.get("starting") or {}
        for key, until in list(starting.items()):
            if float(until) <= self.world.now() + self.waited:
                del starting[key]
                if self.host["services"].get(key) == "StartPending":
                    self.host["services"][key] = "Running"
                    self._service_process(key, running=True)
        stopping: dict[str, float] = self.host.get("stopping") or {}
        for key, until in list(stopping.items()):
            if float(until) <= self.world.now() + self.waited:
                del stopping[key]
                if self.host["services"].get(key) == "StopPending":
                    self.host["services"][key] = "Stopped"
                    self._service_process(key, running=False)

    def _info(self, key: str) -> dict[str, Any]:
        info: dict[str, Any] = (self.host.get("service_info") or {}).get(key) or {}
        return info

    def _service_object(self, key: str) -> dict[str, Any]:
        status = self.host["services"][key]
        info = self._info(key)
        return {
            "Name": key,
            "DisplayName": info.get("DisplayName", key),
            "Status": SERVICE_STATUS_NUMBER.get(status, status),
            "StartType": START_TYPE_NUMBER[info.get("StartType", "Automatic")],
        }

    def _dependents(self, key: str) -> list[str]:
        return [
            self._service("Get-Service", d) for d in self._info(key).get("DependentServices", [])
        ]

    def _get_service(self, commands: tuple[Command, ...]) -> str:
        """Get-Service -Name takes a key name or a display name (without regard to case)
        and answers with the key name in Name: PowerShell's ServiceBaseCommand
        (Service.cs) turns a name without wildcards into `new ServiceController(name)`,
        which .NET resolves by service name or display name. Start-Service and
        Stop-Service -Name go the same way. -DependentServices answers with the services
        that depend on it instead."""
        args = commands[0].args
        if args.get("ErrorAction") == "SilentlyContinue":
            # A name the host has no service by is a non-terminating error (Microsoft
            # Learn, Get-Service: "Cannot find any service with service name"),
            # silenced: the others are answered, and `$?` is false
            # (about_Automatic_Variables, $?).
            keys = []
            for n in args["Name"]:
                try:
                    keys.append(self._service("Get-Service", n))
                except CmdletError:
                    self.ok = False
            return self._select(commands, [self._service_object(k) for k in keys])
        keys = [self._service("Get-Service", n) for n in args["Name"]]
        if args.get("DependentServices"):
            keys = [d for k in keys for d in self._dependents(k)]
        return self._select(commands, [self._service_object(k) for k in keys])

    def _start_service(self, commands: tuple[Command, ...]) -> str:
        """Start-Service as PowerShell's StartServiceCommand does it (PowerShell/PowerShell,
        commands/management/Service.cs, DoStartService): ServiceController.Start(), then
        DoWaitForStatus(Running, StartPending), which calls WaitForStatus with a 2 s
        timeout in a loop for as long as the service stays StartPending, warning
        "Waiting for service ... to start..." each time: no bound. The script spends
        that time on the host (`start_seconds`; for ever for `start_stuck`)."""
        actual = self._service("Start-Service", commands[0].args["Name"])
        self._start(actual)
        until = (self.host.get("starting") or {}).get(actual)
        if until is not None:
            self.waited += max(float(until) - (self.world.now() + self.waited), 0.0)
            self._settle_stops()
        return ""

    def _service_start(self, commands: tuple[Command, ...]) -> str:
        """`(Get-Service -Name 'X').Start()`: ServiceController.Start(), which returns
        once the service control manager has the service StartPending, without waiting
        for it to run (.NET ServiceController.Start: StartService). A service that is
        not Stopped refuses (StartService's ERROR_SERVICE_ALREADY_RUNNING, and a
        StopPending one ERROR_SERVICE_CANNOT_ACCEPT_CTRL), as a disabled one does
        (ERROR_SERVICE_DISABLED): .NET throws InvalidOperationException "Cannot start
        service X on computer '.'.", which PowerShell reports as a method exception."""
        key = self._service("Get-Service", commands[0].args["Name"])
        if self.host["services"][key] != "Stopped" or self._info(key).get("StartType") == (
            "Disabled"
        ):
            raise MethodError(
                'Exception calling "Start" with "0" argument(s): '
                f"\"Cannot start service {key} on computer '.'.\""
            )
        self._start(key)
        return ""

    def _start(self, key: str) -> None:
        if self.host["services"][key] in ("Running", "StartPending"):
            return
        if self._info(key).get("StartType") == "Disabled":
            # A disabled service does not start, whoever asks (Microsoft Learn,
            # Start-Service, example "Start a disabled service"; the service controller's
            # ERROR_SERVICE_DISABLED): Set-Service -StartupType first.
            name = self._info(key).get("DisplayName", key)
            raise CmdletError(
                "Start-Service",
                f"Service '{name} ({key})' cannot be started due to the following error: "
                f"Cannot start service {key} on computer '.'.",
            )
        # The service controller starts what a service depends on first.
        for other in list(self.host["services"]):
            if key in self._dependents(other) and self.host["services"][other] != "Running":
                self._start(other)
        info = self._info(key)
        seconds = NEVER_STOPS if info.get("start_stuck") else float(info.get("start_seconds", 0))
        if seconds <= 0:
            self.host["services"][key] = "Running"
            self._service_process(key, running=True)
            return
        self.host["services"][key] = "StartPending"
        starting = self.host.setdefault("starting", {})
        starting[key] = min(NEVER_STOPS, self.world.now() + self.waited + seconds)

    def _stop_service(self, commands: tuple[Command, ...]) -> str:
        """Stop-Service as PowerShell's StopServiceCommand does it (PowerShell/PowerShell,
        commands/management/Service.cs, DoStopService): without -Force, a service whose
        DependentServices are not all Stopped is refused ("ServiceHasDependentServices");
        otherwise it calls ServiceController.Stop(), which first stops every dependent
        that is not Stopped and *waits* up to 30 s for each (DEPENDENT_WAIT_SECONDS),
        throwing when one takes longer; then it sends the service the stop control and,
        with -NoWait, returns without waiting for the service itself."""
        args = commands[0].args
        key = self._service("Stop-Service", args["Name"])
        if not args.get("Force"):
            running = [d for d in self._dependents(key) if self.host["services"][d] != "Stopped"]
            if running:
                raise CmdletError(
                    "Stop-Service",
                    f"Cannot stop service '{self._display(key)} ({key})' because it has "
                    "dependent services. It can only be stopped if the Force flag is set.",
                )
        self._stop(key, key)
        return ""

    def _display(self, key: str) -> str:
        return str(self._info(key).get("DisplayName", key))

    def _stop(self, key: str, asked: str) -> None:
        """ServiceController.Stop() on `key` (recursively for its dependents)."""
        for dep in self._dependents(key):
            if self.host["services"][dep] == "Stopped":
                continue
            self._stop(dep, asked)
            self._wait_stopped(dep)
        status = self.host["services"][key]
        if status == "Stopped":
            return  # ERROR_SERVICE_NOT_ACTIVE: Stop-Service ignores it
        if status == "StopPending":
            # ControlService refuses a second stop (ERROR_SERVICE_CANNOT_ACCEPT_CTRL):
            # ServiceController.Stop throws InvalidOperationException, which
            # Stop-Service reports as CouldNotStopService.
            raise CmdletError(
                "Stop-Service",
                f"Service '{self._display(asked)} ({asked})' cannot be stopped due to the "
                f"following error: Cannot stop {key} service on computer '.'.",
            )
        info = self._info(key)
        seconds = NEVER_STOPS if info.get("stuck") else float(info.get("stop_seconds", 0))
        if seconds <= 0:
            self.host["services"][key] = "Stopped"
            self._service_process(key, running=False)
            return
        self.host["services"][key] = "StopPending"
        stopping = self.host.setdefault("stopping", {})
        stopping[key] = min(NEVER_STOPS, self.world.now() + self.waited + seconds)

    def _wait_stopped(self, key: str) -> None:
        """ServiceController.WaitForStatus(Stopped, 30 s) on a dependent: the script
        spends the time on the host; past 30 s it throws."""
        until = (self.host.get("stopping") or {}).get(key)
        if until is None:
            return
        left = float(until) - (self.world.now() + self.waited)
        if left > DEPENDENT_WAIT_SECONDS:
            self.waited += DEPENDENT_WAIT_SECONDS
            raise CmdletError("Stop-Service", SERVICE_TIMEOUT)
        self.waited += max(left, 0.0)
        self._settle_stops()

    def _service_process(self, service: str, running: bool) -> None:
        """A service that runs a program (AllSync's scheduler): the process follows it."""
        process = (self.host.get("service_processes") or {}).get(service)
        if process is None:
            return
        procs: list[str] = self.host.setdefault("processes", [])
        present = any(p.lower() == process.lower() for p in procs)
        if running and not present:
            procs.append(process)
        elif not running and present:
            self.host["processes"] = [p for p in procs if p.lower() != process.lower()]

    def _get_process(self, commands: tuple[Command, ...]) -> str:
        name = commands[0].args["Name"].lower()
        boot = self.host.get("boot_time", 0)
        objects = [
            {"Name": p, "Id": 1000 + zlib.crc32(f"{p}:{boot}".encode()) % 30000}
            for p in self._process_names()
            if p.lower() == name
        ]
        # No such process: a non-terminating error, silenced by -ErrorAction
        # SilentlyContinue, still makes `$?` false (about_Automatic_Variables, $?).
        self.ok = bool(objects)
        return self._select(commands, objects)

    def _stop_process(self, commands: tuple[Command, ...]) -> str:
        name = commands[0].args["Name"].lower()
        procs = self._process_names()
        self.ok = any(p.lower() == name for p in procs)
        self.host["processes"] = [p for p in procs if p.lower() != name]
        return ""

    # -- registry ------------------------------------------------------------------------------
    def _key(self, cmdlet: str, path: str) -> dict[str, Any]:
        registry: dict[str, dict[str, Any]] = self.host.setdefault("registry", {})
        for actual, values in registry.items():
            if actual.lower() == path.lower():
                return values
        raise _not_found(cmdlet, path)

    def _key_exists(self, path: str) -> bool:
        """Test-Path of a registry key: the key, or a key below it, is in the document."""
        low = path.rstrip("\\").lower()
        keys = [k.lower() for k in self.host.get("registry") or {}]
        return any(k == low or k.startswith(low + "\\") for k in keys)

    def _get_item_property(self, commands: tuple[Command, ...]) -> str:
        values = self._key("Get-ItemProperty", commands[0].args["LiteralPath"])
        return self._select(commands, [values])

    def _set_item_property(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        values = self._key("Set-ItemProperty", args["LiteralPath"])
        for existing in list(values):
            if existing.lower() == args["Name"].lower():
                del values[existing]
        values[args["Name"]] = args["Value"]
        return ""

    def _get_item(self, commands: tuple[Command, ...]) -> str:
        """Get-Item of a WinRM setting on the WSMan: drive, which is there only while the
        WinRM service runs (a host document with `winrm`: a host the worker reaches over
        WinRM)."""
        path: str = commands[0].args["LiteralPath"]
        if not path.lower().startswith("wsman:\\"):
            raise CmdletError(
                "Get-Item", f"amsm-lab: Get-Item reads only the WSMan: drive, not '{path}'"
            )
        if self.host.get("winrm") is None:
            raise CmdletError("Get-Item", WSMAN_NOT_RUNNING)
        item = WSMAN_ITEMS.get(path.rstrip("\\").lower())
        if item is None:
            raise _not_found("Get-Item", path)
        name, key = item
        value = service_config(self.host)[key]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return self._select(commands, [{"Name": name, "Value": text, "Type": "System.String"}])

    # -- files -----------------------------------------------------------------------------------
    def _path(self, cmdlet: str, path: str) -> str:
        if not _ABSOLUTE.match(path):
            # The lab has no current directory to resolve a relative path against.
            raise _not_found(cmdlet, path)
        trimmed = path.rstrip("\\")
        return trimmed + "\\" if len(trimmed) == 2 else trimmed

    def _volume_side(self, cmdlet: str) -> str:
        side = visible_volume(self.host)
        if side is None:
            raise CmdletError(
                cmdlet, "Cannot find drive. A drive with the name 'V' does not exist."
            )
        return side

    def _files(self) -> dict[str, str]:
        files: dict[str, str] = self.host.setdefault("files", {})
        return files

    def _host_file_key(self, path: str) -> str | None:
        low = path.lower()
        return next((k for k in self._files() if k.lower() == low), None)

    def _read(self, cmdlet: str, path: str) -> str | None:
        if path[0] in "vV":
            side = self._volume_side(cmdlet)
            return self.world.volume_read(side, self._resolve(side, path))
        key = self._host_file_key(path)
        return None if key is None else self._files()[key]

    def _is_folder(self, path: str) -> bool:
        if len(path) == 3:
            drive = path[0].upper()
            return drive == "C" or (drive == "V" and visible_volume(self.host) is not None)
        if path[0] in "vV":
            side = visible_volume(self.host)
            return side is not None and self.world.volume_has_folder(
                side, self._resolve(side, path)
            )
        prefix = path.lower() + "\\"
        return any(k.lower().startswith(prefix) for k in self._files())

    def _exists(self, path: str) -> bool:
        if path[0] in "vV" and visible_volume(self.host) is None:
            return False
        return self._is_folder(path) or self._read("Test-Path", path) is not None

    def _write(self, cmdlet: str, path: str, content: str) -> None:
        folder, _ = _split(path)
        if not self._is_folder(folder):
            if path[0] in "vV":
                self._volume_side(cmdlet)
            raise CmdletError(cmdlet, f"Could not find a part of the path '{path}'.")
        if path[0] in "vV":
            side = self._volume_side(cmdlet)
            self.world.volume_write(side, path, content)
            return
        key = self._host_file_key(path)
        if key is not None:
            del self._files()[key]
        self._files()[path] = content

    def _delete(self, cmdlet: str, path: str) -> None:
        if path[0] in "vV":
            side = self._volume_side(cmdlet)
            self.world.volume_delete(side, path)
            return
        key = self._host_file_key(path)
        if key is not None:
            del self._files()[key]

    def _file_content(self, cmdlet: str, path: str) -> str:
        if self._is_folder(path):
            raise CmdletError(cmdlet, f"'{path}' is a folder; the lab reads files only.")
        content = self._read(cmdlet, path)
        if content is None:
            raise _not_found(cmdlet, path)
        return content

    def _copy_item(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        source = self._path("Copy-Item", args["LiteralPath"])
        content = self._file_content("Copy-Item", source)
        destination = self._path("Copy-Item", args["Destination"])
        if self._is_folder(destination):
            destination = destination.rstrip("\\") + "\\" + _split(source)[1]
        self._write("Copy-Item", destination, content)
        return ""

    def _rename_item(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        source = self._path("Rename-Item", args["LiteralPath"])
        new_name: str = args["NewName"]
        if not new_name or "\\" in new_name or "/" in new_name:
            raise CmdletError("Rename-Item", f"Cannot rename to '{new_name}': not a file name.")
        if self._is_folder(source):
            raise CmdletError("Rename-Item", "The lab renames files only.")
        content = self._read("Rename-Item", source)
        if content is None:
            raise CmdletError(
                "Rename-Item", f"Cannot rename because item at '{source}' does not exist."
            )
        target = _split(source)[0].rstrip("\\") + "\\" + new_name
        if target.lower() != source.lower() and self._exists(target):
            raise CmdletError("Rename-Item", "Cannot create a file when that file already exists.")
        self._delete("Rename-Item", source)
        self._write("Rename-Item", target, content)
        return ""

    def _test_path(self, commands: tuple[Command, ...]) -> str:
        path: str = commands[0].args["LiteralPath"]
        if _REGISTRY.match(path):
            # The registry provider's items are keys; a value is no path (Microsoft
            # Learn, about_Registry_Provider: Test-Path tests keys).
            return "True" if self._key_exists(path) else "False"
        if not _ABSOLUTE.match(path):
            return "False"
        return "True" if self._exists(self._path("Test-Path", path)) else "False"

    def _get_content(self, commands: tuple[Command, ...]) -> str:
        path = self._path("Get-Content", commands[0].args["LiteralPath"])
        return json.dumps(self._file_content("Get-Content", path))

    def _get_file_hash(self, commands: tuple[Command, ...]) -> str:
        path = self._path("Get-FileHash", commands[0].args["LiteralPath"])
        content = self._file_content("Get-FileHash", path)
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest().upper()
        return self._select(commands, [{"Algorithm": "SHA256", "Hash": digest, "Path": path}])

    # Reparse points (junctions, directory symbolic links) on V:. Windows resolves a
    # path through them; Windows PowerShell 5.1 follows them both when
    # `Get-ChildItem -Recurse` descends (PowerShell 6 added -FollowSymlink and stopped
    # by default: PowerShell/PowerShell#1875) and when `Remove-Item -Recurse` deletes
    # (the target's contents go: PowerShell/PowerShell#621).
    def _resolve(self, side: str, path: str) -> str:
        links = self.world.volume_links(side)
        for _ in range(32):
            low = path.lower()
            hit = next(
                (k for k in links if low == k or low.startswith(k + "\\")),
                None,
            )
            if hit is None:
                return path
            path = links[hit][1] + path[len(hit) :]
        raise CmdletError(
            "Get-ChildItem", f"The name of the file cannot be resolved by the system: '{path}'."
        )

    def _children(self, side: str, folder: str) -> list[dict[str, Any]]:
        """The entries directly in `folder` (read through any link), as 5.1 shows them."""
        real = self._resolve(side, folder).rstrip("\\")
        links = self.world.volume_links(side)
        shown = folder.rstrip("\\")
        entries: dict[str, dict[str, Any]] = {}
        for path in self.world.volume_list(side, real):
            rest = path[len(real) + 1 :].split("\\")
            if len(rest) == 1:
                stat = self.world.volume_stat(side, path)
                size, mtime = stat if stat else (0, 0.0)
                entries[rest[0].lower()] = _entry(shown, rest[0], ATTR_ARCHIVE, size, mtime, None)
            else:
                d = entries.setdefault(
                    rest[0].lower(), _entry(shown, rest[0], ATTR_DIRECTORY, None, 0.0, None)
                )
                stat = self.world.volume_stat(side, path)
                if stat and len(rest) == 2:
                    d["_mtime"] = max(d["_mtime"], stat[1])
        for path in self.world.volume_dirs(side, real):
            rest = path[len(real) + 1 :].split("\\")
            link = links.get(path.lower()) if len(rest) == 1 else None
            if link is not None:
                attrs = ATTR_DIRECTORY | ATTR_REPARSE_POINT
                entries[rest[0].lower()] = _entry(shown, rest[0], attrs, None, 0.0, link[2])
            else:
                entries.setdefault(
                    rest[0].lower(), _entry(shown, rest[0], ATTR_DIRECTORY, None, 0.0, None)
                )
        out = []
        for _, e in sorted(entries.items()):
            e["LastWriteTimeUtc"] = f"/Date({int(e.pop('_mtime') * 1000)})/"
            out.append(e)
        return out

    def _get_child_item(self, commands: tuple[Command, ...]) -> str:
        """A V: folder's entries (-Force), or the folders below it matching a filter
        (-Recurse -Directory -Filter, descending into links as 5.1 does)."""
        args = commands[0].args
        root = self._path("Get-ChildItem", args["LiteralPath"])
        if root[0] not in "vV":
            raise CmdletError("Get-ChildItem", "the lab lists folders on V: only")
        side = self._volume_side("Get-ChildItem")
        if not self.world.volume_has_folder(side, self._resolve(side, root)):
            raise _not_found("Get-ChildItem", root)
        if "Force" in args:
            found = self._children(side, root)
            self._ingest_after_listing(side, root)
        else:
            pattern = str(args["Filter"]).lower()
            found = []
            todo = [(root.rstrip("\\"), 0)]
            while todo:
                folder, depth = todo.pop(0)
                if depth > 30:
                    # What following a link loop ends in on Windows.
                    raise CmdletError(
                        "Get-ChildItem",
                        f"The specified path, file name, or both are too long: '{folder}'.",
                    )
                for e in self._children(side, folder):
                    if not e["Attributes"] & ATTR_DIRECTORY:
                        continue
                    if fnmatch.fnmatchcase(e["Name"].lower(), pattern):
                        found.append(e)
                    todo.append((e["FullName"], depth + 1))
            found.sort(key=lambda e: e["FullName"].lower())
        if len(commands) == 4:  # | Measure-Object | Select-Object Count | ConvertTo-Json
            return self._select(commands[1:], [{"Count": len(found)}])
        return self._select(commands, found)

    def _ingest_after_listing(self, side: str, folder: str) -> None:
        """The `ingesting` fault (lab/faults.py): a clip recorded into a SmartBin just
        after the host enumerated it, before anything else it runs."""
        fault = self.host.get("fault") or {}
        parent, name = _split(folder.rstrip("\\"))
        if fault.get("kind") != "ingesting" or parent.lower() != "v:\\vibrantavifiles":
            return
        fault["count"] = int(fault.get("count", 0)) + 1
        clip = f"ingested-{fault['count']:04d}"
        for part in fault.get("parts", []):
            path = str(part).replace("{bin}", name).replace("{clip}", clip)
            self.world.volume_write(side, path, f"{clip} recorded on {side}\n")

    def _unreachable(self, commands: tuple[Command, ...]) -> str:
        raise AssertionError("Measure-Object only appears inside a pipeline")

    def _remove_following(self, side: str, folder: str) -> None:
        """Remove-Item -Recurse as 5.1 does it: into every link, deleting what it reaches."""
        for e in self._children(side, folder):
            if e["Attributes"] & ATTR_DIRECTORY:
                self._remove_following(side, e["FullName"])
            else:
                self.world.volume_delete(side, self._resolve(side, e["FullName"]))
        links = self.world.volume_links(side)
        if folder.rstrip("\\").lower() in links:
            self.world.dir_delete(side, folder)  # the (now emptied) link itself goes last
        else:
            real = self._resolve(side, folder)
            self.world.volume_delete_tree(side, real)

    def _remove_item(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        path = self._path("Remove-Item", args["LiteralPath"])
        if path[0] in "vV":
            side = self._volume_side("Remove-Item")
            real = self._resolve(side, path)
            is_link = path.rstrip("\\").lower() in self.world.volume_links(side)
            if is_link or self.world.volume_has_folder(side, real):
                if args.get("Recurse"):
                    self._remove_following(side, path)
                elif self._children(side, path):
                    raise CmdletError("Remove-Item", NON_INTERACTIVE)
                else:
                    # An empty folder, or a link (RemoveDirectory removes a junction
                    # itself, never its target: Microsoft Learn, RemoveDirectoryW).
                    self.world.dir_delete(side, path)
                return ""
            if self.world.volume_read(side, real) is None:
                raise _not_found("Remove-Item", path)
            self.world.volume_delete(side, real)
            return ""
        if self._read("Remove-Item", path) is None:
            raise _not_found("Remove-Item", path)
        self._delete("Remove-Item", path)
        return ""

    # -- the machine ------------------------------------------------------------------------------
    def _restart_computer(self, commands: tuple[Command, ...]) -> str:
        self.reboot = True
        return ""

    def _get_cim_instance(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        cls: str = args["ClassName"]
        namespace = args.get("Namespace")
        if namespace == UWF_NAMESPACE:
            return self._get_uwf(commands)
        if namespace != CIM_NAMESPACES[cls]:
            # Get-CimInstance looks in root/cimv2 unless told: a class of another
            # namespace is not there ("Invalid class"), nor Win32_ classes in root/wmi.
            raise CmdletError("Get-CimInstance", "Invalid class ")
        if len(commands) > 1:
            wrong = [p for p in commands[1].args["Property"] if p not in CIM_CLASSES[cls]]
            if wrong:
                raise CmdletError(
                    "Get-CimInstance", f"the lab's {cls} has no property {', '.join(wrong)}"
                )
        if cls == "MSiSCSIInitiator_PersistentLoginClass":
            return self._select(commands, self._persistent_logins())
        if cls == "Win32_TimeZone":
            zone = str(self.host.get("time_zone") or "UTC")
            if zone not in WINDOWS_ZONES:
                raise CmdletError("Get-CimInstance", f"the lab knows no Windows zone for {zone}")
            caption, bias, standard, daylight = WINDOWS_ZONES[zone]
            tz = {"Caption": caption, "Bias": bias, "StandardName": standard,
                  "DaylightName": daylight}  # fmt: skip
            return self._select(commands, [tz])
        return self._get_os(commands)

    def _get_uwf(self, commands: tuple[Command, ...]) -> str:
        """UWF's WMI classes, on a host whose `write_filter` is UWF (lab/state.py
        write_filter_boot). Elsewhere the namespace does not exist: Get-CimInstance
        fails with WMI's "Invalid namespace" (WBEM_E_INVALID_NAMESPACE, 0x8004100E)."""
        wf = self.host.get("write_filter") or {}
        if wf.get("kind") != "UWF":
            raise CmdletError("Get-CimInstance", "Invalid namespace ")
        if commands[1].name == "Invoke-CimMethod":
            if commands[0].args["ClassName"] != "UWF_Filter":
                raise CmdletError("Invoke-CimMethod", "The lab calls methods of UWF_Filter only.")
            # Takes effect at the next boot (lab/state.py write_filter_boot): `current`
            # stays as it is until then.
            wf["next"] = commands[1].args["MethodName"] == "Enable"
            return self._select(commands[1:], [{"ReturnValue": 0}])
        if commands[0].args["ClassName"] == "UWF_Filter":
            obj = {
                "Id": "UWF_Filter",
                "CurrentEnabled": bool(wf.get("current")),
                "NextEnabled": bool(wf.get("next")),
            }
            return self._select(commands, [obj])
        # One instance per protected volume and session; a volume UWF does not
        # protect in a session shows Protected false there.
        vols = []
        for current, key in ((True, "volumes"), (False, "next_volumes")):
            for letter in wf.get(key, wf.get("volumes", [])):
                vols.append(
                    {
                        "CurrentSession": current,
                        "DriveLetter": letter,
                        "VolumeName": "\\\\?\\Volume{" + VOLUME_GUID + "}\\",
                        "BindByDriveLetter": True,
                        "CommitPending": False,
                        "Protected": True,
                    }
                )
        return self._select(commands, vols)

    def _get_os(self, commands: tuple[Command, ...]) -> str:
        # `boot_time` is when the host booted on the lab's clock; `clock_offset` how far
        # the host's own clock is off (`amsm lab fault HOST clock-step S`). Windows moves
        # the boot time with the clock when the clock is set (ReactOS ntoskrnl
        # KeSetSystemTime: `KeBootTime.QuadPart += DeltaTime.QuadPart`), so both
        # properties of Win32_OperatingSystem carry the offset and their difference,
        # the uptime, does not.
        #
        # A host in a zone with daylight saving (`time_zone`, an IANA name; UTC when
        # absent): the CIM cmdlets give each time as a DateTime of Kind Local, its
        # wall-clock reading, and 5.1's ConvertTo-Json writes it as UTC through
        # ToUniversalTime, which takes a wall time of the repeated autumn hour for
        # standard time (Microsoft Learn, TimeZoneInfo.ConvertTimeToUtc: "If dateTime
        # is ambiguous, this method assumes that it is the standard time"): a reading
        # taken in the first, daylight, pass of that hour comes out an hour late.
        boot_ms, now_ms = self._os_times()
        zone = self.host.get("time_zone")
        if zone:
            boot_ms, now_ms = _dotnet_utc_ms(boot_ms, zone), _dotnet_utc_ms(now_ms, zone)
        obj = {
            "CSName": self.host["name"],
            "LastBootUpTime": f"/Date({boot_ms})/",
            "LocalDateTime": f"/Date({now_ms})/",
        }
        return self._select(commands, [obj])

    def _os_times(self) -> tuple[int, int]:
        """(boot, now) in ms since the epoch, on the host's own clock."""
        offset_ms = int(float(self.host.get("clock_offset", 0)) * 1000)
        boot_ms = int(self.host.get("boot_time", 0)) + offset_ms
        now_ms = int(self.world.now() * 1000) + offset_ms
        return boot_ms, now_ms

    def _get_wmi_object(self, commands: tuple[Command, ...]) -> str:
        """Win32_OperatingSystem through WMI: its times are CIM_DATETIME strings,
        `yyyymmddHHMMSS.mmmmmmsUUU`, local time with its offset from UTC in minutes
        (Microsoft Learn, "CIM_DATETIME"; Get-WmiObject passes them on as text), so
        each reads as one instant whatever the zone. The lab writes both with the
        offset in effect when asked."""
        boot_ms, now_ms = self._os_times()
        zone = str(self.host.get("time_zone") or "UTC")
        bias = _utc_offset_minutes(now_ms, zone)
        obj = {
            "CSName": self.host["name"],
            "LastBootUpTime": _cim_datetime(boot_ms, bias),
            "LocalDateTime": _cim_datetime(now_ms, bias),
        }
        return self._select(commands, [obj])

    # -- iSCSI ------------------------------------------------------------------------------------
    # A client document's `iscsi`: `portals` (registered target portals, kept across
    # boots, as the initiator keeps them), `discovered` (targets found through them),
    # `sessions` ({iqn, portal, id, persistent}) and `persistent` (the logins the
    # initiator makes again at every boot: {iqn, portal}). See lab/state.py `boot`.
    def _iscsi(self) -> dict[str, Any]:
        return iscsi_doc(self.host)

    def _get_command(self, commands: tuple[Command, ...]) -> str:
        """Get-Command -Name: the commands that exist; a missing one is a non-terminating
        error (silenced here) that still makes `$?` false."""
        names: list[str] = commands[0].args["Name"]
        known = {n.lower(): n for n in CMDLETS_BY_NAME}
        found = [
            {"Name": known[n.lower()]}
            for n in names
            if n.lower() in known
            and (known[n.lower()] not in ISCSI_MODULE or has_iscsi_module(self.host))
            and powershell_version(self.host) >= CMDLET_SINCE.get(known[n.lower()], (0, 0))
        ]
        self.ok = len(found) == len(names)
        return self._select(commands, found)

    def _persistent_logins(self) -> list[dict[str, Any]]:
        """The persistent logins as MSiSCSIInitiator_PersistentLoginClass instances, with
        the embedded MSiSCSIInitiator_Portal as Windows PowerShell 5.1's ConvertTo-Json
        writes a CIM instance at its default depth (2): its CIM properties, then the
        .NET ones (CimClass, CimInstanceProperties, CimSystemProperties) as their
        ToString()."""
        out = []
        for login in self._iscsi()["persistent"]:
            portal = str(login.get("portal", ""))
            out.append(
                {
                    "TargetName": login["iqn"],
                    # A login made with no initiator instance lists none (LoginIScsiTarget:
                    # InitiatorInstance is optional); the lab's logins name the
                    # software initiator unless the host's file says otherwise.
                    "InitiatorInstance": str(login.get("initiator", SOFTWARE_INITIATOR)),
                    "InitiatorPortNumber": ALL_INITIATOR_PORTS,
                    "TargetPortal": {
                        "Address": portal,
                        "Port": ISCSI_PORT,
                        "SymbolicName": "",
                        "PSComputerName": None,
                        "CimClass": "ROOT/wmi:MSiSCSIInitiator_Portal",
                        "CimInstanceProperties": f'Address = "{portal}"\nPort = {ISCSI_PORT}',
                        "CimSystemProperties": (
                            "Microsoft.Management.Infrastructure.CimSystemProperties"
                        ),
                    },
                }
            )
        return out

    def _iscsicli(self, commands: tuple[Command, ...]) -> str:
        if commands[0].args["verb"] == "PersistentLoginTarget":
            return self._iscsicli_persistent_login(commands)
        return self._iscsicli_remove(commands)

    def _iscsicli_persistent_login(self, commands: tuple[Command, ...]) -> str:
        """iscsicli PersistentLoginTarget calls LoginIScsiTarget with IsPersistent TRUE
        (Microsoft's iscsicli.c sample: PersistentLoginTarget and LoginTarget differ only
        in that flag, and only LoginTarget prints a session id), which "either
        establishes a single login session with a target, or creates a persistent login
        to a target ... the specified initiator should log in to the target each time
        the initiator is started, typically at system boot" (Microsoft Learn,
        LoginIScsiTargetW, Remarks). So the lab records the login and makes no session:
        the next boot makes it (state.iscsi_login). The target must be one the initiator
        has discovered (LoginIScsiTargetW: "The target must already exist in the list of
        discovered targets"); `*` for the portal leaves it to the initiator (a null
        TargetPortal: any portal to the target). The portal is not contacted now. It
        prints what the sample prints before the call, then the status's text; a failure
        exits non-zero, which does not stop the script (a native command)."""
        args = [str(a) for a in commands[0].args["args"]]
        target, address, socket = args[0], args[2], args[3]
        iscsi = self._iscsi()
        portal = "" if address == ISCSICLI_ANY else address
        said = (
            f"{ISCSICLI_BANNER}\n\nLoginTarget to {target} on <no init instance> to "
            f"{portal or '<no portal>'}/{socket if portal else 0}\n"
        )
        if target.lower() not in (d.lower() for d in iscsi["discovered"]) or (
            portal and socket.strip() != str(ISCSI_PORT)
        ):
            self.ok = False
            return said + "The target name is not found or is marked as hidden from login. "
        iscsi["persistent"].append({"iqn": target, "portal": portal})
        return said + "The operation completed successfully. "

    def _iscsicli_remove(self, commands: tuple[Command, ...]) -> str:
        """iscsicli RemovePersistentTarget removes the persistent login whose initiator,
        target, initiator port and portal (address and socket) are exactly those given,
        session or not (RemoveIScsiPersistentTargetW, Microsoft Learn); it prints its
        banner and the outcome, and exits with the status (0 when it worked), which
        does not stop a script under $ErrorActionPreference = 'Stop' (a native
        command's exit code is no PowerShell error: about_Preference_Variables). A
        live session stays until the restart; only the login is gone."""
        args = [str(a) for a in commands[0].args["args"]]
        initiator, target, port, address, socket = args
        iscsi = self._iscsi()
        found = None
        gone = []
        for login in iscsi["persistent"]:
            if (
                initiator.lower()
                in (str(login.get("initiator", SOFTWARE_INITIATOR)).lower(), ISCSICLI_ANY)
                and port.strip() in (str(ALL_INITIATOR_PORTS), ISCSICLI_ANY)
                and str(login["iqn"]).lower() == target.lower()
                and (
                    address == ISCSICLI_ANY
                    or (
                        str(login.get("portal", "")).lower() == address.lower()
                        and socket.strip() == str(ISCSI_PORT)
                    )
                )
            ):
                gone.append(login)
        if address != ISCSICLI_ANY:
            gone = gone[:1]
        found = gone[0] if gone else None
        if found is None:
            # No such login: iscsicli prints the failing status's text (the lab takes
            # ISDSC_TARGET_NOT_FOUND's; its exact wording is assumed) and exits non-zero.
            self.ok = False
            return f"{ISCSICLI_BANNER}\n\nThe target name is not found or is marked as hidden from login. "
        iscsi["persistent"] = [p for p in iscsi["persistent"] if not any(p is g for g in gone)]
        for s in iscsi["sessions"]:
            if str(s["iqn"]).lower() == target.lower() and not any(
                str(p["iqn"]).lower() == target.lower() for p in iscsi["persistent"]
            ):
                s["persistent"] = False
        return f"{ISCSICLI_BANNER}\n\nThe operation completed successfully. "

    def _get_iscsi_session(self, commands: tuple[Command, ...]) -> str:
        objects = [
            {
                "TargetNodeAddress": s["iqn"],
                "IsConnected": True,
                "IsPersistent": bool(s.get("persistent")),
                "SessionIdentifier": s["id"],
            }
            for s in self._iscsi()["sessions"]
        ]
        return self._select(commands, objects)

    def _get_iscsi_connection(self, commands: tuple[Command, ...]) -> str:
        """One connection per session (the Microsoft initiator's default: MC/S only
        when asked), to the portal the session was made through; the initiator's
        address is the host's own, its port an ephemeral one."""
        objects = [
            {
                "ConnectionIdentifier": f"{s['id'].split('-')[0]}-{i + 1:x}",
                "InitiatorAddress": str(self.host.get("address") or "0.0.0.0"),
                "InitiatorPortNumber": 49152 + i,
                "TargetAddress": str(s.get("portal", "")),
                "TargetPortNumber": ISCSI_PORT,
            }
            for i, s in enumerate(self._iscsi()["sessions"])
        ]
        return self._select(commands, objects)

    def _get_iscsi_target(self, commands: tuple[Command, ...]) -> str:
        """The targets discovered through the registered portals, logged in to or not
        (learn.microsoft.com/powershell/module/iscsi/get-iscsitarget)."""
        iscsi = self._iscsi()
        connected = {str(s["iqn"]).lower() for s in iscsi["sessions"]}
        objects = [
            {"NodeAddress": t, "IsConnected": t.lower() in connected} for t in iscsi["discovered"]
        ]
        return self._select(commands, objects)

    def _get_iscsi_portal(self, commands: tuple[Command, ...]) -> str:
        objects = [
            {"TargetPortalAddress": p, "TargetPortalPortNumber": ISCSI_PORT}
            for p in self._iscsi()["portals"]
        ]
        return self._select(commands, objects)

    def _discover(self, cmdlet: str, portal: str, port: int) -> None:
        """SendTargets to a portal: its targets become discovered; a portal nobody
        answers at fails the cmdlet (RefreshIScsiSendTargetPortal, Microsoft Learn)."""
        side = portal_side(self.world, portal)
        bridge = self.world.bridge(side) if side else None
        iqn = self.world.portal_target(portal)
        if port != ISCSI_PORT or iqn is None or not self.world.portal_answers(portal):
            # A portal nobody answers at: "Connection Failed." (0xEFFF0003), K2-FACTS.md.
            raise CmdletError(cmdlet, "Connection Failed.")
        found: list[str] = self._iscsi()["discovered"]
        # SendTargets through a portal lists the targets reachable through it (RFC 7143
        # Appendix C): here the one its K2 server serves (lab topology `portal_targets`).
        if (bridge is None or offers(bridge, self.host)) and iqn.lower() not in (
            d.lower() for d in found
        ):
            found.append(iqn)

    def _new_iscsi_portal(self, commands: tuple[Command, ...]) -> str:
        """New-IscsiTargetPortal registers the portal and discovers its targets
        (learn.microsoft.com/powershell/module/iscsi/new-iscsitargetportal); it prints
        the MSFT_iSCSITargetPortal it made (the drivers drop it into Out-Null)."""
        args = commands[0].args
        portal: str = args["TargetPortalAddress"]
        iscsi = self._iscsi()
        if portal.lower() in (p.lower() for p in iscsi["portals"]):
            # Strict: the drivers add only an absent portal (they read the list first).
            raise CmdletError("New-IscsiTargetPortal", "The target portal already exists.")
        self._discover("New-IscsiTargetPortal", portal, args["TargetPortalPortNumber"])
        iscsi["portals"].append(portal)
        return ""

    def _update_iscsi_portal(self, commands: tuple[Command, ...]) -> str:
        """Update-IscsiTargetPortal discovers a registered portal's targets again
        (learn.microsoft.com/powershell/module/iscsi/update-iscsitargetportal)."""
        args = commands[0].args
        portal: str = args["TargetPortalAddress"]
        if portal.lower() not in (p.lower() for p in self._iscsi()["portals"]):
            raise CmdletError(
                "Update-IscsiTargetPortal",
                _no_cim("MSFT_iSCSITargetPortal", "TargetPortalAddress", portal),
            )
        self._discover("Update-IscsiTargetPortal", portal, args["TargetPortalPortNumber"])
        return ""

    def _session(self, cmdlet: str, session_id: str) -> dict[str, Any]:
        for s in self._iscsi()["sessions"]:
            if str(s["id"]).lower() == session_id.lower():
                session: dict[str, Any] = s
                return session
        raise CmdletError(cmdlet, _no_cim("MSFT_iSCSISession", "SessionIdentifier", session_id))

    def _register_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Register-IscsiSession: the session's login is made again at every boot
        (learn.microsoft.com/powershell/module/iscsi/register-iscsisession)."""
        s = self._session("Register-IscsiSession", commands[0].args["SessionIdentifier"])
        s["persistent"] = True
        self._iscsi()["persistent"].append({"iqn": s["iqn"], "portal": s["portal"]})
        return ""

    def _unregister_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Unregister-IscsiSession removes the session's persistent login, "to prevent
        it from automatically reconnection on restart"; the session itself stays
        (learn.microsoft.com/powershell/module/iscsi/unregister-iscsisession)."""
        s = self._session("Unregister-IscsiSession", commands[0].args["SessionIdentifier"])
        s["persistent"] = False
        iscsi = self._iscsi()
        iscsi["persistent"] = [
            p for p in iscsi["persistent"] if str(p.get("iqn", "")).lower() != s["iqn"].lower()
        ]
        return ""

    def _disconnect_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Disconnect-IscsiTarget ends the sessions to the target but leaves a
        persistent login registered: the initiator logs in again at the next boot (only
        Unregister-IscsiSession removes it; learn.microsoft.com/powershell/module/iscsi/
        disconnect-iscsitarget). A session whose disks are in use cannot be logged out
        (LogoutIScsiTarget, Microsoft Learn: the service first makes sure every device
        of the session can be removed): SNFS holds them while V: is mounted from them."""
        iqn: str = commands[0].args["NodeAddress"]
        iscsi = self._iscsi()
        if not any(s["iqn"].lower() == iqn.lower() for s in iscsi["sessions"]):
            raise CmdletError(
                "Disconnect-IscsiTarget", f"No iSCSI session to target '{iqn}' exists."
            )
        side = self.world.target_side(iqn)
        if side is not None and self.host.get("mounted_v") == side:
            raise CmdletError(
                "Disconnect-IscsiTarget",
                "The session cannot be logged out since a device on that session is "
                "currently being used.",
            )
        iscsi["sessions"] = [s for s in iscsi["sessions"] if s["iqn"].lower() != iqn.lower()]
        return ""

    def _connect_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Connect-IscsiTarget -NodeAddress logs in to a target the initiator has
        discovered through a registered portal (New-IscsiTargetPortal; LoginIScsiTarget:
        "The target must already exist in the list of discovered targets"), through a
        portal that serves it; -IsPersistent $true registers the login for every boot.
        It prints the MSFT_iSCSISession it made
        (learn.microsoft.com/powershell/module/iscsi/connect-iscsitarget)."""
        args = commands[0].args
        iqn: str = args["NodeAddress"]
        portal: str = args["TargetPortalAddress"]
        iscsi = self._iscsi()
        if iqn.lower() not in (d.lower() for d in iscsi["discovered"]):
            raise CmdletError(
                "Connect-IscsiTarget",
                "The target name is not found or is marked as hidden from login.",
            )
        served = self.world.portal_target(portal)
        if (
            served is None
            or served.lower() != iqn.lower()
            or not self.world.portal_answers(portal)
            or args["TargetPortalPortNumber"] != ISCSI_PORT
        ):
            # The login goes through exactly the portal named (-TargetPortalAddress);
            # one that does not answer, or serves another target, fails it.
            raise CmdletError("Connect-IscsiTarget", "The target portal could not be reached.")
        if any(s["iqn"].lower() == iqn.lower() for s in iscsi["sessions"]):
            raise CmdletError(
                "Connect-IscsiTarget", "The target has already been logged in via an iSCSI session."
            )
        session = new_session(self.host, iqn, portal, bool(args["IsPersistent"]))
        if args["IsPersistent"]:
            iscsi["persistent"].append({"iqn": iqn, "portal": portal})
        if len(commands) > 1:
            return ""  # | Out-Null
        return _list_view(
            {
                "AuthenticationType": "NONE",
                "InitiatorNodeAddress": f"iqn.1991-05.com.microsoft:{str(self.host['name']).lower()}",
                "IsConnected": True,
                "IsPersistent": session["persistent"],
                "NumberOfConnections": 1,
                "SessionIdentifier": session["id"],
                "TargetNodeAddress": iqn,
            }
        )

    def _set_content(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        path = self._path("Set-Content", args["LiteralPath"])
        if path[0] in "vV":
            raise CmdletError("Set-Content", "The lab writes host files only with Set-Content.")
        self._write("Set-Content", path, "".join(v + "\n" for v in args["Value"]))
        return ""

    def _test_net_connection(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        # A bridge answers iSCSI at its portal addresses on the media network.
        side = portal_side(self.world, args["ComputerName"])
        if args["Port"] == ISCSI_PORT and self.world.portal_target(args["ComputerName"]):
            if not self.world.portal_answers(args["ComputerName"]):
                return "False"
        other = self.world.bridge(side) if side else self.world.host(args["ComputerName"])
        if side is None and self.world.portal_target(args["ComputerName"]):
            return "True" if args["Port"] == ISCSI_PORT else "False"
        if other is None or not is_up(other):
            return "False"
        if other.get("probe_blocked"):
            # A firewall that drops the probe, not the protocol: iSCSI still connects
            # (what an operator forces with --override client-switch-needs-bridge).
            return "False"
        if args["Port"] == ISCSI_PORT and side is None:
            # The bridge's iSCSI target listens on the media network only (K2-FACTS.md:
            # its own subnet); its control-network name does not answer on 3260.
            return "False"
        return "True"


def run_script(src: str, host: dict[str, Any], world: World) -> ScriptResult:
    """Run a whole script on `host` (its document is changed in place).

    Refuses the whole script, running nothing, when any statement is unsupported (a
    parse error: exit status 1); stops at the first failing statement and keeps the
    lines printed before it.
    """
    try:
        statements = parse_script(src)
    except Unsupported as e:
        return ScriptResult("", e.stderr(), 1)
    interpreter = Interpreter(host, world)
    lines: list[str] = []
    utf8_from: int | None = None

    def result(stderr: str, status: int) -> ScriptResult:
        return ScriptResult(
            _join(lines),
            stderr,
            status,
            interpreter.reboot,
            progress=tuple(interpreter.progress),
            utf8_from=utf8_from,
            waited=interpreter.waited,
        )

    for statement in statements:
        try:
            text = interpreter.run(statement)
        except CmdletError as e:
            return result(e.display(statement), 1)
        if text:
            lines.append(text)
        if utf8_from is None and interpreter.settings.get("OutputEncoding") == "UTF8":
            utf8_from = len(_join(lines))
    return result("", 0 if interpreter.ok else 1)


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)
