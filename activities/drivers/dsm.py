"""DSM driver on pyodbc: read the database server's mode and replication, change them.

pyodbc blocks, so activities call these methods in a thread. Every operation reads
the DSM first and does nothing when it is already in the wanted state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import pyodbc

from activities.drivers.credentials import Secret
from activities.drivers.dsm_profiles import PROFILES, DsmProfile
from activities.drivers.errors import (
    RULE_MAIN_NOT_REPLICATED_ONTO,
    RULE_REPLICATION_FROM_MAIN,
    RULE_REPLICATION_PEER_BACKUP,
    AuthenticationFailed,
    CommandFailed,
    InterlockRefused,
    Unreachable,
)
from activities.drivers.interlocks import Overrides
from inventory.models import Dsm, Side
from inventory.status import DsmStatus

# SQLSTATE classes: 08 = connection, 28 = authorization, HYT = timeouts.
_UNREACHABLE_STATES = ("08", "HYT00", "HYT01", "IM")


def odbc_value(value: str) -> str:
    """`value` as one ODBC connection-string value: always in braces, `}` doubled.

    [MS-ODBCSTR] 2.1.2 (learn.microsoft.com/en-us/openspecs/sql_server_protocols/ms-odbcstr/
    55953f0e-2d30-4ad4-8e56-b4207e491409): a braced value is `{` *(nonRCB / "}}") `}`, so a
    value holding `;` or starting with `{` must be braced and a `}` in it doubled; NUL
    (%x00) is in no form of a value. Refused with a fixed text (never the value).
    """
    if "\x00" in value:
        raise ValueError("an ODBC connection-string value cannot hold a NUL character")
    return "{" + value.replace("}", "}}") + "}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DsmDriver:
    def __init__(self, dsm: Dsm, side: Side, secret: Secret | None, timeout: float) -> None:
        self.dsm = dsm
        self.side = side
        self.name = dsm.host
        self.profile: DsmProfile = PROFILES[dsm.profile]
        self._secret = secret
        self._timeout = timeout

    # -- connection ---------------------------------------------------------------------
    def _conn_str(self) -> str:
        parts = [self.dsm.odbc.rstrip(";")]
        if self.profile.connect_options:
            parts.append(self.profile.connect_options)
        if self._secret is not None and self._secret.password is not None:
            user, password = self._secret.username, self._secret.password
            if not self.profile.braces_honoured and ";" in user + password:
                raise AuthenticationFailed(
                    self.name,
                    f"the user name or password holds a ';', which the {self.profile.name} "
                    "profile's ODBC driver would read as the end of the value",
                )
            try:
                uid, pwd = odbc_value(user), odbc_value(password)
            except ValueError:
                raise AuthenticationFailed(
                    self.name, "the user name or password holds a NUL character"
                ) from None
            parts.append(f"UID={uid};PWD={pwd}")
        return ";".join(parts)

    def _translate(self, e: pyodbc.Error) -> Exception:
        state = str(e.args[0]) if e.args else ""
        if state.startswith("28"):
            # A fixed text: a driver's message about a login may quote what it was sent.
            user = self._secret.username if self._secret is not None else "(none)"
            return AuthenticationFailed(self.name, f"login refused ({state}) for user {user!r}")
        text = str(e.args[1]) if len(e.args) > 1 else str(e)
        if self._secret is not None and self._secret.password:
            for form in {self._secret.password, odbc_value(self._secret.password)}:
                text = text.replace(form, "***")
        if state.startswith(_UNREACHABLE_STATES) or isinstance(e, pyodbc.InterfaceError):
            return Unreachable(self.name, f"no answer over ODBC ({state}): {text}")
        return CommandFailed(self.name, f"SQL failed ({state})", text)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            conn = pyodbc.connect(self._conn_str(), autocommit=True, timeout=int(self._timeout))
        except pyodbc.Error as e:
            err = self._translate(e)
            # Any failure to connect that is not a refused login is a DSM that does not answer.
            if isinstance(err, CommandFailed):
                err = Unreachable(self.name, f"cannot connect over ODBC: {err.output or err}")
            raise err from None
        try:
            cur = conn.cursor()
            yield cur
        except pyodbc.Error as e:
            raise self._translate(e) from None
        finally:
            conn.close()

    # -- facts ------------------------------------------------------------------------------
    def read(self) -> DsmStatus:
        """Mode, replication and asset count. Raises Unreachable when the DSM does not answer."""
        with self._cursor() as cur:
            row = cur.execute(self.profile.status).fetchone()
            if row is None:
                raise CommandFailed(self.name, "the DSM has no mode row")
            count = cur.execute(self.profile.asset_count).fetchone()[0]
        mode, since, replication, role = row
        return DsmStatus(
            host=self.name,
            side=self.side,
            mode=mode,
            mode_since=since,
            replication=replication,
            role=role,
            asset_count=int(count),
        )

    def status(self) -> DsmStatus:
        """Like read(), but a DSM that does not answer is a status, not an error."""
        try:
            return self.read()
        except (Unreachable, AuthenticationFailed, CommandFailed) as e:
            return DsmStatus(host=self.name, side=self.side, reachable=False, error=str(e))

    # -- operations -------------------------------------------------------------------------
    def set_mode(self, mode: Literal["main", "backup"]) -> str:
        """Set the DSM to main or backup mode; no-op when it already is.

        Making it main is refused (absolutely) while replication still copies the peer's
        database onto it: rule main-only-when-not-replicated-onto.
        """
        before = self.read()
        if before.mode == mode:
            return f"DSM {self.name} is already {mode}"
        copying = before.replication == "running" and before.role != "master"
        if mode == "main" and (copying or before.replication is None):
            raise InterlockRefused(
                self.name,
                RULE_MAIN_NOT_REPLICATED_ONTO,
                f"replication still copies onto DSM {self.name} (replication "
                f"{before.replication}, {before.role or 'no role'}); stop it first "
                "(amsm replication stop)",
            )
        with self._cursor() as cur:
            cur.execute(self.profile.set_mode, mode, _now())
        after = self.read()
        if after.mode != mode:
            raise CommandFailed(self.name, f"set {mode} did not take: the DSM reports {after.mode}")
        return f"DSM {self.name} set to {mode}"

    def start_replication(self, peer: DsmDriver, overrides: Overrides | None = None) -> str:
        """Start replication FROM this DSM.

        Refused unless this DSM is main and the peer is backup: replication
        overwrites the peer's database, and must never run in split mode. Both rules
        are absolute: naming them in `overrides` changes nothing.
        """
        ov = overrides or Overrides()
        me, other = self.read(), peer.read()
        if me.mode != "main":
            ov.refuse(
                self.name,
                RULE_REPLICATION_FROM_MAIN,
                f"replication starts only from a main DSM; {self.name} is {me.mode}",
                f"DSM {self.name} was {me.mode}",
            )
        if other.mode != "backup":
            ov.refuse(
                self.name,
                RULE_REPLICATION_PEER_BACKUP,
                f"the peer DSM {peer.name} is {other.mode}; replication would overwrite a "
                "main database (split mode)",
                f"the peer DSM {peer.name} was {other.mode}",
            )
        if me.replication == "running" and me.role == "master":
            return f"replication already runs from DSM {self.name}"
        with self._cursor() as cur:
            cur.execute(self.profile.start_replication, _now())
        return f"replication started from DSM {self.name} to {peer.name}"

    def stop_replication(self) -> str:
        """Stop replication on this DSM; the peer's replication processes follow."""
        me = self.read()
        if me.replication == "stopped":
            return f"replication is already stopped on DSM {self.name}"
        with self._cursor() as cur:
            cur.execute(self.profile.stop_replication, _now())
        return f"replication stopped on DSM {self.name}"
