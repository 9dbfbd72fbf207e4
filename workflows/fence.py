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
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.lost_side import LostSideActivities
    from activities.models import FenceState, NotifyPlan, PairRef, SideInput
    from activities.probe import ProbeActivities
    from inventory import intent
    from inventory.models import fence_workflow_id, pair_workflow_id
    from workflows import signing
    from workflows.activity_options import BOOTSTRAP, fence_tries
    from workflows.checklist import describe_failure
    from workflows.inputs import BadPayload, read, read_input
    from workflows.limits import (
        CONTINUE_AFTER_SIGNALS,
        CONTINUE_SIGNALS_EVERY,
        cut,
        history_is_long,
    )
    from workflows.models import STILL_STARTING, FenceEnd, FenceInput, UpdateResult
    from workflows.notify import PATCH as NOTIFY_PATCH
    from workflows.notify import fence_message, send
    from workflows.routing import on_site
    from workflows.shield import despite_cancel


# Fences started before a fence checked who started it and who ends it replay without.
OPERATOR_PATCH = "fence-checks-operator"
# Fences started before a fence could continue as new replay without it.
CONTINUE_PATCH = "fence-continue-as-new"
# Fences started before a fence continued as new after CONTINUE_AFTER_SIGNALS signals
# replay without it.
SIGNALS_PATCH = "fence-continue-after-signals"
# Fences started before a fence continued for its signal count no sooner than
# CONTINUE_SIGNALS_EVERY seconds after it started (as the pair's runs do, patch
# `continue-after-signals-paced`: a storm kept it closing and starting, and the
# operator's `amsm fence end` met a fence still starting) replay without the wait.
PACED_PATCH = "fence-continue-after-signals-paced"
# Fences started before a fence refused to run unless the pair's run started it replay
# without the check (it is asked only of a fence with another parent, or none).
PARENT_PATCH = "fence-needs-the-pairs-run"


async def wait_paced(done: Callable[[], bool], left: Callable[[], float]) -> None:
    """Wait for `done`; while `left()` says the run is too young to continue for its
    signal count, wait for the rest of the pace with a timer (a storm that has ended
    leaves no signal to wake it), and until the count is reached, reaching it wakes the
    run to start that timer. With no pace (`left` always 0) this is one wait, as before
    the patch."""
    while True:
        pace = left()
        if pace > 0:
            try:
                await workflow.wait_condition(done, timeout=timedelta(seconds=max(pace, 1)))
                return
            except TimeoutError:
                continue
        await workflow.wait_condition(lambda: done() or left() > 0)
        if done():
            return


@workflow.defn(name="fence")
class FenceWorkflow:
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        try:
            inp = read(FenceInput, raw)
        except BadPayload:
            inp = FenceInput(pair="?", side="X", reason="", started_by="?")  # run() refuses
        self._state = inp.resume or FenceState(
            pair=inp.pair,
            side=inp.side,
            reason=inp.reason,
            started_by=inp.started_by,
            switch_run_id=inp.switch_run_id,
        )
        self._end: FenceEnd | None = None
        self._operators: set[str] | None = None  # None: not read yet
        self._ignored = 0  # signals, which the fence does not take
        self._plan: NotifyPlan | None = None  # whom it tells (workflows/notify.py)
        self._started = workflow.now()  # this execution's start, from which the pace counts
        self._keys = signing.Keys()  # the inventory's keys (signed acts), once read

    @workflow.run
    async def run(self, raw: RawValue) -> FenceState:
        inp = read_input(FenceInput, raw, "fence")
        return await despite_cancel(self._run(inp), self._cancel_requested)

    def _started_by_the_run(self, inp: FenceInput) -> None:
        """Only the pair's run starts its fence (an unplanned switch, when a step finds the
        side lost): a fence started by anyone else who reaches Temporal, on the pair's own
        queue, would block every run that makes its side main (wire/fences.py). The parent
        is the server's record, which no client can choose; continuations keep it."""
        parent = workflow.info().parent
        run_id = pair_workflow_id(inp.pair)
        if (parent is None or parent.workflow_id != run_id) and workflow.patched(PARENT_PATCH):
            by = f"by {parent.workflow_id}" if parent else "on its own"
            st = self._state
            st.status, st.ended_at = "ended", self._now()
            st.message = f"refused: started {by}, not by the pair's run {run_id}"
            self._publish()
            raise ApplicationError(
                f"fence refused: a fence runs only as a child of the pair's run ({run_id}), "
                f"started by an unplanned switch; started {by}",
                type="Refused",
                non_retryable=True,
            )

    def _cancel_requested(self) -> None:
        # A cancel carries no operator and no reason; ending a fence needs both.
        workflow.logger.warning(
            "fence %s: cancellation requested and ignored; end it with amsm fence end --reason",
            self._state.side,
        )

    async def _run(self, inp: FenceInput) -> FenceState:
        st = self._state
        self._started_by_the_run(inp)
        if inp.resume is None:
            st.started_at = self._now()
            st.message = (
                f"waiting for {inp.side} to answer; the moment it does, its DSM and SmartBins "
                "go to backup"
            )
        self._publish()
        timing = await workflow.execute_activity_method(
            ProbeActivities.get_timing, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        if workflow.patched(OPERATOR_PATCH):
            caps = await workflow.execute_activity_method(
                ProbeActivities.get_capabilities, PairRef(pair=inp.pair), **BOOTSTRAP
            )
            self._operators = set(caps.operators)
            self._keys = signing.keys_of(caps.operator_keys, caps.console_key, caps.require_signed)
            self._plan = caps.notify if caps.notify and workflow.patched(NOTIFY_PATCH) else None
            if self._not_operator(inp.started_by):
                st.status, st.ended_at = "ended", self._now()
                st.message = f"refused: {inp.started_by} is not an operator of pair {inp.pair}"
                self._publish()
                raise ApplicationError(
                    f"fence refused: {inp.started_by} is not an operator of pair {inp.pair}",
                    type="Refused",
                    non_retryable=True,
                )
        else:
            self._operators = set()
        where = SideInput(pair=inp.pair, side=inp.side)
        attempt = workflow.start_activity_method(
            LostSideActivities.fence_side,
            where,
            **fence_tries(timing),
            **on_site(where),
        )
        told = self._tell() if inp.resume is None else None  # once, not when it continued
        may_continue = workflow.patched(CONTINUE_PATCH)
        counts_signals = may_continue and workflow.patched(SIGNALS_PATCH)
        paced = counts_signals and workflow.patched(PACED_PATCH)

        def should_continue() -> bool:
            # The fence may wait for weeks: whatever arrives (signals nobody handles,
            # cancel requests), its history stays far below the server's limits, and the
            # server's count of its signals starts again long before its limit.
            return may_continue and (
                history_is_long(timing.continue_after_events)
                or (counts_signals and self._ignored >= CONTINUE_AFTER_SIGNALS and not left())
            )

        def left() -> float:
            return self._pace_left() if paced else 0.0

        await wait_paced(lambda: attempt.done() or self._end is not None or should_continue(), left)
        if not attempt.done() and self._end is None:
            attempt.cancel()
            try:
                await attempt
            except (asyncio.CancelledError, ActivityError):
                pass
            if not attempt.done() or attempt.cancelled() or attempt.exception() is not None:
                workflow.continue_as_new(inp.model_copy(update={"resume": st}))
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
        if told is not None:
            await told
        ended = self._tell()
        if ended is not None:
            await ended
        return st

    def _pace_left(self) -> float:
        """Seconds before this run may continue for its signal count (0: it may, or the
        count is not reached)."""
        if self._ignored < CONTINUE_AFTER_SIGNALS:
            return 0.0
        lived = (workflow.now() - self._started).total_seconds()
        return max(0.0, CONTINUE_SIGNALS_EVERY - lived)

    def _tell(self) -> asyncio.Future[Any] | None:
        """Tell `runs` where the fence stands (it waits, or it ended), in the background."""
        if self._plan is None:
            return None
        subject, body = fence_message(self._plan, self._state)
        return asyncio.ensure_future(send(self._state.pair, "runs", subject, body))

    @workflow.query(name="state")
    def state(self) -> FenceState:
        return self._state

    @workflow.signal(dynamic=True)
    def _any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        # The fence takes no signal. Without a handler the SDK would keep every one in
        # memory, and a run that only receives them never looks at its conditions (so
        # it would not continue as new however long its history grew).
        self._ignored += 1
        if self._ignored <= 10 or self._ignored % 1000 == 0:
            workflow.logger.warning(
                "fence: signal %s ignored (%d so far)", cut(name, 80), self._ignored
            )

    @workflow.update(name="end")
    def end(self, e: FenceEnd) -> UpdateResult:
        """End the fence by hand: the run stops trying the lost side (`amsm fence end`
        waits for the fence's result to show where it ended)."""
        # Signed acts: reached only with a signed end or under require_signed (no fence
        # recorded before had either); a refusal is the update's recorded answer.
        proof, why = signing.prove_input(e, e.intent, self._binding(e), self._keys, workflow.now())
        if why is not None:
            return UpdateResult(accepted=False, reason=why, run_id=workflow.info().run_id)
        self._end = e
        self._state.ended_proof = proof
        return UpdateResult(run_id=workflow.info().run_id)

    def _binding(self, e: FenceEnd) -> intent.Binding:
        """What a signed end must say: this pair, its fence's id, its end, and the
        operator it names."""
        return intent.Binding(
            pair=self._state.pair,
            run=fence_workflow_id(self._state.pair),  # not info()'s: a replay's may differ
            step="fence",
            action="end-fence",
            operator=e.operator,
        )

    def _not_operator(self, who: str) -> bool:
        return bool(self._operators) and who.lower() not in (self._operators or set())

    @end.validator
    def _check_end(self, e: FenceEnd) -> None:
        if self._operators is None:
            raise ValueError(f"the fence is {STILL_STARTING}")
        if self._not_operator(e.operator):
            raise ValueError(f"{e.operator} is not an operator of pair {self._state.pair}")
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
