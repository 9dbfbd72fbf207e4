"""Processes: Get-Process, and Stop-Process and Wait-Process piped from it, on the host's
list of running programs.

What PowerShell does (PowerShell's source, Microsoft.PowerShell.Commands.Management
Process.cs, StopProcessCommand and WaitProcessCommand; Microsoft Learn, Stop-Process,
Wait-Process, TerminateProcess):
- Get-Process -Name X with no X running: a non-terminating error (NoProcessFoundForGivenName),
  silenced by -ErrorAction SilentlyContinue; `$?` is false all the same.
- Stop-Process calls Process.Kill(), TerminateProcess, which "is asynchronous; it
  initiates termination and returns immediately": Stop-Process does not wait. A process
  that has exited is skipped; one that cannot be killed (access denied) is a
  non-terminating error CouldNotStopProcess, "Cannot stop process "X (Id)" because of
  the following error: ...", terminating under $ErrorActionPreference = 'Stop'.
- The host fault `kill-denied`: Kill() fails with access denied (a protected process, or
  one of another session the account may not end) and Stop-Process writes
  CouldNotStopProcess (ProcessResources: 'Cannot stop process "{0} ({1})" because of the
  following error: {2}'), which ends the script under 'Stop'.
- A killed process "cannot exit until all pending I/O has been completed or canceled"
  (TerminateProcess): the host fault `unkillable` keeps every killed process running,
  as an Aurora application blocked in I/O on V:.
- Wait-Process -Timeout N waits up to N seconds (ValidateRange 0..32767) for the piped
  processes to exit, then writes for each one still running the non-terminating error
  ProcessNotTerminated, 'This command stopped operation because process "X (Id)" is not
  stopped in the specified time-out.' (silenced by SilentlyContinue, `$?` false).
"""

from __future__ import annotations

import zlib
from typing import Any

from lab.powershell.errors import CmdletError
from lab.powershell.session import Session
from lab.powershell.syntax import Command

WAIT_TIMEOUT_MAX = 32767  # Wait-Process -Timeout's ValidateRange


class ProcessCmdlets(Session):
    """The process cmdlets, on the host document's `processes` (their names)."""

    def _process_names(self) -> list[str]:
        procs: list[str] = self.host.setdefault("processes", [])
        return procs

    def _process_id(self, name: str) -> int:
        boot = self.host.get("boot_time", 0)
        return 1000 + zlib.crc32(f"{name}:{boot}".encode()) % 30000

    def _get_process(self, commands: tuple[Command, ...]) -> str:
        name = commands[0].args["Name"].lower()
        objects = [
            {"Name": p, "Id": self._process_id(p)}
            for p in self._process_names()
            if p.lower() == name
        ]
        # No such process: a non-terminating error, silenced by -ErrorAction
        # SilentlyContinue, still makes `$?` false (about_Automatic_Variables, $?).
        self.ok = bool(objects)
        if len(commands) > 1 and commands[1].name == "Stop-Process":
            return self._stop_processes(objects)
        if len(commands) > 1 and commands[1].name == "Wait-Process":
            return self._wait_processes(objects, commands[1].args)
        return self._select(commands, objects)

    def _fault(self) -> str | None:
        fault = self.host.get("fault") or {}
        kind: str | None = fault.get("kind")
        return kind

    def _stop_processes(self, objects: list[dict[str, Any]]) -> str:
        """Kill each piped process; under `unkillable` each stays (its termination
        pending), with no error: TerminateProcess succeeded. `$?` stays Get-Process's
        (false when none ran: its error, silenced, was written all the same)."""
        if self._fault() == "kill-denied" and objects:
            first = objects[0]
            raise CmdletError(
                "Stop-Process",
                f'Cannot stop process "{first["Name"]} ({first["Id"]})" because of the '
                "following error: Access is denied",
            )
        if self._fault() == "unkillable":
            return ""
        gone = {str(o["Name"]).lower() for o in objects}
        self.host["processes"] = [p for p in self._process_names() if p.lower() not in gone]
        return ""

    def _wait_processes(self, objects: list[dict[str, Any]], args: dict[str, Any]) -> str:
        timeout = int(args["Timeout"])
        if not 0 <= timeout <= WAIT_TIMEOUT_MAX:
            raise CmdletError(
                "Wait-Process",
                f"Cannot validate argument on parameter 'Timeout'. The {timeout} argument is "
                f"{'less than the minimum' if timeout < 0 else 'greater than the maximum'} "
                f"allowed range of {0 if timeout < 0 else WAIT_TIMEOUT_MAX}. Supply an "
                "argument that is "
                f"{'greater than or equal to 0' if timeout < 0 else f'less than or equal to {WAIT_TIMEOUT_MAX}'}"
                " and then try the command again.",
            )
        running = {p.lower() for p in self._process_names()}
        left = [o for o in objects if str(o["Name"]).lower() in running]
        if left:
            # The lab's processes exit at once or never: the wait is the whole timeout.
            self.waited += timeout
            self.ok = False  # ProcessNotTerminated for each, silenced
        return ""
