"""The host-driver base: run PowerShell statements on a Windows host, one line each.

The public `run` holds what every transport shares (building the script, checking
the answer's shape, naming the host in every error); `_execute` is the transport.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from inventory.models import Host


@dataclass
class ExecResult:
    exit_status: int
    stdout: str
    stderr: str


class HostDriver(abc.ABC):
    def __init__(self, host: Host, timeout: float) -> None:
        self.host = host
        self.name = host.host
        self.timeout = timeout

    async def run(self, *statements: str) -> list[str]:
        """Run the statements as one script; return one output line per statement.

        Raises Unreachable, AuthenticationFailed, or CommandFailed with the host's own
        error text.
        """
        text = ps.script(*statements)
        result = await self._execute(text)
        lines = result.stdout.replace("\r\n", "\n").split("\n")
        if result.exit_status != 0:
            raise CommandFailed(
                self.name, f"PowerShell exited with {result.exit_status}", result.stderr
            )
        # Each statement prints exactly one line (possibly empty).
        if lines and lines[-1] == "":
            lines = lines[:-1]
        if len(lines) < len(statements):
            lines += [""] * (len(statements) - len(lines))
        return lines[: len(statements)]

    async def run_one(self, statement: str) -> str:
        return (await self.run(statement))[0]

    @abc.abstractmethod
    async def _execute(self, script_text: str) -> ExecResult:
        """Send the script; translate transport errors into the error tree."""
