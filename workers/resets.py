"""A control, and under `identity.require_signed` every run of the pair, acts once: no
activity that acts runs for a reset of such a run.

Anyone who reaches Temporal can reset a workflow run (`temporal workflow reset`, the Web
UI): the new run replays the old one's history up to a point and goes on from there. A
reset run would act again on what its first run was given once: a signed start or
control, a gate's or a break-glass override's approvals (docs/operators/two-person.md).
A check in the workflow cannot refuse it, since a reset to a point after the check
replays the check's answer; so the worker refuses here, before each activity of such a
run whose start event was written for another run (its `original_execution_run_id`,
which the server sets when it resets a run and no client can choose; a run's own
continuation keeps its own). The activities that only read (READS) still run, so that a
reset run reaches its own checks and is refused by them, saying why. The first event
is read once per run and the verdict kept (RUNS_KEPT runs).
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

from inventory.models import Inventory
from workflows.kinds import KINDS

# The workflow types whose runs act once (a reset of one acts on nothing): always, and
# where the pair takes only signed acts (every act of its runs is someone's, proven).
ACT_ONCE = ("control",)
SIGNED_ACT_ONCE = (*KINDS, "client-batch", "client-switch")
# What a run reads before it acts, changing nothing (the workflows' BOOTSTRAP activities).
READS = frozenset(
    {
        "get_timing",
        "get_capabilities",
        "probe_pair",
        "pair_run_state",
        "runs_since",
        "schedule_lineage",
        "fences_waiting",
        "new_tag",
        "check_plan",
    }
)
RUNS_KEPT = 256


def acting_once(inv: Inventory) -> frozenset[str]:
    """The workflow types whose reset runs the worker of `inv`'s pair refuses."""
    return frozenset(ACT_ONCE + (SIGNED_ACT_ONCE if inv.identity.require_signed else ()))


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
        if (
            info.workflow_type in self.outer.types
            and info.activity_type not in READS
            and info.workflow_id
            and info.workflow_run_id
        ):
            await self.outer.check(info.workflow_id, info.workflow_run_id)
        return await super().execute_activity(input)


class NoResetInterceptor(Interceptor):
    def __init__(self, temporal: Client, types: frozenset[str]) -> None:
        self.temporal = temporal
        self.types = types  # acting_once
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
                f"refused: this {workflow_id} run ({run_id}) is a reset of run {first}: it "
                "acts once (workers/resets.py); start it again",
                type="Refused",
                non_retryable=True,
            )
