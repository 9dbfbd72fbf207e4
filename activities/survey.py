"""The site survey's activities (`amsm survey`): one host's facts read through recording
drivers, every answer kept (bounded) and scanned for the worker's secrets, and the
register's verdicts. Facts only: nothing here changes a device (tests/unit/test_rooms.py
keeps this module away from drivers/operations/)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from temporalio import activity

from activities.drivers.errors import AuthenticationFailed, Unreachable
from activities.support import FamilyActivities
from activities.surveys import register
from activities.surveys.facts import DSM_FACTS, host_facts, read_dsm_fact, read_host_fact
from activities.surveys.models import (
    ANSWER_BOUND,
    HOST_BOUND,
    FactRecord,
    HostSurvey,
    SurveyTarget,
)
from activities.surveys.recording import RecordingDsm, RecordingHost
from activities.surveys.replay import describe_error
from activities.surveys.secrets import held_secrets, withhold

# A host that does not let the worker in answers no later fact either: the survey says
# so once instead of waiting for each.
NO_ENTRY = (Unreachable, AuthenticationFailed)
# What an answer is cut to when a host's answers together pass HOST_BOUND.
CUT_TO = 1024


def bounded(records: list[FactRecord]) -> list[FactRecord]:
    """The records, each reading kept up to ANSWER_BOUND characters of JSON, and all of
    them under HOST_BOUND: the longest answers cut to CUT_TO first (marked cut)."""
    for r in records:
        if r.expected is not None and len(json.dumps(r.expected)) > ANSWER_BOUND:
            r.expected, r.expected_truncated = None, True
    size = sum(len(r.model_dump_json()) for r in records)
    answers = sorted(
        (e for r in records for e in r.exchanges), key=lambda e: len(e.stdout), reverse=True
    )
    for e in answers:
        if size <= HOST_BOUND or len(e.stdout) <= CUT_TO:
            break
        size -= len(e.stdout) - CUT_TO
        e.stdout, e.stdout_truncated = e.stdout[:CUT_TO], True
    return records


class SurveyActivities(FamilyActivities):
    @activity.defn(name="survey_host")
    async def survey_host(self, inp: SurveyTarget) -> HostSurvey:
        """Read every fact of the host's role through recording drivers and return the
        answers (each stdout/stderr bounded, none holding a secret the worker holds) and
        the register's verdicts. Changes nothing on the host; a fact that raises is
        recorded with its error, and the survey goes on."""
        self.ctx.check_pair(inp.pair)
        out = HostSurvey(
            host=inp.host,
            role=inp.role,
            side=inp.side,
            time=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        if inp.role == "dsm":
            # pyodbc blocks: the DSM's reads run in a thread, as the DSM activities' do.
            records = await asyncio.to_thread(self._dsm, inp, out)
        else:
            records = await self._host(inp, out)
        secrets = held_secrets(self.inv, self.ctx.creds)
        out.facts = bounded([withhold(r, secrets) for r in records])
        out.assumptions = register.evaluate(out.facts, self.inv, inp)
        return out

    async def _host(self, inp: SurveyTarget, out: HostSurvey) -> list[FactRecord]:
        host = self.inv.host(inp.host)
        out.transport = host.transport
        drv = RecordingHost(self.ctx.host(host))
        records: list[FactRecord] = []
        for fact in host_facts(inp):
            for variant, args in fact.calls(self.inv, inp):
                drv.log = []
                rec = FactRecord(
                    fact=fact.name, host=inp.host, variant=variant, args=args, doc=fact.doc
                )
                try:
                    rec.expected = await read_host_fact(fact, drv, self.inv, inp, args)
                except Exception as e:  # a fact that raises is the survey's finding
                    rec.expected_error = describe_error(e)
                    if isinstance(e, NO_ENTRY):
                        rec.exchanges = drv.log
                        out.error = rec.expected_error
                        return [*records, rec]
                rec.exchanges = drv.log
                records.append(rec)
                if fact.name == "powershell_version" and rec.expected:
                    out.powershell = ".".join(str(p) for p in rec.expected)
                if fact.name == "os_version" and isinstance(rec.expected, dict):
                    out.os = f"{rec.expected.get('caption')} {rec.expected.get('version')}"
        return records

    def _dsm(self, inp: SurveyTarget, out: HostSurvey) -> list[FactRecord]:
        side = inp.side or "X"
        d = self.inv.sides[side].dsm
        out.transport = "odbc"
        drv = RecordingDsm(self.ctx.dsm(side))
        records: list[FactRecord] = []
        for fact in DSM_FACTS:
            if d.profile not in fact.profiles:
                continue
            drv.log = []
            rec = FactRecord(
                fact=fact.name, host=inp.host, args={"profile": d.profile}, doc=fact.doc
            )
            try:
                with drv.session() as sql:
                    rec.expected = read_dsm_fact(fact, drv.profile, sql)
            except Exception as e:  # recorded, as for a host
                rec.expected_error = describe_error(e)
                rec.statements = drv.log
                if isinstance(e, NO_ENTRY):
                    out.error = rec.expected_error
                    return [*records, rec]
            rec.statements = drv.log
            records.append(rec)
            if fact.name == "sql_version" and isinstance(rec.expected, dict):
                out.sql_version = str(rec.expected.get("productversion"))
        return records
