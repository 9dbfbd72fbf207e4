"""The PowerShell the drivers send: one source for every transport.

Each builder returns one *statement*; `script()` joins statements into a script
that stops at the first error (`$ErrorActionPreference = 'Stop'`). Every
statement prints at most one line: compressed JSON, `True`/`False`, or nothing.
That makes the output of a multi-statement script easy to split, and it is the
exact subset the lab's interpreter accepts (lab/powershell.py), so the drivers
cannot drift from what the lab understands.

Values are never interpolated into code: every value is a single-quoted
PowerShell literal (no variable or sub-expression expansion inside '...'),
with the quote doubled, and control characters are refused outright.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

# PowerShell treats these as single quotes too; each must be doubled.
_QUOTES = "'\u2018\u2019\u201a\u201b"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeValue(ValueError):
    """A value that must never reach a PowerShell command line."""


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


def script(*statements: str) -> str:
    return "\n".join(["$ErrorActionPreference = 'Stop'", *statements])


def encoded_command(text: str) -> str:
    """The command line that OpenSSH for Windows runs (default shell cmd.exe)."""
    b64 = base64.b64encode(text.encode("utf-16-le")).decode("ascii")
    return (
        f"powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {b64}"
    )


def decode_command(command: str) -> str:
    """Inverse of encoded_command (used by the lab)."""
    prefix = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
    if not command.startswith(prefix):
        raise ValueError("not an amsm PowerShell command line")
    return base64.b64decode(command[len(prefix) :]).decode("utf-16-le")


# -- services and processes ----------------------------------------------------
def get_services(names: Sequence[str]) -> str:
    """Name is the key name even when asked by display name: match either."""
    return f"Get-Service -Name {qlist(names)} | Select-Object Name,DisplayName,Status | {JSON}"


def get_dependent_services(name: str) -> str:
    """The services that Stop-Service -Force stops along with `name`."""
    return (
        f"Get-Service -Name {q(name)} -DependentServices | "
        f"Select-Object Name,DisplayName,Status,StartType | {JSON}"
    )


def start_service(name: str) -> str:
    return f"Start-Service -Name {q(name)}"


def stop_service(name: str) -> str:
    """-NoWait: Stop-Service otherwise waits as long as the service takes to stop, forever
    for a stuck one (Microsoft Learn, Stop-Service); the caller polls with a deadline.
    -Force stops the dependent services too: the caller reads them first."""
    return f"Stop-Service -Name {q(name)} -Force -NoWait"


def get_process(name: str) -> str:
    return f"Get-Process -Name {q(name)} -ErrorAction SilentlyContinue | Select-Object Name,Id | {JSON}"


def stop_process(name: str) -> str:
    return f"Stop-Process -Name {q(name)} -Force -ErrorAction SilentlyContinue"


# -- registry and files ----------------------------------------------------------
def get_registry(path: str, names: Sequence[str]) -> str:
    return f"Get-ItemProperty -LiteralPath {q(path)} | Select-Object {_props(names)} | {JSON}"


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


def count_children(path: str) -> str:
    """How many entries `path` holds (hidden ones too): always prints {"Count":N}, so an
    empty folder is known to be empty, not taken from an empty answer."""
    return (
        f"Get-ChildItem -LiteralPath {q(path)} -Force | Measure-Object | "
        f"Select-Object Count | {JSON}"
    )


def list_children(path: str) -> str:
    """The entries directly in `path` (no -Recurse: nothing below is entered, so no
    reparse point is ever followed; the caller lists a sub-folder only after seeing
    that it is not one)."""
    return (
        f"Get-ChildItem -LiteralPath {q(path)} -Force | "
        f"Select-Object {_props(ENTRY_PROPERTIES)} | {JSON}"
    )


def remove_item(path: str) -> str:
    """Remove one file, or one empty folder: without -Recurse a folder that still has
    children is not removed (in -NonInteractive mode the confirmation fails)."""
    return f"Remove-Item -LiteralPath {q(path)} -Force"


# -- the machine ---------------------------------------------------------------------
def restart_computer() -> str:
    return "Restart-Computer -Force"


def boot_info() -> str:
    return (
        "Get-CimInstance -ClassName Win32_OperatingSystem | "
        f"Select-Object CSName,LastBootUpTime | {JSON}"
    )


def iscsi_sessions() -> str:
    return f"Get-IscsiSession | Select-Object TargetNodeAddress,IsConnected | {JSON}"


def iscsi_disconnect(iqn: str) -> str:
    return f"Disconnect-IscsiTarget -NodeAddress {q(iqn)} -Confirm:$false"


def iscsi_connect(iqn: str, portal: str) -> str:
    return (
        f"Connect-IscsiTarget -NodeAddress {q(iqn)} -TargetPortalAddress {q(portal)} "
        "-IsPersistent $true"
    )


def test_port(host: str, port: int) -> str:
    return f"Test-NetConnection -ComputerName {q(host)} -Port {int(port)} -InformationLevel Quiet"


# -- output parsing -------------------------------------------------------------------
SERVICE_STATUS = {1: "Stopped", 2: "StartPending", 3: "StopPending", 4: "Running", 7: "Paused"}
# ServiceStartMode as 5.1's ConvertTo-Json writes it.
START_TYPE = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}


def parse_json_list(line: str) -> list[dict[str, Any]]:
    """ConvertTo-Json prints one object for one item, a list for several, nothing for none."""
    if not line.strip():
        return []
    data = json.loads(line)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    raise ValueError(f"expected JSON objects, got {line[:80]!r}")


def parse_json_object(line: str) -> dict[str, Any]:
    items = parse_json_list(line)
    if len(items) != 1:
        raise ValueError(f"expected one JSON object, got {len(items)}")
    return items[0]


def parse_json_string(line: str) -> str:
    """Get-Content -Raw | ConvertTo-Json: the file's text as one JSON string."""
    if not line.strip():
        return ""
    data = json.loads(line)
    if isinstance(data, dict) and "value" in data:  # PowerShell 5.1 wraps with NoteProperties
        data = data["value"]
    if not isinstance(data, str):
        raise ValueError(f"expected a JSON string, got {line[:80]!r}")
    return data


def parse_bool(line: str) -> bool:
    v = line.strip()
    if v not in ("True", "False"):
        raise ValueError(f"expected True or False, got {v[:80]!r}")
    return v == "True"


def parse_service_status(value: Any) -> str:
    """Windows PowerShell 5.1 serialises the status enum as a number; 7 as a name."""
    if isinstance(value, int):
        return SERVICE_STATUS.get(value, f"Unknown({value})")
    return str(value)


_DOTNET_DATE = re.compile(r"^/Date\((-?\d+)\)/$")


def parse_datetime(value: Any) -> datetime:
    """ConvertTo-Json writes DateTime as /Date(ms)/ in 5.1 and ISO 8601 in 7."""
    if isinstance(value, str):
        m = _DOTNET_DATE.fullmatch(value)
        if m:
            return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
        return datetime.fromisoformat(value)
    if isinstance(value, dict) and "value" in value:
        return parse_datetime(value["value"])
    raise ValueError(f"not a date: {value!r}")
