"""The host-driver base: run PowerShell statements on a Windows host, one text each.

The public `run` holds what every transport shares (refusing a command line the
transport cannot carry, building the script, reading the answer whole, naming the
host in every error); `_execute` is the transport.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate, Literal, ParamSpec, TypeVar

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from inventory.models import Host

P = ParamSpec("P")
R = TypeVar("R")
Transport = Literal["ssh", "winrm"]

# At most this many WinRM sessions, so shells, per host and credentials in one worker
# process (activities/drivers/winrm.py); here, below any device library, for the site
# check to compare with the host's quota. A WinRM service allows a user
# MaxShellsPerUser = 30 shells by default (Microsoft Learn, "Quotas for Remote
# Shells"), so a few workers fit under it.
SESSIONS_PER_HOST = 8


@dataclass
class ExecResult:
    """What the transport brought back, undecoded."""

    exit_status: int
    stdout: bytes
    stderr: bytes


def _decode(host: str, data: bytes, stream: str) -> str:
    # The scripts set UTF-8 output (ps.PREAMBLE); anything else is the console's OEM
    # code page leaking through, and guessing it would turn names into other names.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CommandFailed(
            host,
            f"{stream} is not UTF-8 (byte 0x{data[e.start]:02x} at {e.start}): the host did "
            "not take [Console]::OutputEncoding, so its answer is in another code page",
        ) from None
    # .NET may write the encoding's preamble before the first character.
    return text.removeprefix("\ufeff")


def read_answer(host: str, statements: int, result: ExecResult) -> list[str]:
    """One output text per statement from a `ps.script()` run, or CommandFailed.

    The answer counts only when every statement's marker came back (split_output):
    a script stopped by an error, or cut, is never read as empty results. An exit
    status of 1 with every statement run and no error record is not a failure:
    powershell.exe exits 1 when the last statement's `$?` is false, also for an
    error silenced with -ErrorAction SilentlyContinue (about_PowerShell_exe).
    """
    out = _decode(host, result.stdout, "stdout")
    try:
        err = _decode(host, result.stderr, "stderr")
    except CommandFailed as e:
        # Still a failure, but with what can be read of the host's own words (an error
        # written before the script set UTF-8 is in the console's code page).
        shown = result.stderr.decode("utf-8", errors="replace")
        raise CommandFailed(host, e.message, ps.parse_stderr_lenient(shown)) from None
    try:
        stderr = ps.parse_stderr(err)
    except ps.BadOutput as e:
        raise CommandFailed(host, f"unreadable error stream ({e})", err[:500]) from None
    try:
        texts = ps.split_output(out, statements)
    except ps.BadOutput as e:
        if stderr.text():
            raise CommandFailed(host, "PowerShell reported an error", stderr.text()) from None
        raise CommandFailed(
            host, f"PowerShell exited with {result.exit_status}; answer not whole ({e})"
        ) from None
    if stderr.errors:
        raise CommandFailed(host, "PowerShell reported an error", stderr.errors)
    if result.exit_status not in (0, 1):
        raise CommandFailed(
            host, f"PowerShell exited with {result.exit_status}", stderr.text() or out[-300:]
        )
    return texts


class HostDriver(abc.ABC):
    transport: Transport

    def __init__(self, host: Host, timeout: float) -> None:
        self.host = host
        self.name = host.host
        self.timeout = timeout

    @property
    def max_command_length(self) -> int:
        return ps.max_command_length(self.transport)

    def fits(self, statements: list[str]) -> bool:
        """Whether `statements` go to this host as one script (see ps.batches)."""
        return ps.fits(statements, self.transport)

    async def run(self, *statements: str) -> list[str]:
        """Run the statements as one script; return one output text per statement
        (its lines joined by newlines; '' when it printed nothing).

        Refuses, before sending anything, a script whose command line is longer than
        the transport carries. Raises Unreachable, AuthenticationFailed, or
        CommandFailed with the host's own error text.
        """
        if not statements:
            return []
        length = ps.command_length(statements)
        if length > self.max_command_length:
            raise CommandFailed(
                self.name,
                f"{len(statements)} statement(s) make a command line of {length} characters; "
                f"{self.transport} carries at most {self.max_command_length} "
                "(send them in batches: powershell.batches)",
            )
        result = await self._execute(ps.script(*statements))
        return read_answer(self.name, len(statements), result)

    async def run_one(self, statement: str) -> str:
        return (await self.run(statement))[0]

    async def run_groups(self, groups: list[list[str]]) -> list[list[str]]:
        """Run groups of statements in as few scripts as fit the command line (a group
        is never cut); one output list per group."""
        out: list[list[str]] = []
        for batch in ps.batch_groups(groups, self.transport):
            lines = await self.run(*[st for g in batch for st in g])
            i = 0
            for g in batch:
                out.append(lines[i : i + len(g)])
                i += len(g)
        return out

    @abc.abstractmethod
    async def _execute(self, script_text: str) -> ExecResult:
        """Send the script; translate transport errors into the error tree."""


def reads_answers(
    fn: Callable[Concatenate[HostDriver, P], Awaitable[R]],
) -> Callable[Concatenate[HostDriver, P], Awaitable[R]]:
    """For a fact or operation over a host: an answer its parsers cannot read whole
    (ps.BadOutput) is that host's CommandFailed, so one bad host stays one bad host; so
    is a value a builder refuses to put on a command line (ps.UnsafeValue: a name from
    the inventory, say), which is never sent."""

    @functools.wraps(fn)
    async def wrapper(drv: HostDriver, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(drv, *args, **kwargs)
        except ps.BadOutput as e:
            raise CommandFailed(drv.name, f"answer that cannot be read whole: {e}") from None
        except ps.UnsafeValue as e:
            raise CommandFailed(drv.name, f"not sent: {e}") from None

    return wrapper
