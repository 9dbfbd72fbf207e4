"""readiness: one check of the readiness watch (`amsm readiness on`), started by the pair's
Temporal Schedule (`amsm-<pair>-readiness`). It runs the site check (`pair-check`, as a
child), reads the verdict of the check before (an activity: `since` goes on from it) and
returns its own verdict (ready, how many problems, since when), which is where the watch
keeps it (activities/readiness.py); the worker's gauge is set from it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.readiness import (
        NAMED,
        Readiness,
        ReadinessActivities,
        ReadinessInput,
        ReadinessRecord,
        carry_since,
    )
    from inventory.models import pair_workflow_id
    from workflows.check import CheckResult, PairCheckWorkflow
    from workflows.checklist import describe_failure
    from workflows.models import CheckInput

RECORD: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_attempts=5),
}


def verdict_of(result: CheckResult) -> tuple[bool, int, int, int, list[str]]:
    named = [f"{p.host}: {p.check}" for p in result.problems[:NAMED]]
    return result.ready, len(result.problems), len(result.warnings), result.hosts, named


@workflow.defn(name="readiness")
class ReadinessWorkflow:
    @workflow.run
    async def run(self, inp: ReadinessInput) -> Readiness:
        wid = workflow.info().workflow_id
        # The schedule gives each check the id `amsm-<pair>-readiness-<when it was due>`:
        # its site check runs as `amsm-<pair>-check-readiness-<when>`, beside any run.
        prefix = pair_workflow_id(inp.pair)
        child = f"{prefix}-check-{wid.removeprefix(prefix + '-')}"
        error: str | None = None
        try:
            result = await workflow.execute_child_workflow(
                PairCheckWorkflow.run,
                CheckInput(pair=inp.pair, initiator="readiness"),
                id=child,
            )
            ready, problems, warnings, hosts, named = verdict_of(result)
        except ChildWorkflowError as e:
            # Fail closed: a check that did not run says nothing is ready.
            error = describe_failure(e)
            ready, problems, warnings, hosts, named = False, 1, 0, 0, []
        now = workflow.now()
        last = await workflow.execute_activity_method(
            ReadinessActivities.last_readiness, inp, **RECORD
        )
        verdict = Readiness(
            ready=ready,
            problems=problems,
            warnings=warnings,
            hosts=hosts,
            named=named,
            error=error,
            checked_at=now,
            since=carry_since(last, ready, now),
        )
        await workflow.execute_activity_method(
            ReadinessActivities.record_readiness,
            ReadinessRecord(pair=inp.pair, readiness=verdict),
            **RECORD,
        )
        state = "ready" if ready else f"not ready: {problems} problem(s)"
        workflow.set_current_details(
            f"**{inp.pair}**: {state}, since {verdict.since.isoformat(timespec='seconds')}"
        )
        return verdict
