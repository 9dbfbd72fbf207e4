"""Processes: Get-Process -Name, Stop-Process -Id and Wait-Process -Id, on the host's
list of running programs (several of one name: several processes, each its own Id).

What PowerShell does (PowerShell's source, Microsoft.PowerShell.Commands.Management
Process.cs, ProcessBaseCommand, StopProcessCommand and WaitProcessCommand;
ProcessResources.resx; Microsoft Learn, Stop-Process, Wait-Process, TerminateProcess):
- Get-Process -Name X with no X running: a non-terminating error (NoProcessFoundForGivenName),
  silenced by -ErrorAction SilentlyContinue; `$?` is false all the same.
- -Id resolves each Id with Process.GetProcessById (GetMatchingProcessesById); an Id that
  runs no process is a non-terminating error NoProcessFoundForGivenId, "Cannot find a
  process with the process identifier {0}.", terminating under
  $ErrorActionPreference = 'Stop' unless -ErrorAction silences it.
- Stop-Process calls Process.Kill(), TerminateProcess, which "is asynchronous; it
  initiates termination and returns immediately": Stop-Process does not wait. A process
  that has exited (its handles still open) is skipped (TryHasExited); one that cannot be
  killed is a non-terminating error CouldNotStopProcess, 'Cannot stop process "{0} ({1})"
  because of the following error: {2}', terminating under 'Stop'.
- The host fault `kill-denied`: Kill() fails with access denied (a protected process, or
  one of another session the account may not end), for every process, or only for the
  Ids in the fault's `ids` (a lab knob for a test: one process of a name refused).
- A killed process "cannot exit until all pending I/O has been completed or canceled"
  (TerminateProcess): the host fault `unkillable` keeps every killed process running,
  as an Aurora application blocked in I/O on V:.
- Wait-Process -Id N,M -Timeout T waits up to T seconds (ValidateRange 0..32767) for the
  processes it resolved to exit, then writes for each one still running the
  non-terminating error ProcessNotTerminated, 'This command stopped operation because
  process "X (Id)" is not stopped in the specified time-out.' (silenced by
  SilentlyContinue, `$?` false). It sets EnableRaisingEvents on each; a process that exits
  between GetProcessById and that is InvalidOperationException, thrown past its
  Win32Exception catch: a window inside the cmdlet the lab does not open.
- The host fault `exiting`: the processes are already terminating (their I/O pending)
  when Stop-Process comes: TerminateProcess fails with ERROR_ACCESS_DENIED for a process
  that is terminating (Microsoft Learn, TerminateProcess, remarks), so Stop-Process
  writes CouldNotStopProcess "Access is denied"; they exit while Wait-Process waits.
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
    """The process cmdlets, on the host document's `processes` (their names, one entry a
    process). A process's Id stays while it runs: the n-th process of a name started
    since the boot is its instance n, and `process_gone` keeps, per boot, the instances
    of each name that ended through Stop-Process."""

    def _process_names(self) -> list[str]:
        procs: list[str] = self.host.setdefault("processes", [])
        return procs

    def _gone(self) -> dict[str, list[int]]:
        boot = self.host.get("boot_time", 0)
        record = self.host.get("process_gone") or {}
        if record.get("boot") != boot:
            record = {"boot": boot, "names": {}}
            self.host["process_gone"] = record
        names: dict[str, list[int]] = record["names"]
        return names

    def _process_id(self, name: str, instance: int) -> int:
        boot = self.host.get("boot_time", 0)
        key = f"{name}:{boot}" + (f"#{instance}" if instance else "")
        return 1000 + zlib.crc32(key.encode()) % 30000

    def _processes(self) -> list[dict[str, Any]]:
        """Every running process: Name, Id and its instance of that name."""
        gone = self._gone()
        seen: dict[str, int] = {}
        out = []
        for p in self._process_names():
            key = p.lower()
            ended = set(gone.get(key, []))
            instance, k = -1, seen.get(key, 0)
            while k >= 0:
                instance += 1
                if instance not in ended:
                    k -= 1
            seen[key] = seen.get(key, 0) + 1
            out.append({"Name": p, "Id": self._process_id(p, instance), "instance": instance})
        return out

    def _get_process(self, commands: tuple[Command, ...]) -> str:
        names = {n.lower() for n in commands[0].args["Name"]}
        objects = sorted(
            (
                {"Name": o["Name"], "Id": o["Id"]}
                for o in self._processes()
                if str(o["Name"]).lower() in names
            ),
            key=lambda o: (str(o["Name"]).lower(), o["Id"]),
        )
        # A name without a process: a non-terminating error, silenced by -ErrorAction
        # SilentlyContinue, still makes `$?` false (about_Automatic_Variables, $?).
        self.ok = names <= {str(o["Name"]).lower() for o in objects}
        return self._select(commands, objects)

    def _fault(self) -> dict[str, Any]:
        fault: dict[str, Any] = self.host.get("fault") or {}
        return fault

    def _end(self, proc: dict[str, Any]) -> None:
        """The process ends: its instance is gone, its entry leaves the list."""
        key = str(proc["Name"]).lower()
        self._gone().setdefault(key, []).append(int(proc["instance"]))
        names = self._process_names()
        # Which entry of the name does not matter: the instances left are recounted.
        names.pop(next(i for i, p in enumerate(names) if p.lower() == key))

    def _by_id(self, pid: int) -> dict[str, Any] | None:
        return next((o for o in self._processes() if o["Id"] == pid), None)

    def _stop_process(self, commands: tuple[Command, ...]) -> str:
        """Stop-Process -Id N -Force: kill that process. Under `unkillable` it stays (its
        termination pending), with no error: TerminateProcess succeeded; under `respawns`
        a new instance starts; under `kill-denied` (for its Id) and `exiting`, Kill()
        fails, CouldNotStopProcess."""
        for pid in commands[0].args["Id"]:
            proc = self._by_id(pid)
            if proc is None:
                raise CmdletError(
                    "Stop-Process", f"Cannot find a process with the process identifier {pid}."
                )
            fault = self._fault()
            kind = fault.get("kind")
            denied = kind == "kill-denied" and pid in fault.get("ids", [pid])
            if denied or kind == "exiting":
                raise CmdletError(
                    "Stop-Process",
                    f'Cannot stop process "{proc["Name"]} ({pid})" because of the '
                    "following error: Access is denied",
                )
            if kind == "unkillable":
                continue
            self._end(proc)
            if kind == "respawns":
                self._process_names().append(str(proc["Name"]))
        return ""

    def _wait_process(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
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
        found = [self._by_id(pid) for pid in args["Id"]]
        # An Id without a process: NoProcessFoundForGivenId, silenced; `$?` false.
        self.ok = all(found)
        procs = [p for p in found if p is not None]
        if self._fault().get("kind") == "exiting":
            # Already ending (see the module's docstring): they exit while waited for.
            for proc in procs:
                self._end(proc)
            return ""
        if procs:
            # The lab's processes exit at once or never: the wait is the whole timeout,
            # one bound for all, and ProcessNotTerminated for each, silenced.
            self.waited += timeout
            self.ok = False
        return ""
