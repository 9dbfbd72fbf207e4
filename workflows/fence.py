"""fence: after an unplanned switch, keep the lost side from coming back as a second main.

While the lost side does not answer, one `fence_side` activity is retried by the server
with backoff (up to `timing.fence_max_interval` between tries); retries write nothing to
the history, so the fence can wait for days. The moment the side answers, its DSM and
SmartBins go to backup (its replication stopped, AllSync stopped where automated), so
editors that come back on it cannot write to a second main database.

The workflow id is `amsm-<pair>-fence` (one fence per pair). Query `state`; update `end`
(an operator ends the fence by hand, with a reason). Its current details (Web UI) say
what it waits for or what it did.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.models import PairRef, SideInput, StepResult
    from inventory.models import Timing
    from workflows.activity_options import BOOTSTRAP, fence_tries
    from workflows.checklist import describe_failure
    from workflows.models import FenceEnd, FenceInput, FenceState
    from workflows.routing import on_site


def fence_workflow_id(pair: str) -> str:
    return f"amsm-{pair}-fence"


@workflow.defn(name="fence")
class FenceWorkflow:
    @workflow.init
    def __init__(self, inp: FenceInput) -> None:
        self._state = FenceState(
            pair=inp.pair,
            side=inp.side,
            reason=inp.reason,
            started_by=inp.started_by,
            switch_run_id=inp.switch_run_id,
        )
        self._end: FenceEnd | None = None

    @workflow.run
    async def run(self, inp: FenceInput) -> FenceState:
        st = self._state
        st.started_at = self._now()
        st.message = (
            f"waiting for {inp.side} to answer; the moment it does, its DSM and SmartBins "
            "go to backup"
        )
        self._publish()
        timing = await workflow.execute_activity(
            "get_timing", PairRef(pair=inp.pair), result_type=Timing, **BOOTSTRAP
        )
        where = SideInput(pair=inp.pair, side=inp.side)
        attempt = workflow.start_activity(
            "fence_side", where, result_type=StepResult, **fence_tries(timing), **on_site(where)
        )
        await workflow.wait_condition(lambda: attempt.done() or self._end is not None)
        if not attempt.done() and self._end is not None:
            attempt.cancel()
            try:
                await attempt
            except (asyncio.CancelledError, ActivityError):
                pass
            st.status, st.ended_by = "ended", self._end.operator
            st.message = f"ended by {self._end.operator}: {self._end.reason}; {inp.side} not fenced"
        else:
            try:
                r = attempt.result()
                st.status, st.message, st.details = "fenced", r.message, list(r.details)
            except ActivityError as e:  # cannot happen with unlimited tries; say so if it does
                st.status, st.message = "ended", f"the fence gave up: {describe_failure(e)}"
        st.ended_at = self._now()
        self._publish()
        workflow.logger.info("fence %s: %s", inp.side, st.message)
        return st

    @workflow.query(name="state")
    def state(self) -> FenceState:
        return self._state

    @workflow.update(name="end")
    def end(self, e: FenceEnd) -> str:
        self._end = e
        return "accepted"

    @end.validator
    def _check_end(self, e: FenceEnd) -> None:
        if not e.reason.strip():
            raise ValueError("ending a fence needs a reason")
        if self._state.status != "waiting":
            raise ValueError(f"the fence is already {self._state.status}: {self._state.message}")

    def _now(self) -> str:
        return workflow.now().isoformat(timespec="seconds")

    def _publish(self) -> None:
        st = self._state
        workflow.set_current_details(
            f"**Fence on {st.side}** ({st.pair}): {st.status}\n\n{st.message or ''}\n\n"
            f"Started {st.started_at} by {st.started_by} for: {st.reason}"
        )
