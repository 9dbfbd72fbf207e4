"""DSM driver on pyodbc: read the database server's mode and replication, change them.

pyodbc blocks, so activities call these methods in a thread. Every operation reads
the DSM first and does nothing when it is already in the wanted state. Each DSM is read
and changed over its own connection only: a DSM's role comes from that DSM.

Every statement is bounded (the driver's `timeout`: the login timeout, and the query
timeout where the ODBC driver honours it, else the profile's own bound), every result
set of a statement is read, and every server error surfaces as an error of the tree
naming the DSM, with the server's number and text.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyodbc

from activities.drivers.credentials import Secret
from activities.drivers.dsm_profiles import (
    DatabaseNotOpen,
    DsmProfile,
    ProfileError,
    Readiness,
    Replicating,
    Row,
    profile_for,
)
from activities.drivers.errors import (
    AuthenticationFailed,
    CommandFailed,
    InterlockRefused,
    TlsRefused,
    Unreachable,
)
from activities.drivers.interlocks import Overrides
from activities.drivers.plans import dsm as plans
from inventory.models import Dsm, Side
from inventory.status import DsmStatus

# SQLSTATE classes: 08 = connection, 28 = authorization, HYT = timeouts.
_UNREACHABLE_STATES = ("08", "HYT00", "HYT01", "IM")
# SQL Server's refusals to open a database, by message number, and the state each names
# (Microsoft Learn, Database engine events and errors 0-999): 922 "Database '%.*ls' is
# being recovered. Waiting until recovery is finished.", 927 "... cannot be opened. It
# is in the middle of a restore.", 942 "... cannot be opened because it is offline."
_NOT_OPEN = {922: "recovering", 927: "restoring", 942: "offline"}
# How often a started job is looked at until it reports running.
_CONFIRM_INTERVAL = 0.2

# pyodbc's text of an ODBC error: `[SQLSTATE] text (native error) (SQLFunction)`, further
# diagnostic records appended as `; [SQLSTATE] text (native error)` (pyodbc
# src/errors.cpp, GetErrorFromHandle).
_PYODBC_ERROR = re.compile(
    r"\[(?P<state>[0-9A-Z]{5})\] (?P<text>.*?) \((?P<native>-?\d+)\) \((?P<func>SQL\w+)\)",
    re.S,
)
# pyodbc's header of a message (Cursor.messages): `[SQLSTATE] (native error)`.
_PYODBC_MESSAGE = re.compile(r"\[(?P<state>[0-9A-Z]{5})\] \((?P<native>-?\d+)\)")
# A TLS handshake the ODBC driver or OpenSSL refused. Microsoft's ODBC driver on Linux
# reports OpenSSL's error inside "SSL Provider: [...]" under SQLSTATE 08001, then "Client
# unable to establish connection" (as it prints them: pyodbc issue #610,
# MicrosoftDocs/sql-docs issue #9240, microsoft/msphpsql issue #1462). ODBC Driver 18
# encrypts by default and checks the server's certificate (Microsoft Learn, "ODBC Driver
# 18 ... major version differences"); OpenSSL 3 refuses TLS 1.0/1.1 at its default
# security level. OpenSSL's reasons (its crypto/err/openssl.txt, SSL_R_*): "certificate
# verify failed", "unsupported protocol", "no protocols available", "legacy sigalg
# disallowed or unsupported" (seen against `openssl s_server -tls1`: tests/unit/
# test_worker_openssl.py), "unsafe legacy renegotiation disabled", "dh key too small",
# "ca md too weak", "wrong version number", "handshake failure"; Windows' own text for
# an untrusted certificate. A server that resets the connection in the handshake is
# "TCP Provider: Error code 0x2746" (10054), which with OpenSSL 3 and an old server is
# the security level again (microsoft/msphpsql issues #1021, #1419).
_TLS_FAILURE = re.compile(
    r"SSL Provider|certificate verify failed|unsupported protocol|no protocols available|"
    r"legacy sigalg disallowed|unsafe legacy renegotiation|dh key too small|"
    r"ca md too weak|wrong version number|handshake failure|"
    r"certificate chain was issued by an authority|TCP Provider: Error code 0x2746",
    re.I,
)


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


def whole_seconds(timeout: float) -> int:
    """ODBC timeouts are whole seconds and 0 means none: never round a bound down to 0."""
    return max(1, math.ceil(timeout))


@dataclass(frozen=True)
class ServerError:
    """One error as the server said it: SQLSTATE, its native number, its text."""

    state: str
    native: int | None
    text: str

    @classmethod
    def of(cls, e: pyodbc.Error) -> ServerError:
        state = str(e.args[0]) if e.args else ""
        raw = str(e.args[1]) if len(e.args) > 1 else str(e)
        m = _PYODBC_ERROR.match(raw)
        if m is None:
            return cls(state, None, raw)
        rest = raw[m.end() :]
        return cls(m["state"], int(m["native"]), m["text"] + rest)


class _Message(Exception):
    """An error the server sent as a message (SQL_SUCCESS_WITH_INFO), not as a failure."""

    def __init__(self, error: ServerError) -> None:
        self.error = error


def _check_messages(messages: list[tuple[str, str | bytes]] | None) -> None:
    # ODBC: a statement of a batch that fails while the batch goes on may come back as
    # SQL_SUCCESS_WITH_INFO (Microsoft Learn, "Multiple Results"); pyodbc then raises
    # nothing and keeps the diagnostic in Cursor.messages. Class 01 is a warning or
    # information (PRINT, "Job ... started successfully."); anything else is an error.
    for header, text in messages or ():
        m = _PYODBC_MESSAGE.match(header)
        state = m["state"] if m else header
        if not state.startswith("01"):
            native = int(m["native"]) if m else None
            raise _Message(ServerError(state, native, str(text)))


class _Session:
    """One DSM connection's cursor, read strictly (profiles' `Sql`)."""

    def __init__(self, cursor: Any) -> None:
        self._cur = cursor

    def _results(self, statement: str, params: tuple[Any, ...]) -> tuple[list[Any], int]:
        try:
            return self._read(statement, params)
        except pyodbc.Error as e:
            # A database the statement needs cannot be opened: its state, for the
            # profile to read as one (DatabaseNotOpen); the driver names it otherwise.
            state = _NOT_OPEN.get(ServerError.of(e).native or 0)
            if state is None:
                raise
            raise DatabaseNotOpen(state, e) from None

    def _read(self, statement: str, params: tuple[Any, ...]) -> tuple[list[Any], int]:
        cur = self._cur
        cur.execute(statement, *params)
        count = cur.rowcount
        sets: list[Any] = []
        # Every result set, to the end: an error of a later statement of the batch
        # (sp_start_job's after a SELECT or a row count) is raised only by the
        # SQLMoreResults that reaches it (pyodbc raises it from nextset(); pyodbc
        # issues #128, #739).
        while True:
            _check_messages(cur.messages)
            sets.append([tuple(r) for r in cur.fetchall()] if cur.description else None)
            if not cur.nextset():
                break
        return sets, count

    def query(self, statement: str, *params: Any) -> list[Row]:
        sets, _ = self._results(statement, params)
        found = [s for s in sets if s is not None]
        if len(found) != 1:
            raise ProfileError(f"expected one result set, got {len(found)}")
        return found[0]

    def execute(self, statement: str, *params: Any) -> int:
        sets, count = self._results(statement, params)
        if any(s is not None for s in sets):
            raise ProfileError("a statement that returns no rows returned some")
        return int(count)


class DsmDriver:
    def __init__(self, dsm: Dsm, side: Side, secret: Secret | None, timeout: float) -> None:
        self.dsm = dsm
        self.side = side
        self.name = dsm.host
        self.profile: DsmProfile = profile_for(dsm)
        self._secret = secret
        self._timeout = timeout

    # -- connection ---------------------------------------------------------------------
    def _conn_str(self) -> str:
        before, after = self.profile.connect_options(self._timeout)
        try:
            odbc = self.profile.connection(self.dsm.odbc)
        except (ProfileError, ValueError) as e:
            raise Unreachable(self.name, f"the ODBC string: {e}") from None
        parts = [p for p in (before, odbc.rstrip(";"), after) if p]
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

    def _redact(self, text: str) -> str:
        if self._secret is not None and self._secret.password:
            for form in {self._secret.password, odbc_value(self._secret.password)}:
                text = text.replace(form, "***")
        return text

    def _server_error(self, err: ServerError, unreachable: bool = False) -> Exception:
        number = f" {err.native}" if err.native is not None else ""
        what = f"{self.profile.server} error{number} (SQLSTATE {err.state or 'none'})"
        text = self._redact(err.text)
        if unreachable or err.state.startswith(_UNREACHABLE_STATES):
            return Unreachable(self.name, f"no answer over ODBC: {what}: {text}")
        return CommandFailed(self.name, what, text)

    def _tls(self, err: ServerError) -> TlsRefused:
        return TlsRefused(
            self.name,
            f"the TLS handshake with {self.profile.server} failed ({err.state}): "
            f"{self._redact(err.text)}. ODBC Driver 18 encrypts and checks the server's "
            "certificate by default, and OpenSSL 3 refuses TLS 1.0/1.1, which SQL Server "
            "2005/2008 speak: see docs/site/sqlserver.md, TLS",
        )

    def _translate(self, e: pyodbc.Error) -> Exception:
        err = ServerError.of(e)
        if err.state.startswith("28"):
            # A fixed text: a driver's message about a login may quote what it was sent.
            user = self._secret.username if self._secret is not None else "(none)"
            return AuthenticationFailed(self.name, f"login refused ({err.state}) for user {user!r}")
        return self._server_error(err, unreachable=isinstance(e, pyodbc.InterfaceError))

    def connect_failed(self, e: pyodbc.Error) -> Exception:
        """What a failure to connect is: a TLS handshake refused (TlsRefused), a login
        refused (AuthenticationFailed), else a DSM that does not answer (Unreachable)."""
        server = ServerError.of(e)
        if server.state.startswith("08") and _TLS_FAILURE.search(server.text):
            return self._tls(server)
        err = self._translate(e)
        # Any failure to connect that is not a refused login is a DSM that does not answer.
        if isinstance(err, CommandFailed):
            err = Unreachable(self.name, f"cannot connect over ODBC: {err.output or err}")
        return err

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        bound = whole_seconds(self._timeout)
        try:
            conn = pyodbc.connect(self._conn_str(), autocommit=True, timeout=bound)
        except pyodbc.Error as e:
            raise self.connect_failed(e) from None
        cursor: pyodbc.Cursor | None = None
        try:
            # SQL_ATTR_QUERY_TIMEOUT of every statement on this connection (pyodbc
            # Connection.timeout); an expired one is SQLSTATE HYT00.
            conn.timeout = bound
            cursor = conn.cursor()
            yield _Session(cursor)
        except pyodbc.Error as e:
            raise self._translate(e) from None
        except DatabaseNotOpen as d:
            # Not read as a state where it came: the server's error, with its number.
            raise self._translate(d.cause) from None  # type: ignore[arg-type]
        except _Message as m:
            raise self._server_error(m.error) from None
        except ProfileError as e:
            raise CommandFailed(self.name, f"the DSM's answer does not read whole: {e}") from None
        finally:
            # The cursor first: the SQLite3 ODBC driver keeps the database files open
            # when a connection is closed with its statement still allocated (found by
            # bench/soak.py: about a hundred files a switch left open in the worker).
            if cursor is not None:
                with suppress(pyodbc.Error):
                    cursor.close()
            conn.close()

    # -- facts ------------------------------------------------------------------------------
    def read(self) -> DsmStatus:
        """Mode, replication, the replicated database's state and, when it is online, the
        asset count, from this DSM itself (a database that is restoring is a state: its
        count is None). Raises Unreachable when it does not answer, CommandFailed when an
        answer cannot be read whole."""
        with self._session() as sql:
            mode, since = self.profile.read_mode(sql)
            rep = self.profile.read_replication(sql)
            assets = self.profile.assets(sql)
        return DsmStatus(
            host=self.name,
            side=self.side,
            mode=mode,
            mode_since=since,
            replication=rep.state,
            role=rep.role,
            asset_count=assets.count,
            database_state=assets.state,
        )

    def readiness(self) -> Readiness:
        """What the DSM lacks for the steps: its Agent jobs, the login's rights (read
        only). Raises like read()."""
        with self._session() as sql:
            return self.profile.readiness(sql)

    def replicating(self) -> Replicating:
        with self._session() as sql:
            return self.profile.read_replication(sql)

    def status(self) -> DsmStatus:
        """Like read(), but a DSM that does not answer is a status, not an error."""
        try:
            return self.read()
        except (Unreachable, AuthenticationFailed, CommandFailed) as e:
            return DsmStatus(host=self.name, side=self.side, reachable=False, error=str(e))

    # -- operations -------------------------------------------------------------------------
    def set_mode(self, mode: Literal["main", "backup"]) -> str:
        """Set the DSM to main or backup mode (amsm's mode row, in amsm's own database);
        no-op when it already is.

        Making it main is refused (absolutely) while replication still copies the peer's
        database onto it: rule main-only-when-not-replicated-onto, checked before the
        no-op, so a DSM that reads main while it is replicated onto is never "already
        main". The mode read back decides whether it took (the server's row count does
        not: a trigger's statements count, NOCOUNT counts none); CommandFailed if not.
        """
        before = self.read()
        plan = plans.set_mode(self.name, mode, before.mode, before.replication, before.role)
        if plan.refusal is not None:
            raise InterlockRefused(self.name, plan.refusal.rule, plan.refusal.refusal)
        if plan.nothing_to_do:
            return plan.done
        with self._session() as sql:
            self.profile.set_mode(sql, mode, _now())
        after = self.read()
        if after.mode != mode:
            raise CommandFailed(self.name, f"set {mode} did not take: the DSM reports {after.mode}")
        return plan.done

    def _confirm(self, what: str, reached: Callable[[Replicating], bool]) -> None:
        # sp_start_job and sp_stop_job only ask the Agent (Microsoft Learn: "Instructs SQL
        # Server Agent to ..."); the job runs or ends a moment later. Bounded.
        deadline = time.monotonic() + self._timeout
        while True:
            now = self.replicating()
            if reached(now):
                return
            if time.monotonic() > deadline:
                raise CommandFailed(
                    self.name,
                    f"{what}: not reached within {self._timeout:g} s (replication "
                    f"{now.state}, role {now.role})",
                )
            time.sleep(_CONFIRM_INTERVAL)

    def _start(self, role: Literal["master", "backup"]) -> None:
        with self._session() as sql:
            self.profile.start(sql, role, _now())
        self._confirm(
            f"DSM {self.name} running as replication {role}",
            lambda r: r == Replicating("running", role),
        )

    def join_as_backup(self) -> str:
        """Make this DSM receive replication (its own backup job); no-op when it does.
        Called by the master's start_replication, which checked the interlocks."""
        now = self.replicating()
        plan = plans.join_as_backup(self.name, now.state, now.role)
        if plan.nothing_to_do:
            return plan.done
        if plan.blocked is not None:
            raise CommandFailed(plan.blocked.host, plan.blocked.why)
        self._start("backup")
        return plan.done

    def start_replication(self, peer: DsmDriver, overrides: Overrides | None = None) -> str:
        """Start replication FROM this DSM: its master job, then the peer's backup job,
        each on its own DSM.

        Refused unless this DSM is main and the peer is backup: replication
        overwrites the peer's database, and must never run in split mode. Both rules
        are absolute: naming them in `overrides` changes nothing.
        """
        ov = overrides or Overrides()
        me, other = self.read(), peer.read()
        plan = plans.start_replication(
            self.name, me.mode, me.replication, me.role,
            peer.name, other.mode, other.replication, other.role,
        )  # fmt: skip
        # Both rules are absolute: the refusal raises, whatever `overrides` names.
        if plan.refusal is not None:
            no = plan.refusal
            ov.refuse(self.name, no.rule, no.refusal, no.forced)
        # Blocked before this DSM's master job starts, not after (sp_start_job starts the
        # job at once, Microsoft Learn): a peer running its own master job would leave
        # both DSMs replicating as masters. The plan's sentence, as the dry run says it.
        if plan.blocked is not None:
            raise CommandFailed(plan.blocked.host, plan.blocked.why)
        if me.replication != "running":
            self._start("master")
        # The master's part as planned; the peer's as it reads now (its own plan).
        mine = plan.items[0]
        return f"{mine if isinstance(mine, str) else mine.done}; {peer.join_as_backup()}"

    def _stop(self, role: Literal["master", "backup"]) -> None:
        try:
            with self._session() as sql:
                self.profile.stop(sql, role, _now())
        except CommandFailed:
            # It may have ended between the read and the stop (SQL Server refuses to stop
            # a job that is not running, error 22022): that is the state wanted.
            if self.replicating().state == "running":
                raise
        # Not waited for here: the Agent lets the running step finish first (Microsoft
        # Learn, sp_stop_job), which can outlast a query; the activity waits for it.

    def stop_replication(self, peer: DsmDriver | None = None) -> str:
        """Stop replication on this DSM and, given its peer, the peer's backup
        replication too (the manual: stopping on the main stops the backup's processes).
        Without a peer (it is lost), only this DSM's own.

        This DSM's job is stopped before the peer is read: a peer that does not answer
        leaves this DSM's replication stopped (and the step failed), and the peer's part
        is decided from what it reads after the main's job was told to stop."""
        me = self.replicating()
        own = plans.stop_replication(self.name, me.state, me.role)
        if own.changes:
            self._stop("backup" if me.role == "backup" else "master")
        if peer is None or me.role == "backup":
            return own.done
        theirs = peer.replicating()
        plan = plans.stop_replication(
            self.name, me.state, me.role, peer.name, theirs.state, theirs.role
        )
        # The plan's changes after this DSM's own are the peer's.
        if plan.changes[len(own.changes) :]:
            peer._stop("backup")
        return plan.done
