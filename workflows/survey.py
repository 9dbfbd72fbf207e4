"""pair-survey: the read-only site survey of `amsm survey`. The hosts of the site check
(its `check_plan`), one activity per host, all in parallel, each on the queue of the
side it belongs to. Each host's answers and verdicts are its activity's result, which
the CLI reads from the run's history (a whole site's answers could pass Temporal's 2 MB
limit on one payload); the run's result is a line per host and the count of each verdict.

It runs under its own id (`amsm-<pair>-survey-<tag>`), never the pair's one-workflow id.
A host whose activity fails, or that no worker picks up in time, is said so (its
assumptions are not read), never left out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.check import CheckActivities
    from activities.models import CheckPlan, PairRef
    from activities.survey import SurveyActivities
    from activities.surveys.models import (
        HostSummary,
        HostSurvey,
        SurveyProgress,
        SurveyResult,
        SurveyTarget,
    )
    from workflows.activity_options import BOOTSTRAP
    from workflows.models import CheckInput
    from workflows.routing import on_site

# A host's reads: a client's are the most, some 30 scripts (the facts of the drivers and
# the survey's probes, a few per side), each bounded by the operation timeout.
READS_PER_HOST = 40


def not_surveyed(target: SurveyTarget, e: ActivityError) -> HostSurvey:
    cause = e.cause
    if isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
        text = "no worker of its queue picked the survey up in time"
    elif isinstance(cause, TimeoutError):
        text = "its reads did not end in time"
    else:
        text = str(getattr(cause, "message", None) or e)
    return HostSurvey(host=target.host, role=target.role, side=target.side, error=text)


@workflow.defn(name="pair-survey")
class PairSurveyWorkflow:
    def __init__(self) -> None:
        self._progress = SurveyProgress()

    @workflow.query
    def progress(self) -> SurveyProgress:
        return self._progress

    @workflow.run
    async def run(self, inp: CheckInput) -> SurveyResult:
        plan: CheckPlan = await workflow.execute_activity_method(
            CheckActivities.check_plan, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        targets = [SurveyTarget(**t.model_dump()) for t in plan.targets]
        self._progress = SurveyProgress(done=0, total=len(targets))
        reads = READS_PER_HOST * plan.operation_timeout + plan.connect_timeout
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=reads),
            "schedule_to_start_timeout": timedelta(seconds=plan.operation_timeout),
            # A survey reports what it finds: a host that does not answer is said so.
            "retry_policy": RetryPolicy(maximum_attempts=1),
        }

        async def one(target: SurveyTarget) -> HostSurvey:
            try:
                return await workflow.execute_activity_method(
                    SurveyActivities.survey_host, target, **options, **on_site(target)
                )
            except ActivityError as e:
                return not_surveyed(target, e)
            finally:
                self._progress.done += 1

        results = await asyncio.gather(*(one(t) for t in targets))
        return SurveyResult(
            pair=inp.pair,
            hosts=[
                HostSummary(
                    host=r.host,
                    role=r.role,
                    side=r.side,
                    facts=len(r.facts),
                    unread=sum(1 for f in r.facts if f.expected_error is not None),
                    withheld=sum(1 for f in r.facts if f.withheld),
                    error=r.error,
                )
                for r in results
            ],
            counts={
                v: sum(1 for r in results for a in r.assumptions if a.verdict == v)
                for v in ("verified", "contradicted", "could not be read")
            },
        )
