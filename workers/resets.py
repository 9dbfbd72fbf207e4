"""A control, and under `identity.require_signed` every run of the pair, acts once: no
activity that acts runs for a reset of such a run, nor for a child of one.

Anyone who reaches Temporal can reset a workflow run (`temporal workflow reset`, the Web
UI): the new run replays the old one's history up to a point and goes on from there. A
reset run would act again on what its first run was given once: a signed start or
control, a gate's or a break-glass override's approvals (docs/operators/two-person.md).
A check in the workflow cannot refuse it, since a reset to a point after the check
replays the check's answer; so the worker refuses here, before each activity of such a
run whose start event was written for another run (its `original_execution_run_id`,
which the server sets when it resets a run and no client can choose; a run's own
continuation keeps its own), or whose parent (or the parent's parent) is such a run: a
reset run's children (a control's client switches, a run's client batches, an
unplanned switch's fence) are fresh runs, and would act for it.

The activities that only read (READS) still run, so that a reset run reaches its own
checks and is refused by them, saying why (and tells people, `notify`). Each run's
first event is read once and the verdict kept (RUNS_KEPT runs). An ancestor whose
history the server no longer keeps (a fence that outlived its run's retention) cannot be
read, and is taken as no reset. Every worker of the pair, its site workers included,
must run this check with the same inventory (`identity`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from inventory.models import Inventory
from wire.history import first_event
from workflows.kinds import KINDS

# The workflow types whose runs act once (a reset of one, or a child of a reset one, acts
# on nothing): always (a control and the client switches it starts; a fence, which only
# an unplanned switch starts: a reset one gives up at its first try), and where the pair
# takes only signed acts (every act of its runs is someone's, proven).
ACT_ONCE = ("control", "client-switch", "fence")
SIGNED_ACT_ONCE = (*KINDS, "client-batch")
# What a run does that acts on no device: reads before it acts (the workflows' BOOTSTRAP
# activities), waiting for a client batch an earlier run of its chain started, telling
# people.
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
        "dsm_asset_counts",
        "client_batch_result",
        "notify",
    }
)
RUNS_KEPT = 256
# How far up a run's parents are read (a client switch of a control: 1; a batch of a
# run, a fence of an unplanned switch: 1).
ANCESTORS = 3


def acting_once(inv: Inventory) -> frozenset[str]:
    """The workflow types whose reset runs the worker of `inv`'s pair refuses."""
    return frozenset(ACT_ONCE + (SIGNED_ACT_ONCE if inv.identity.require_signed else ()))


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
        # run id -> why it may not act ("": it may)
        self.verdicts: OrderedDict[str, str] = OrderedDict()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NoResetInbound(next, self)

    async def check(self, workflow_id: str, run_id: str) -> None:
        """Refused (not retried) when the run, or a run above it, is a reset."""
        why = await self.reset_in_chain(workflow_id, run_id, ANCESTORS)
        if why:
            raise ApplicationError(
                f"refused: {why}: it acts once (workers/resets.py); start it again",
                type="Refused",
                non_retryable=True,
            )

    async def reset_in_chain(self, workflow_id: str, run_id: str, above: int) -> str:
        """Why the run may not act (it, or one of its `above` parents, is a reset), or ""."""
        known = self.verdicts.get(run_id)
        if known is not None:
            return known
        first = await first_event(self.temporal, workflow_id, run_id)
        why = ""
        if first is not None:
            original, parent = first
            if original != run_id:
                why = f"the {workflow_id} run ({run_id}) is a reset of run {original}"
            elif parent is not None and parent.run_id and above > 0:
                up = await self.reset_in_chain(parent.workflow_id, parent.run_id, above - 1)
                why = f"{up} (it started the {workflow_id} run {run_id})" if up else ""
        self.verdicts[run_id] = why
        while len(self.verdicts) > RUNS_KEPT:
            self.verdicts.popitem(last=False)
        return why
