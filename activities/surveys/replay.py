"""A survey's answers replayed through the facts that read them (`amsm survey verify`,
tests/unit/test_facts.py): a host driver and a DSM session that answer from the fact
file, once they are asked exactly what was recorded; the fact's own code and the host
driver's reading of the answer run as they do against the host. Also the fact file's
form (the project's facts format, tests/facts/, plus the host's header)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from activities.drivers import powershell as ps
from activities.drivers.dsm_profiles import Row, profile_for
from activities.drivers.errors import CommandFailed, DeviceError
from activities.drivers.host import ExecResult, HostDriver
from activities.surveys.facts import FACTS, read_dsm_fact, read_host_fact
from activities.surveys.kinds import DsmFact
from activities.surveys.models import (
    Exchange,
    FactRecord,
    HostSurvey,
    Statement,
    SurveyTarget,
    unplain,
)
from inventory.models import Host, Inventory

HEADER = ("host", "role", "side", "transport", "powershell", "os", "sql_version", "time")


class Mismatch(Exception):
    """The fact asked other than what was recorded: the file is not this fact's answer
    (the fact's statements changed since the survey, or the file was edited)."""


def describe_error(e: BaseException) -> str:
    if isinstance(e, DeviceError):
        return str(e)
    if isinstance(e, ps.BadOutput):
        return f"answer that cannot be read whole: {e}"
    return f"{type(e).__name__}: {e}"


# -- the fact file ------------------------------------------------------------------------
def fact_file(record: FactRecord, host: HostSurvey) -> dict[str, Any]:
    """One recorded fact in the facts format: its first exchange at the top (command,
    stdout, stderr, exit_code), further ones under `then`; a DSM's statements under
    `statements`; the header of the host; `expected` or `expected_error`."""
    out: dict[str, Any] = {"doc": record.doc, "fact": record.fact, "variant": record.variant}
    out.update({k: getattr(host, k) for k in HEADER})
    out["args"] = record.args
    exchanges = [e.model_dump(exclude_defaults=True) for e in record.exchanges]
    if exchanges:
        out.update(exchanges[0])
        if exchanges[1:]:
            out["then"] = exchanges[1:]
    if record.statements:
        out["statements"] = [s.model_dump(exclude_defaults=True) for s in record.statements]
    if record.expected_error is not None:
        out["expected_error"] = record.expected_error
    else:
        out["expected"] = record.expected
    if record.expected_truncated:
        out["expected_truncated"] = True
    return out


def read_fact_file(data: dict[str, Any], inv: Inventory) -> tuple[FactRecord, SurveyTarget, str]:
    """(the record, its host as a target, its transport) from a fact file."""
    first = {k: data[k] for k in Exchange.model_fields if k in data}
    exchanges = [Exchange(**first)] if "command" in first else []
    exchanges += [Exchange(**e) for e in data.get("then", [])]
    record = FactRecord(
        fact=data["fact"],
        host=data["host"],
        variant=data.get("variant"),
        args=data.get("args", {}),
        doc=data.get("doc", ""),
        exchanges=exchanges,
        statements=[Statement(**s) for s in data.get("statements", [])],
        expected=data.get("expected"),
        expected_error=data.get("expected_error"),
        expected_truncated=bool(data.get("expected_truncated", False)),
    )
    target = SurveyTarget(
        pair=inv.pair, host=data["host"], role=data["role"], side=data.get("side")
    )
    return record, target, data.get("transport") or "ssh"


# What surveys wrote in place of a DSM's ODBC string before they kept its Driver= and
# Database= (client/commands/survey.py site_inventory); not an ODBC string.
OLD_NOT_WRITTEN = "(not written by amsm survey: a connection string)"


def read_survey_inventory(folder: Path) -> Inventory:
    """The inventory a survey wrote beside its facts (DIR/inventory.json). Raises
    OSError or ValueError (pydantic's ValidationError is one) naming what is wrong."""
    data = json.loads((folder / "inventory.json").read_text(encoding="utf-8"))
    for side in (data.get("sides") or {}).values() if isinstance(data, dict) else ():
        dsm = side.get("dsm") if isinstance(side, dict) else None
        if isinstance(dsm, dict) and dsm.get("odbc") == OLD_NOT_WRITTEN:
            dsm["odbc"] = ""
    return Inventory.model_validate(data)


# -- replaying ----------------------------------------------------------------------------
class ReplayedHost(HostDriver):
    def __init__(self, name: str, transport: str, exchanges: list[Exchange]) -> None:
        super().__init__(Host(host=name, address="192.0.2.1", credentials="replay"), 5)
        self.transport = "winrm" if transport == "winrm" else "ssh"
        self.exchanges = exchanges
        self.asked = 0

    async def _execute(self, script_text: str) -> ExecResult:
        if self.asked >= len(self.exchanges):
            raise Mismatch(
                f"the fact asked {self.asked + 1} scripts; the survey recorded {len(self.exchanges)}"
            )
        e = self.exchanges[self.asked]
        self.asked += 1
        if script_text != ps.script(*e.command):
            raise Mismatch(
                f"the fact sent other statements than the survey recorded: {e.command!r:.300}"
            )
        if e.error is not None:
            raise CommandFailed(self.name, f"(recorded) {e.error}")
        return ExecResult(
            e.exit_code if e.exit_code is not None else 0,
            e.stdout.encode(e.stdout_encoding),
            e.stderr.encode(e.stderr_encoding),
        )


class ReplayedSql:
    def __init__(self, name: str, statements: list[Statement]) -> None:
        self.name, self.statements, self.asked = name, statements, 0

    def _next(self, kind: str, statement: str, params: tuple[Any, ...]) -> Statement:
        if self.asked >= len(self.statements):
            raise Mismatch(
                f"the fact sent {self.asked + 1} statements; the survey recorded {len(self.statements)}"
            )
        s = self.statements[self.asked]
        self.asked += 1
        if s.kind != kind or s.statement != statement or s.params != list(params):
            raise Mismatch(
                f"the fact sent another statement than the survey recorded: {s.statement!r:.300}"
            )
        if s.error is not None:
            raise CommandFailed(self.name, f"(recorded) {s.error}")
        return s

    def query(self, statement: str, *params: Any) -> list[Row]:
        s = self._next("query", statement, params)
        return [tuple(unplain(c) for c in r) for r in s.rows or []]

    def execute(self, statement: str, *params: Any) -> int:
        return self._next("execute", statement, params).rowcount or 0


async def replay(data: dict[str, Any], inv: Inventory) -> str | None:
    """None when the fact reads the file's answer as the survey did; else what differs.
    A truncated or withheld answer is not replayed (said so)."""
    record, target, transport = read_fact_file(data, inv)
    fact = FACTS.get(record.fact)
    if fact is None:
        return f"no fact {record.fact!r} in this amsm"
    if record.truncated:
        return "not replayed: an answer was cut at the survey's bound"
    if record.expected_error is not None and not (record.exchanges or record.statements):
        return "not replayed: nothing was answered (the host or DSM was not reached)"
    got: Any = None
    error: str | None = None
    recorded_error = False
    try:
        if isinstance(fact, DsmFact):
            side = target.side or "X"
            sql = ReplayedSql(record.host, record.statements)
            try:
                got = read_dsm_fact(fact, profile_for(inv.sides[side].dsm), sql)
            finally:
                asked, total = sql.asked, len(record.statements)
            recorded_error = any(s.error for s in record.statements)
        else:
            drv = ReplayedHost(record.host, transport, record.exchanges)
            try:
                got = await read_host_fact(fact, drv, inv, target, record.args)
            finally:
                asked, total = drv.asked, len(record.exchanges)
            recorded_error = any(e.error for e in record.exchanges)
    except Mismatch as e:
        return str(e)
    except Exception as e:
        error = describe_error(e)
    if asked != total:
        return f"the fact asked {asked} of the {total} answers the survey recorded"
    if record.expected_error is not None:
        if error is None:
            return f"reads {got!r:.200}; the survey's fact raised: {record.expected_error}"
        # A DSM's or a transport's error went through the driver's translation on the
        # worker; here only whether it raised can be compared.
        if isinstance(fact, DsmFact) or recorded_error or error == record.expected_error:
            return None
        return f"raises {error!r}; the survey's fact raised {record.expected_error!r}"
    if error is not None:
        return f"raises {error}; the survey's fact read {record.expected!r:.200}"
    if not getattr(fact, "volatile", False) and got != record.expected:
        return f"reads {got!r:.200}; the survey's fact read {record.expected!r:.200}"
    return None
