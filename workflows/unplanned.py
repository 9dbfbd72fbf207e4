"""The unplanned switch: the main side A is lost (down or unreachable), B takes over.

The same 18 steps as a planned switch, with three differences:
- steps that act on the lost side (stop replication on A, A's DSM and SmartBins to
  backup, AllSync on A's NAS head) are tried once with `timing.lost_side_timeout`; a
  failure is recorded as `skipped: side lost` with the device's error, not a stop, and
  starts the fence (workflows/fence.py) that fences A the moment it answers again;
- clients that answer are switched; the ones that do not are listed, to be switched
  later with `amsm clients switch`;
- replication, InSync and AllSync are not started: A may hold changes B never got. The
  run ends with the pair split-brained on purpose, and the next step is a restore with
  B main, once A is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import (
    TimeoutError as ActivityTimeout,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.dsm import DsmActivities
    from activities.lost_side import LostSideActivities
    from activities.models import (
        DsmModeInput,
        SideInput,
        SideRunInput,
    )
    from activities.smartbins import SmartBinsActivities
    from activities.sync_tools import SyncToolActivities
    from inventory.models import Side, fence_workflow_id, other
    from inventory.status import PairStatus
    from workflows import outcomes, preconditions, search
    from workflows.activity_options import A, DeviceOp, lost_side_try
    from workflows.base import KindWorkflow
    from workflows.checklist import describe_failure
    from workflows.fence import FenceWorkflow
    from workflows.models import FenceInput, FenceRef, StepState, SwitchInput
    from workflows.routing import on_site
    from workflows.steps import NOT_UNPLANNED


# Runs started before a taken fence id was replaced by a new one replay trusting it.
FENCE_ID_PATCH = "fence-own-id"
# An act on the lost side that the worker refused (a reset run) fails its step instead
# of being taken for the side lost (which would start a fence); marked only then.
REFUSED_NOT_LOST_PATCH = "refused-not-side-lost"


Action = Callable[[StepState], Awaitable[str]]


@dataclass
class SwitchPlan:
    """What a planned and an unplanned switch do differently. The order of the steps,
    and the steps on the new main side and the shared hosts, are the switch's own
    (SwitchWorkflow.run)."""

    stop_replication: Action
    dsm_a_backup: Action
    stop_insync: dict[str, Any]  # runner.run's keyword arguments for the manual step
    stop_allsync: dict[str, Any]
    smartbins_a_backup: Action
    clients: Action
    finish: Callable[[], Awaitable[str]]  # the steps after verify-{b}, and the run's message


class UnplannedSwitch(KindWorkflow):
    """The unplanned variant of SwitchWorkflow's run."""

    target: Side = "Y"

    def unplanned_plan(self, inp: SwitchInput, status: PairStatus) -> SwitchPlan:
        """Refuse what an unplanned switch cannot do, pass over the steps it does not do,
        and say how it does the others."""
        b = self.target = inp.to
        a = other(b)
        pair = inp.pair
        what = self.kind.what(b, True)
        c = self.steps.checklist
        c.title = f"Unplanned switch {a} -> {b} ({pair}): {a} lost"
        c.unplanned_reason = inp.reason
        self.require(what, preconditions.unplanned_switch(status, b, inp.reason))
        not_now = outcomes.not_unplanned_note(a, b)
        for step_id in NOT_UNPLANNED:
            if c.step(step_id).status == "pending":
                self.steps.pass_over(step_id, not_now)
        # Clients that did not answer (kept in the step, for a run that continues as new).
        left: list[str] = list(c.step("switch-clients").items or [])

        async def stop_replication(step: StepState) -> str:
            msg = await self.on_lost(
                DsmActivities.dsm_stop_replication, SideInput(pair=pair, side=a)
            )(step)
            if step.status == "skipped":
                own = await self.act(
                    LostSideActivities.dsm_stop_own_replication, SideInput(pair=pair, side=b)
                )
                step.note = f"{step.note}; on {b}: {own}"
                step.reason = f"{step.reason}; on {b}: {own}"
            return msg

        async def allsync_off(step: StepState) -> str:
            if self.caps.allsync_service:
                arg = SideRunInput(pair=pair, side=a, running=False)
                return await self.on_lost(SyncToolActivities.allsync_run, arg)(step)
            where = SideInput(pair=pair, side=a)
            try:
                st = await workflow.execute_activity_method(
                    SyncToolActivities.allsync_state,
                    where,
                    **lost_side_try(self.timing),
                    **on_site(where),
                )
            except ActivityError as e:
                self.refused_not_lost(e)
                return await self.side_lost(step, self.why_lost(e))
            if st.running:
                raise ApplicationError(
                    f"AllSync still runs on {st.host}: stop it by hand, then retry this step",
                    type="CommandFailed",
                    non_retryable=True,
                )
            return f"AllSync is not running on {st.host}"

        async def clients(step: StepState) -> str:
            now = await self.probe()
            left[:] = [f"{x.host} ({x.status})" for x in now.clients if x.side is None]
            step.items = list(left)
            msg = await self.switch_clients(step, self.clients_on(now, a), b)
            if left:
                msg += f"; not switched (did not answer): {', '.join(left)}"
            return msg

        async def finish() -> str:
            msg = (
                f"unplanned switch done: {b} main. The pair is split-brained on purpose: "
                f"{a}'s database may hold changes {b} never got, so replication, InSync and "
                f"AllSync were not started."
            )
            if c.fence is not None:
                msg += f" {a} is fenced the moment it answers (amsm fence)."
            if left:
                hosts = " ".join(h.split(" ")[0] for h in left)
                msg += f" Not switched: {', '.join(left)}; later: amsm clients switch --to {b} {hosts}."
            return msg + f" When {a} is back: amsm start restore --main {b}"

        return SwitchPlan(
            stop_replication=stop_replication,
            dsm_a_backup=self.on_lost(
                DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=a, mode="backup")
            ),
            stop_insync=self.insync_step(False),
            stop_allsync={"automatic": allsync_off},
            smartbins_a_backup=self.on_lost(
                SmartBinsActivities.smartbins_set_backup, SideInput(pair=pair, side=a)
            ),
            clients=clients,
            finish=finish,
        )

    # -- the lost side ---------------------------------------------------------------------
    def on_lost(self, activity: DeviceOp[A], arg: A) -> Callable[[StepState], Awaitable[str]]:
        """An action on the lost side: one try; a failure skips the step, not the run."""

        async def action(step: StepState) -> str:
            try:
                r = await workflow.execute_activity_method(
                    activity, arg, **lost_side_try(self.timing), **on_site(arg),
                )  # fmt: skip
            except ActivityError as e:
                self.refused_not_lost(e)
                return await self.side_lost(step, self.why_lost(e))
            return r.message

        return action

    def refused_not_lost(self, e: ActivityError) -> None:
        """An act the worker refused (a reset run, workers/resets.py) says nothing of the
        lost side: the step fails with the refusal, and no fence starts. Asked only of a
        refusal, which histories from before it never had."""
        cause = e.cause
        if (
            isinstance(cause, ApplicationError)
            and cause.type == "Refused"
            and workflow.patched(REFUSED_NOT_LOST_PATCH)
        ):
            raise e

    def why_lost(self, e: ActivityError) -> str:
        if isinstance(e.cause, ActivityTimeout):
            return f"no answer within {self.timing.lost_side_timeout:g} s ({e.cause.message})"
        return describe_failure(e)

    async def side_lost(self, step: StepState, error: str) -> str:
        step.status, step.outcome = "skipped", "side-lost"
        step.reason = outcomes.side_lost_reason(error)
        step.note = outcomes.skipped_note(step.reason)
        workflow.logger.warning(
            "%s skipped, side lost: %s", step.id, error, extra={"step": step.id}
        )
        await self.start_fence()
        return "not done: the side is lost"

    async def start_fence(self) -> None:
        c = self.steps.checklist
        if c.fence is not None:
            return
        lost: Side = other(self.target)
        fid = fence_workflow_id(self.pair)
        arg = FenceInput(
            pair=self.pair,
            side=lost,
            reason=c.unplanned_reason or "",
            started_by=c.initiator,
            switch_run_id=c.run_id,
        )
        run_id = ""
        for tries in range(1, 4):
            try:
                handle = await workflow.start_child_workflow(
                    FenceWorkflow.run,
                    # The fence takes its input raw (it refuses a bad one instead of
                    # failing its task): the same payload the input makes by itself.
                    RawValue(workflow.payload_converter().to_payloads([arg])[0]),
                    id=fid,
                    # The fence outlives the switch: it waits for the lost side to come back.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    # Listed by `amsm runs --kind fence`, and found by `amsm fence`.
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(search.PAIR, self.pair),
                            SearchAttributePair(search.KIND, "fence"),
                            SearchAttributePair(search.INITIATOR, c.initiator),
                            SearchAttributePair(search.STATE, "running"),
                        ]
                    ),
                )
                run_id = handle.first_execution_run_id or ""
                break
            except WorkflowAlreadyStartedError:
                if not workflow.patched(FENCE_ID_PATCH):
                    break  # older runs trusted an earlier fence under the id
                # Something holds the fence's id: an earlier fence, or anything anyone
                # started under it. Never trust it; this run's own fence goes under a new id
                # (fencing twice is harmless: every step of it reads the device first).
                if tries == 3:
                    raise
                workflow.logger.warning("fence id %s is taken; starting under a new one", fid)
                fid = f"{fence_workflow_id(self.pair)}-{await self.child_tag()}-{tries}"
        c.fence = FenceRef(workflow_id=fid, run_id=run_id, side=lost)
        self.steps.publish()
