"""readiness: one check of the readiness watch (`amsm readiness on`), started by the pair's
Temporal Schedule (`amsm-<pair>-readiness`). It runs the site check (`pair-check`, as a
child), reads the verdict of the check before (an activity: `since` goes on from it) and
returns its own verdict (ready, how many problems, since when), which is where the watch
keeps it (activities/readiness.py); the worker's gauge is set from it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.models import PairRef
    from activities.probe import ProbeActivities
    from activities.readiness import (
        ERROR_TEXT,
        NAMED,
        Readiness,
        ReadinessActivities,
        ReadinessRecord,
        carry_since,
    )
    from inventory.models import pair_workflow_id, readiness_schedule_id
    from workflows.check import CheckResult, PairCheckWorkflow
    from workflows.checklist import describe_failure
    from workflows.limits import Bounded, Name, cut
    from workflows.models import CheckInput
    from workflows.notify import PATCH as NOTIFY_PATCH
    from workflows.notify import readiness_message, send

OWN_ID_PATCH = "readiness-own-id"
# What a named problem keeps of what the check found.
FOUND_TEXT = 160


class ReadinessInput(Bounded):
    """The schedule's action input: the pair, and the verdict of the schedule it replaced
    (`amsm readiness on` with a new interval makes it anew), for its first check's
    `since`. Never a secret."""

    pair: Name
    last: Readiness | None = None


RECORD: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_attempts=5),
}


def verdict(
    result: CheckResult | None, error: str | None, last: Readiness | None, now: datetime
) -> Readiness:
    """The check's verdict: its counts and the first problems named, or, for a check that
    did not run (`error`), not ready with one problem, itself (fail closed); `since`
    carried on from the verdict before while `ready` stays."""
    if result is None:
        ready, problems, warnings, hosts, named = False, 1, 0, 0, []
    else:
        ready, problems = result.ready, len(result.problems)
        warnings, hosts = len(result.warnings), result.hosts
        named = [
            f"{p.host}: {p.check}: {cut(p.found, FOUND_TEXT)}" for p in result.problems[:NAMED]
        ]
    return Readiness(
        ready=ready,
        problems=problems,
        warnings=warnings,
        hosts=hosts,
        named=named,
        error=cut(error, ERROR_TEXT) if error is not None else None,
        checked_at=now,
        since=carry_since(last, ready, now),
        next_blackout=cut(result.next_blackout, FOUND_TEXT)
        if result is not None and result.next_blackout
        else None,
    )


@workflow.defn(name="readiness")
class ReadinessWorkflow:
    @workflow.run
    async def run(self, inp: ReadinessInput) -> Readiness:
        wid = workflow.info().workflow_id
        if not wid.startswith(readiness_schedule_id(inp.pair) + "-") and workflow.patched(
            OWN_ID_PATCH
        ):
            # Only the pair's schedule starts a check whose verdict counts (the gauge).
            # (The patch marks the refusal only: a history replayed under another id,
            # as tests/histories are, goes on as recorded.)
            raise ApplicationError(
                f"a readiness check of pair {inp.pair} runs only from its schedule "
                f"{readiness_schedule_id(inp.pair)} (amsm readiness on), not as {wid}",
                non_retryable=True,
            )
        # Its site check runs as `amsm-<pair>-check-readiness-<run id>`, beside any run
        # (the run id, not the id the schedule gives: a replay keeps the run id).
        child = f"{pair_workflow_id(inp.pair)}-check-readiness-{workflow.info().run_id}"
        result: CheckResult | None = None
        error: str | None = None
        try:
            result = await workflow.execute_child_workflow(
                PairCheckWorkflow.run,
                CheckInput(pair=inp.pair, initiator="readiness"),
                id=child,
            )
        except ChildWorkflowError as e:
            error = describe_failure(e)
        before = await workflow.execute_activity_method(
            ReadinessActivities.last_readiness, PairRef(pair=inp.pair), **RECORD
        )
        # The first check of a schedule made anew goes on from the verdict it was given.
        last = before or inp.last
        found = verdict(result, error, last, workflow.now())
        await workflow.execute_activity_method(
            ReadinessActivities.record_readiness,
            ReadinessRecord(pair=inp.pair, readiness=found),
            **RECORD,
        )
        if (last.ready if last else True) != found.ready and workflow.patched(NOTIFY_PATCH):
            await self.tell(inp.pair, found)
        state = "ready" if found.ready else f"not ready: {found.problems} problem(s)"
        workflow.set_current_details(
            f"**{inp.pair}**: {state}, since {found.since.isoformat(timespec='seconds')}"
        )
        return found

    async def tell(self, pair: str, found: Readiness) -> None:
        """The watch turned not ready, or ready again: tell `readiness`, where the
        inventory has `notify` (the first check tells only when it is not ready)."""
        caps = await workflow.execute_activity_method(
            ProbeActivities.get_capabilities, PairRef(pair=pair), **RECORD
        )
        if caps.notify is not None:
            since = found.since.isoformat(timespec="seconds")
            await send(
                pair,
                "readiness",
                *readiness_message(
                    caps.notify, pair, found.ready, found.problems, list(found.named), since
                ),
            )
