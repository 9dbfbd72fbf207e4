"""The interpreter: a parsed script run statement by statement on one host, each
command handed to its family's cmdlet; what the host's PowerShell version offers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.powershell.errors import CmdletError, Unsupported, not_recognized
from lab.powershell.files import FileCmdlets
from lab.powershell.iscsi import ISCSI_MODULE, ISCSICLI, IscsiCmdlets, has_iscsi_module
from lab.powershell.lexer import SERVICE_START
from lab.powershell.machine import MachineCmdlets
from lab.powershell.output import ScriptResult
from lab.powershell.parser import CMDLETS_BY_NAME, parse_script
from lab.powershell.processes import ProcessCmdlets
from lab.powershell.registry import RegistryCmdlets
from lab.powershell.services import ServiceCmdlets
from lab.powershell.session import World
from lab.powershell.syntax import Command, Statement
from lab.powershell.wmi import PROVIDER_LOAD_FAILURE, WMI_CMDLETS, CimCmdlets

# Cmdlets of the subset that came after PowerShell 2.0, by the version that brought them
# (Microsoft Learn: ConvertTo-Json "was introduced in PowerShell 3.0"; the CimCmdlets
# module, Get-CimInstance, came with 3.0; Get-FileHash with 4.0). A host whose
# `powershell` is older has no such command.
CMDLET_SINCE = {"ConvertTo-Json": (3, 0), "Get-CimInstance": (3, 0), "Get-FileHash": (4, 0)}


def powershell_version(doc: dict[str, Any]) -> tuple[int, int]:
    """The host's $PSVersionTable.PSVersion (major, minor): its document's `powershell`,
    "5.1" by default (Windows PowerShell 5.1 ships with Windows 10 / Server 2016 and is
    installable back to Windows 7 / Server 2008 R2; an older host may run 4.0, 3.0 or 2.0:
    Microsoft Learn, "Windows PowerShell System Requirements"). Of what older versions
    lack, the lab takes away the cmdlets of CMDLET_SINCE; their other differences
    (parameters, output shapes) are not modelled."""
    major, _, minor = str(doc.get("powershell", "5.1")).partition(".")
    return int(major), int(minor or 0)


@dataclass
class Interpreter(
    ServiceCmdlets,
    ProcessCmdlets,
    RegistryCmdlets,
    FileCmdlets,
    CimCmdlets,
    IscsiCmdlets,
    MachineCmdlets,
):
    """Runs parsed statements against one host's document and its world."""

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
            "Wait-Process": self._wait_process,
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
            if statement.catch is None:
                return result(e.display(statement), 1)
            # Caught (about_Try_Catch_Finally): the catch block runs instead, printing
            # the error's message or nothing, and the script goes on; `$?` is the
            # block's, which has not failed.
            text = e.message if statement.catch == "message" else ""
            interpreter.ok = True
        if text:
            lines.append(text)
        if utf8_from is None and interpreter.settings.get("OutputEncoding") == "UTF8":
            utf8_from = len(_join(lines))
    return result("", 0 if interpreter.ok else 1)


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)
