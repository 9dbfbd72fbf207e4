"""One small error tree for every device, whatever the library underneath.

Library exceptions (asyncssh, OSError, pyodbc) are translated at the driver
boundary, so activities and workflows only ever see these. Its root, DriverError, has
three branches: DeviceError (a host said no, or did not answer), ConfigurationError
(what the worker was given cannot be used: a credentials reference, a value no command
line may carry; it names no host and is never worth retrying) and OwnRecordUnreadable
(amsm's own record of an operation under way cannot be read: it names the host the
operation is for, but the host was not asked and did not fail).
"""

from __future__ import annotations

# Interlock rule names, shown to operators and named in refusals (inventory/rules.py
# holds every rule: what it protects and whether it may be overridden).
from inventory.rules import (
    RULE_BROWSE_STOPPED,
    RULE_CLIENT_BRIDGE,
    RULE_INSYNC_STOPPED,
    RULE_MAIN_NOT_REPLICATED_ONTO,
    RULE_PURGE_BACKUP_ONLY,
    RULE_REPLICATION_FROM_MAIN,
    RULE_REPLICATION_PEER_BACKUP,
)

__all__ = [
    "RULE_BROWSE_STOPPED",
    "RULE_CLIENT_BRIDGE",
    "RULE_INSYNC_STOPPED",
    "RULE_MAIN_NOT_REPLICATED_ONTO",
    "RULE_PURGE_BACKUP_ONLY",
    "RULE_REPLICATION_FROM_MAIN",
    "RULE_REPLICATION_PEER_BACKUP",
    "AuthenticationFailed",
    "CommandFailed",
    "ConfigurationError",
    "CredentialError",
    "DeviceError",
    "DriverError",
    "HostNotTrusted",
    "LogonRefused",
    "InterlockRefused",
    "OwnRecordUnreadable",
    "Unreachable",
    "UnsafeValue",
]


class DriverError(Exception):
    """The root of the tree: whatever a driver raises on purpose. `kind` names the branch
    in an ApplicationError's type; `retryable` says whether trying again can help."""

    retryable = False
    kind = "DriverError"


class ConfigurationError(DriverError):
    """What the worker was given cannot be used; no host was asked. Never retried: the
    inventory or the worker's environment must change first."""

    kind = "ConfigurationError"


class CredentialError(ConfigurationError):
    """A credentials reference that cannot be resolved. The text is fixed by
    activities/drivers/credentials.py: never a library's message, which can quote secret
    material."""


class UnsafeValue(ConfigurationError, ValueError):
    """A value that must never reach a PowerShell command line (the builders in
    activities/drivers/powershell.py refuse it). A ValueError too, as it always was."""


class OwnRecordUnreadable(DriverError):
    """What a prior attempt of an activity left for its retry (its heartbeat details)
    cannot be read: written by another build of the worker, or corrupted. amsm's own
    data, not a device's answer: it names the host the operation is for, and the host
    was not asked. Never retried by Temporal (the retry would read the same record);
    the operator's retry of the step starts a new activity, which reads the host
    afresh."""

    kind = "OwnRecordUnreadable"

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.message = message
        super().__init__(f"{host}: {message}")


class DeviceError(DriverError):
    """A device operation did not succeed. `retryable` says whether trying again can help."""

    kind = "DeviceError"

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        self.message = message
        super().__init__(f"{host}: {message}")


class Unreachable(DeviceError):
    """No answer: connection refused or timed out, host rebooting. Worth retrying."""

    retryable = True
    kind = "Unreachable"


class TlsRefused(Unreachable):
    """The TLS handshake was refused (protocol, cipher or certificate): a setting of the
    worker or the server, not a host that is down. Told apart by the site check."""


class AuthenticationFailed(DeviceError):
    """Credentials refused, or the host key does not match known_hosts."""

    kind = "AuthenticationFailed"


class LogonRefused(AuthenticationFailed):
    """The host refused the worker's logon (a 401, SSH's permission denied): wrong
    credentials, or an authentication the host does not take. An authentication failure
    like any other (same kind), told apart by the site check."""


class HostNotTrusted(AuthenticationFailed):
    """The host's identity did not verify: its SSH host key is not the one in
    known_hosts, or its WinRM certificate does not verify against the trusted CAs. An
    authentication failure like any other (same kind), told apart by the site check."""

    def __init__(self, host: str, message: str, what: str) -> None:
        self.what = what  # "host-key" or "certificate"
        super().__init__(host, message)


class InterlockRefused(DeviceError):
    """A safety rule refused the operation before anything was changed."""

    kind = "InterlockRefused"

    def __init__(self, host: str, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(host, f"refused by rule '{rule}': {message}")


class CommandFailed(DeviceError):
    """The device ran the command and reported an error; `output` is its own text."""

    kind = "CommandFailed"

    def __init__(self, host: str, message: str, output: str = "") -> None:
        self.output = output
        super().__init__(host, message + (f": {output.strip()}" if output.strip() else ""))
