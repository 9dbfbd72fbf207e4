"""A control acts once: no activity runs for a reset of a control run.

Anyone who reaches Temporal can reset a workflow run (`temporal workflow reset`, the Web
UI): the new run replays the old one's history up to a point and goes on from there. A
reset `control` run would act again on what its first run was given once: a signed
control's intent, a break-glass override's approvals (docs/operators/two-person.md). A
check in the workflow cannot refuse it, since a reset to a point after the check replays
the check's answer; so the worker refuses here, before each activity of a `control` run
whose start event was written for another run (its `original_execution_run_id`, which
the server sets when it resets a run and no client can choose). The first event is read
once per run and the verdict kept (RUNS_KEPT runs).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

# The workflow types whose runs act once (a reset of one acts on nothing).
ACT_ONCE = ("control",)
RUNS_KEPT = 256


async def first_run_id(temporal: Client, workflow_id: str, run_id: str) -> str:
    """The run id the run's start event was written for: another than its own for a
    reset (the first event alone is read)."""
    req = GetWorkflowExecutionHistoryRequest(
        namespace=temporal.namespace,
        execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        maximum_page_size=1,
    )
    page = await temporal.workflow_service.get_workflow_execution_history(req)
    first = page.history.events[0]
    return first.workflow_execution_started_event_attributes.original_execution_run_id


class _NoResetInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, outer: NoResetInterceptor) -> None:
        super().__init__(next)
        self.outer = outer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.workflow_type in ACT_ONCE and info.workflow_id and info.workflow_run_id:
            await self.outer.check(info.workflow_id, info.workflow_run_id)
        return await super().execute_activity(input)


class NoResetInterceptor(Interceptor):
    def __init__(self, temporal: Client) -> None:
        self.temporal = temporal
        self.verdicts: OrderedDict[str, str] = OrderedDict()  # run id -> its first run id

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NoResetInbound(next, self)

    async def check(self, workflow_id: str, run_id: str) -> None:
        """Refused (not retried) when the run is a reset of another run."""
        first = self.verdicts.get(run_id)
        if first is None:
            first = await first_run_id(self.temporal, workflow_id, run_id)
            self.verdicts[run_id] = first
            while len(self.verdicts) > RUNS_KEPT:
                self.verdicts.popitem(last=False)
        if first != run_id:
            raise ApplicationError(
                f"refused: this {workflow_id} run ({run_id}) is a reset of run {first}: a "
                "control acts once; run the control again",
                type="Refused",
                non_retryable=True,
            )
