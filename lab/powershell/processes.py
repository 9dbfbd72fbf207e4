"""Processes: Get-Process and Stop-Process on the host's list of running programs."""

from __future__ import annotations

import zlib

from lab.powershell.session import Session
from lab.powershell.syntax import Command


class ProcessCmdlets(Session):
    """The process cmdlets, on the host document's `processes` (their names)."""

    def _process_names(self) -> list[str]:
        procs: list[str] = self.host.setdefault("processes", [])
        return procs

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
