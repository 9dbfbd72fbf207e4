"""Recording drivers: a host driver and a DSM driver that run what the drivers send, as
they send it, and keep every script or statement with its answer for the survey.

They record, never rewrite: a fact read through them sends the same statements as in a
switch (the base's `run` and the DSM driver's session are the drivers' own). What they
keep holds no credential by construction: a host's script is the statements and the
answer (credentials travel in the transport's logon, not in the script), a DSM's
statement is the SQL text and its bound parameters (the credentials are in the
connection string, which is never recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from activities.drivers.dsm_profiles import LabProfile
from activities.drivers.errors import DeviceError
from activities.drivers.host import ExecResult, HostDriver
from activities.surveys.models import ANSWER_BOUND, Exchange, Statement, plain


def _text(data: bytes) -> tuple[str, str, bool]:
    """(text, encoding, truncated), bounded to ANSWER_BOUND characters."""
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # latin-1 maps every byte to one character: the bytes come back exactly.
        text, encoding = data.decode("latin-1"), "latin-1"
    cut = len(text) > ANSWER_BOUND
    return (text[:ANSWER_BOUND] if cut else text), encoding, cut


class RecordingHost(HostDriver):
    """`inner`'s transport, with every exchange kept in `log` (cleared by the caller)."""

    def __init__(self, inner: HostDriver) -> None:
        super().__init__(inner.host, inner.timeout)
        self.inner = inner
        self.transport = inner.transport
        self.log: list[Exchange] = []
        self._statements: list[str] = []

    async def run(self, *statements: str) -> list[str]:
        self._statements = list(statements)
        return await super().run(*statements)

    async def _execute(self, script_text: str) -> ExecResult:
        entry = Exchange(command=self._statements)
        self.log.append(entry)
        try:
            result = await self.inner._execute(script_text)
        except DeviceError as e:
            entry.error = f"{e.kind}: {e}"
            raise
        entry.exit_code = result.exit_status
        entry.stdout, entry.stdout_encoding, entry.stdout_truncated = _text(result.stdout)
        entry.stderr, entry.stderr_encoding, entry.stderr_truncated = _text(result.stderr)
        return result


class RecordingSql:
    """The driver's session on one DSM (profiles' `Sql`), with every statement kept."""

    def __init__(self, sql: Any, log: list[Statement]) -> None:
        self._sql, self.log = sql, log

    def query(self, statement: str, *params: Any) -> list[Any]:
        entry = Statement(statement=statement, params=[plain(p) for p in params])
        self.log.append(entry)
        try:
            rows = self._sql.query(statement, *params)
        except Exception as e:
            entry.error = f"{type(e).__name__}: {e}"
            raise
        kept = [[plain(c, ANSWER_BOUND) for c in r] for r in rows]
        entry.truncated = any(
            isinstance(c, str) and len(c) >= ANSWER_BOUND for r in kept for c in r
        )
        entry.rows = kept
        return rows

    def execute(self, statement: str, *params: Any) -> int:
        # The survey runs no statement that changes a DSM: only the drivers' reads and
        # the probes' SELECTs. One that calls execute is recorded and refused, but for
        # the lab profile's read of its asset count, which attaches the replicated
        # database read-only (sqlite.org, "URI Filenames": mode=ro) and changes nothing.
        entry = Statement(statement=statement, params=[plain(p) for p in params], kind="execute")
        self.log.append(entry)
        if _read_only_attach(statement, params):
            try:
                entry.rowcount = self._sql.execute(statement, *params)
            except Exception as e:
                entry.error = f"{type(e).__name__}: {e}"
                raise
            return entry.rowcount
        entry.error = "refused: the survey sends no statement that changes a DSM"
        raise PermissionError(entry.error)


def _read_only_attach(statement: str, params: tuple[Any, ...]) -> bool:
    uri = params[0] if len(params) == 1 else None
    return (
        statement == LabProfile.ATTACH
        and isinstance(uri, str)
        and uri.startswith("file:")
        and uri.endswith("?mode=ro")
        and uri.count("?") == 1
    )


class RecordingDsm:
    """The DSM driver's own sessions (its login, its timeouts, its strict reading of every
    result set), every statement kept in `log` (cleared by the caller)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.profile = inner.profile
        self.log: list[Statement] = []

    @contextmanager
    def session(self) -> Iterator[RecordingSql]:
        with self.inner._session() as sql:
            yield RecordingSql(sql, self.log)
