"""pair-check: the read-only site check of `amsm check`. One activity per host, all in
parallel, each on the queue of the side it belongs to (the site worker that would do the
work); the findings gathered and named with the steps they would stop (workflows/checks.py).

It runs under its own id (`amsm-<pair>-check-<tag>`), never the pair's one-workflow id,
so it may run beside a switch. A host whose activity fails, or that no worker picks up
in time, is a problem naming the host (fail closed), never left out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.check import READ_ONLY_ROLES, CheckActivities
    from activities.models import ANSWERS, CheckPlan, CheckTarget, Finding, HostCheck, PairRef
    from workflows import blackout
    from workflows.activity_options import BOOTSTRAP
    from workflows.checks import StepRef, steps_stopped
    from workflows.models import CheckInput, CheckProgress
    from workflows.routing import on_site

# A host's reads: the answers check and up to a few more commands (a client: its
# WinRM settings, registry, iSCSI cmdlets, both sides' portals, its targets, V:), each
# bounded by the inventory's operation timeout; the whole activity gets this many.
READS_PER_HOST = 10


class CheckFinding(BaseModel):
    host: str
    check: str
    expected: str
    found: str
    fix: str
    steps: list[StepRef]


class CheckResult(BaseModel):
    pair: str
    ready: bool
    problems: list[CheckFinding]
    warnings: list[CheckFinding]
    hosts: int
    # When the next on-air blackout window begins (or the one on air ends); None
    # without windows (docs/operators/blackout.md).
    next_blackout: str | None = None


def not_read(target: CheckTarget, e: ActivityError) -> HostCheck:
    """A host whose activity failed or was never picked up: one finding naming it."""
    cause = e.cause
    if isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
        text = "no worker of its queue picked the check up in time"
    elif isinstance(cause, TimeoutError):
        text = "its reads did not end in time"
    else:
        text = str(getattr(cause, "message", None) or e)
    return HostCheck(
        host=target.host,
        role=target.role,
        side=target.side,
        checks=[ANSWERS[target.role]],
        findings=[
            Finding(
                host=target.host,
                check=ANSWERS[target.role],
                severity="warning" if target.role in READ_ONLY_ROLES else "problem",
                expected="the host read by the worker of its queue",
                found=f"not read: {text}",
                fix="start the worker for this host's site (amsm worker --site X|Y) "
                "and run the check again",
            )
        ],
    )


@workflow.defn(name="pair-check")
class PairCheckWorkflow:
    def __init__(self) -> None:
        self._progress = CheckProgress()

    @workflow.query
    def progress(self) -> CheckProgress:
        return self._progress

    @workflow.run
    async def run(self, inp: CheckInput) -> CheckResult:
        plan: CheckPlan = await workflow.execute_activity_method(
            CheckActivities.check_plan, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        self._progress = CheckProgress(done=0, total=len(plan.targets))
        reads = READS_PER_HOST * plan.operation_timeout + plan.connect_timeout
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=reads),
            # A host's activity waits this long for a worker of its queue (a site worker
            # that does not run): then the host is a problem, not a wait without end.
            "schedule_to_start_timeout": timedelta(seconds=plan.operation_timeout),
            # A check reports what it finds: a host that does not answer is a finding.
            "retry_policy": RetryPolicy(maximum_attempts=1),
        }

        async def one(target: CheckTarget) -> HostCheck:
            try:
                return await workflow.execute_activity_method(
                    CheckActivities.check_host, target, **options, **on_site(target)
                )
            except ActivityError as e:
                return not_read(target, e)
            finally:
                self._progress.done += 1

        results = await asyncio.gather(*(one(t) for t in plan.targets))
        problems: list[CheckFinding] = []
        warnings: list[CheckFinding] = []
        for r in results:
            for f in r.findings:
                found = CheckFinding(
                    host=f.host,
                    check=f.check,
                    expected=f.expected,
                    found=f.found,
                    fix=f.fix,
                    steps=steps_stopped(f.check, r.side, r.role) if f.severity == "problem" else [],
                )
                (problems if f.severity == "problem" else warnings).append(found)
        return CheckResult(
            pair=inp.pair,
            ready=not problems,
            problems=problems,
            warnings=warnings,
            hosts=len(results),
            next_blackout=blackout.next_sentence(plan.blackout, workflow.now()),
        )
