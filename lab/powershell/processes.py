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
- Wait-Process sets `EnableRaisingEvents = true` on each piped process and catches only
  Win32Exception (WaitProcessCommand.ProcessRecord); on a process that exited after
  Get-Process listed it .NET throws InvalidOperationException, "Cannot process request
  because the process (Id) has exited." (Process.EnableRaisingEvents, OpenProcessHandle:
  SR.ProcessHasExited): a terminating error, which -ErrorAction does not silence.
- The host fault `exiting`: the processes are already terminating (their I/O pending)
  when Stop-Process comes: TerminateProcess fails with ERROR_ACCESS_DENIED for a process
  that is terminating (Microsoft Learn, TerminateProcess, remarks), so Stop-Process
  writes CouldNotStopProcess "Access is denied"; they exit while Wait-Process takes them
  (its InvalidOperationException above).
- The host fault `respawns`: a launcher (or the service control manager's recovery
  actions) starts each killed process again at once: Stop-Process succeeds and a new
  instance, with a new Id, runs.
- Get-Process -Name A,B lists the processes of all the names, sorted by name then Id
  (ProcessBaseCommand.MatchingProcesses, ProcessComparison); each name without one is a
  NoProcessFoundForGivenName of its own.
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
        # A new instance (the fault `respawns`) gets a new Id.
        starts = self.host.get("process_starts", {}).get(name.lower(), 0)
        key = f"{name}:{boot}" + (f":{starts}" if starts else "")
        return 1000 + zlib.crc32(key.encode()) % 30000

    def _get_process(self, commands: tuple[Command, ...]) -> str:
        names = {n.lower() for n in commands[0].args["Name"]}
        objects = sorted(
            (
                {"Name": p, "Id": self._process_id(p)}
                for p in self._process_names()
                if p.lower() in names
            ),
            key=lambda o: (str(o["Name"]).lower(), o["Id"]),
        )
        # A name without a process: a non-terminating error, silenced by -ErrorAction
        # SilentlyContinue, still makes `$?` false (about_Automatic_Variables, $?).
        self.ok = names <= {str(o["Name"]).lower() for o in objects}
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
        pending), with no error: TerminateProcess succeeded; under `respawns` each is
        started again. `$?` stays Get-Process's (false when none ran: its error,
        silenced, was written all the same)."""
        if self._fault() in ("kill-denied", "exiting") and objects:
            first = objects[0]
            raise CmdletError(
                "Stop-Process",
                f'Cannot stop process "{first["Name"]} ({first["Id"]})" because of the '
                "following error: Access is denied",
            )
        if self._fault() == "unkillable":
            return ""
        if self._fault() == "respawns":
            starts = self.host.setdefault("process_starts", {})
            for o in objects:
                key = str(o["Name"]).lower()
                starts[key] = starts.get(key, 0) + 1
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
        if self._fault() == "exiting" and objects:
            # They exit between Get-Process and Wait-Process: EnableRaisingEvents on the
            # first throws (see the module's docstring); the rest are not waited for.
            gone = {str(o["Name"]).lower() for o in objects}
            self.host["processes"] = [p for p in self._process_names() if p.lower() not in gone]
            raise CmdletError(
                "Wait-Process",
                f"Cannot process request because the process ({objects[0]['Id']}) has exited.",
            )
        running = {p.lower() for p in self._process_names()}
        left = [o for o in objects if str(o["Name"]).lower() in running]
        if left:
            # The lab's processes exit at once or never: the wait is the whole timeout,
            # one bound for all the piped processes.
            self.waited += timeout
            self.ok = False  # ProcessNotTerminated for each, silenced
        return ""
