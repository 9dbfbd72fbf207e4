"""One host's findings, built up check by check, and how a failed read is told."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from activities.drivers.errors import CredentialError, DeviceError, DriverError
from activities.drivers.powershell import BadOutput
from activities.models import CheckRole, CheckTarget, Finding, HostCheck

# Hosts no step acts on: a finding about one is a warning (amsm status reads them).
READ_ONLY_ROLES: tuple[CheckRole, ...] = ("nas-ftp", "bridge")

READ_ERRORS = (DriverError, BadOutput, OSError)

T = TypeVar("T")


def not_read(e: Exception) -> str:
    """What a failed read found, with the error's kind (Unreachable, AuthenticationFailed,
    CommandFailed, ...), never a secret: the error tree's texts name hosts only."""
    if isinstance(e, DeviceError):
        return f"{e.kind}: {e}"
    if isinstance(e, CredentialError):
        return f"credentials: {e}"
    return f"{type(e).__name__}: {e}"


class Report:
    """The findings of one host, built up check by check."""

    def __init__(self, target: CheckTarget) -> None:
        self.result = HostCheck(host=target.host, role=target.role, side=target.side)

    @property
    def read_only(self) -> bool:
        """A host no step acts on: what is wrong with it is a warning."""
        return self.result.role in READ_ONLY_ROLES

    def ran(self, check: str) -> None:
        if check not in self.result.checks:
            self.result.checks.append(check)

    async def read(
        self,
        check: str,
        expected: str,
        reading: Awaitable[T],
        fix: str = "see the host's error",
        warning: bool = False,
    ) -> T | None:
        """What a fact read, with `check` counted as run; None when the read failed, the
        failure added as the check's finding (`expected`, what it found: not_read)."""
        try:
            found = await reading
        except READ_ERRORS as e:
            self.add(check, expected, not_read(e), fix, warning)
            return None
        self.ran(check)
        return found

    def add(self, check: str, expected: str, found: str, fix: str, warning: bool = False) -> None:
        self.ran(check)
        self.result.findings.append(
            Finding(
                host=self.result.host,
                check=check,
                severity="warning" if warning else "problem",
                expected=expected,
                found=found,
                fix=fix,
            )
        )
