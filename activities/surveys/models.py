"""What a survey carries between the worker, the workflow and the CLI: small pydantic
models, never a secret (every answer is scanned on the worker before it leaves it:
activities/surveys/secrets.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from typing import Any, Literal

from pydantic import BaseModel

from activities.models import CheckRole
from inventory.models import Side

# Each stdout, stderr and SQL cell is kept up to this many characters: a host's answers
# travel in one activity result, under Temporal's 2 MB payload limit. A longer one is
# kept cut and marked `*_truncated` (amsm survey verify does not replay it).
ANSWER_BOUND = 16384
# A host's answers together are kept under this many characters of JSON (each answer cut
# further, largest first, when they are not): one activity result, under 2 MB.
HOST_BOUND = 1_500_000

Verdict = Literal["verified", "contradicted", "could not be read"]


class Exchange(BaseModel):
    """One script sent to a host and its answer, as the transport brought it back."""

    command: list[str]
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    # UTF-8 unless the bytes were not (then latin-1, which keeps every byte).
    stdout_encoding: str = "utf-8"
    stderr_encoding: str = "utf-8"
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    # The transport's own error, when no answer came back (unreachable, refused logon).
    error: str | None = None


class Statement(BaseModel):
    """One SQL statement sent to a DSM and what came back: its rows (cells tagged by
    replay.plain when not JSON), its row count, or the error."""

    statement: str
    params: list[Any] = []
    kind: Literal["query", "execute"] = "query"
    rows: list[list[Any]] | None = None
    rowcount: int | None = None
    truncated: bool = False
    error: str | None = None


class FactRecord(BaseModel):
    """One fact read on one host: what it sent, what came back, what the fact made of it
    (`expected`, JSON) or the error it raised (`expected_error`)."""

    fact: str
    host: str
    variant: str | None = None  # a fact read more than once on a host (per side, per component)
    args: dict[str, Any] = {}
    doc: str = ""
    exchanges: list[Exchange] = []
    statements: list[Statement] = []
    expected: Any = None
    expected_error: str | None = None
    # The reading was longer than ANSWER_BOUND (a volume's whole clip list): not kept.
    expected_truncated: bool = False
    # Not written: the answer held a secret the worker holds (which one is not said).
    withheld: str | None = None

    @property
    def truncated(self) -> bool:
        cut = self.expected_truncated or any(s.truncated for s in self.statements)
        return cut or any(e.stdout_truncated or e.stderr_truncated for e in self.exchanges)


class AssumptionResult(BaseModel):
    id: str
    host: str
    assumption: str
    source: str
    verdict: Verdict
    evidence: str
    # Where contradicted: the inventory setting to change and its value (None: a change
    # on the host, said in `fix`).
    setting: str | None = None
    value: Any = None
    fix: str | None = None


class SurveyTarget(BaseModel):
    pair: str
    host: str
    role: CheckRole
    side: Side | None = None


class HostSurvey(BaseModel):
    host: str
    role: CheckRole
    side: Side | None = None
    transport: str | None = None
    powershell: str | None = None
    os: str | None = None
    sql_version: str | None = None
    time: str = ""  # UTC, when the worker read the host
    # Set when the host was not surveyed at all (its activity failed or was not picked up).
    error: str | None = None
    facts: list[FactRecord] = []
    assumptions: list[AssumptionResult] = []


class HostSummary(BaseModel):
    host: str
    role: CheckRole
    side: Side | None = None
    facts: int = 0
    unread: int = 0  # facts that raised
    withheld: int = 0
    error: str | None = None


class SurveyResult(BaseModel):
    """A line per host and the count of each verdict; each host's answers and verdicts
    are its activity's result, read from the run's history (a whole facility's would
    pass Temporal's 2 MB limit on one payload)."""

    pair: str
    hosts: list[HostSummary]
    counts: dict[str, int] = {}


class SurveyProgress(BaseModel):
    done: int = 0
    total: int = 0


def plain(value: Any, bound: int | None = None) -> Any:
    """`value` as JSON: a fact's parse (dataclasses, tuples, sets, pydantic models) or a
    SQL cell. A cell that JSON has no type for is tagged ({"datetime": "..."}), so a
    replay gives the parser what the ODBC driver gave it."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"), bound)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value), bound)
    if isinstance(value, dict):
        return {str(k): plain(v, bound) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, bound) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v, bound) for v in value)
    if isinstance(value, str):
        return value[:bound] if bound is not None else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    return {"text": str(value)}


def unplain(value: Any) -> Any:
    """A recorded SQL cell back as the ODBC driver gave it (see plain)."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag == "datetime":
            return dt.datetime.fromisoformat(text)
        if tag == "date":
            return dt.date.fromisoformat(text)
        if tag == "decimal":
            return decimal.Decimal(text)
        if tag == "bytes":
            return bytes.fromhex(text)
        if tag == "text":
            return text
    return value
