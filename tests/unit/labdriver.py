"""A host driver that runs scripts in the lab's interpreter on lab.db, without a transport."""

from __future__ import annotations

import asyncio

from activities.drivers import powershell as ps
from activities.drivers.errors import Unreachable
from activities.drivers.host import ExecResult, HostDriver
from inventory.models import Host
from lab.powershell import OEM_CODEPAGE
from lab.ssh import cmd_line_too_long
from lab.state import LabState


class LabDriver(HostDriver):
    """Runs each script in the lab's interpreter, as the SSH and WinRM servers do, and
    refuses a command that cmd.exe would refuse, as the lab's SSH server does."""

    transport = "ssh"

    def __init__(self, lab: LabState, name: str, timeout: float = 5) -> None:
        super().__init__(Host(host=name, address="127.0.0.1", credentials="lab"), timeout)
        self.lab = lab
        self.scripts: list[str] = []
        # Seconds each script spent waiting on the host before it answered.
        self.waits: list[float] = []

    async def _execute(self, script_text: str) -> ExecResult:
        line = ps.encoded_command(script_text)
        if cmd_line_too_long(line):
            return ExecResult(1, b"", b"The command line is too long.\r\n")
        self.scripts.append(script_text)
        r = self.lab.run_script(self.name, script_text)
        self.waits.append(r.waited)
        if r.waited > self.timeout:
            # The script waits on the host longer than the transport waits for it.
            await asyncio.sleep(self.timeout)
            raise Unreachable(self.name, f"no answer within {self.timeout:g} s")
        await asyncio.sleep(r.waited)
        out, err = r.wire(OEM_CODEPAGE)  # as the lab's SSH server writes them
        return ExecResult(r.exit_status, out, err)
