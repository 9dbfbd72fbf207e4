"""pair-schedule: a run filed for later (`amsm schedule KIND ... --at TIME`,
docs/operators/schedules.md).

It runs under its own id (`amsm-<pair>-schedule-<id>`), never the pair's one-workflow id:
while it waits it holds no lock, and controls, checks and other runs go on. At its lead
time before the run it runs the dry run and the site check (their own workflows, as
children) and tells the `runs` audience what they found. At the time it checks the run's
own refusal (who may act, a fence, the kind's precondition), the blackout windows and that
no other run goes on the pair, and starts the run as the person who scheduled it; what
stops it is tried again until the window ends, and then the run is dropped, never run
late. Every wait is a durable timer: a worker restart, or the server's, changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RawValue, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.models import Capabilities, NotifyPlan, PairRef
    from activities.pair import PairActivities
    from activities.probe import ProbeActivities
    from inventory import intent
    from inventory.blackout import Window
    from inventory.intent import SignedIntent
    from inventory.models import SCHEDULE_TYPE, pair_workflow_id, schedule_workflow_id
    from inventory.rules import RULE_NO_SWITCH_IN_BLACKOUT
    from workflows import blackout, search, signing
    from workflows.activity_options import BOOTSTRAP
    from workflows.check import CheckResult, PairCheckWorkflow
    from workflows.checklist import describe_failure
    from workflows.dry_run import PairDryRunWorkflow
    from workflows.kinds import CLASSES, KINDS
    from workflows.limits import Bounded, Name, Text
    from workflows.models import CheckInput, DryRunInput, ScheduledBy
    from workflows.nonce import take_nonce
    from workflows.notify import PATCH as NOTIFY_PATCH
    from workflows.notify import send
    from workflows.preview import DryRunResult, run_refusal

# A schedule checks who filed it (their signed intent, or none) when it starts, and
# takes the intent's nonce; the run it starts carries the intent (histories from before
# signed schedules do neither).
SIGNED_PATCH = "signed-schedules"

# How often a run that could not start at its time is tried again inside its window.
RETRY_EVERY = timedelta(seconds=60)

ScheduleStatus = Literal["waiting", "started", "dropped", "cancelled"]


class ScheduleInput(Bounded):
    """What `amsm schedule` files: the run's kind and input (its kind's model, as `amsm
    start` would send it), when, and who asked. Times are UTC."""

    pair: Name
    schedule_id: Name
    kind: Name
    input: dict[str, Any]
    what: Text  # the run in words ("switch to Y")
    initiator: Name
    filed: datetime
    at: datetime
    window: float = Field(ge=60, le=86400)  # seconds after `at` in which it may start
    lead: float = Field(ge=0, le=7 * 86400)  # seconds before `at`: the dry run and check
    reason: Text | None = None
    # The intent its operator signed when filing it (action "schedule", bound to the
    # schedule's id and to signing.schedule_digest); None for an unsigned filing.
    intent: SignedIntent | None = None


class CancelRequest(Bounded):
    operator: Name
    reason: Text
    # The cancel signed by its operator, or by the console for them (signed acts).
    intent: SignedIntent | None = None


class Told(BaseModel):
    """A message to the `runs` audience, kept in the schedule's state, and whether it was
    delivered (None: nobody is told, the inventory has no `notify`; or not yet known)."""

    at: datetime
    text: str
    delivered: bool | None = None
    error: str | None = None


class ScheduleState(BaseModel):
    """What `amsm schedule list`, `amsm status` and the console show of a scheduled run
    (its query `state`; its result once it ends)."""

    schedule_id: str
    pair: str
    kind: str
    what: str
    initiator: str
    filed: datetime
    at: datetime
    window_end: datetime
    reason: str | None = None
    status: ScheduleStatus = "waiting"
    lead_at: datetime | None = None  # when the dry run and the check ran
    dry_run: str | None = None  # what the dry run found, in a sentence
    check: str | None = None  # what the site check found, in a sentence
    run_id: str | None = None  # the run it started
    started_at: datetime | None = None
    why: str | None = None  # why it was dropped, or why it waits past its time
    cancelled_by: str | None = None
    cancelled_proof: str | None = None  # who cancelled it, proven by whose key
    told: list[Told] = []
    # Who filed it, proven by whose key ("unproven", or None where the pair has no keys),
    # and whether the schedule has checked it yet (it does first, before it waits).
    proof: str | None = None
    checked: bool = False


def dry_run_sentence(r: DryRunResult) -> str:
    if r.refused:
        return f"the dry run would be refused: {r.refused}"
    refused = [s for s in r.steps if s.refused]
    if refused:
        return f"the dry run found {len(refused)} step(s) that would refuse: " + "; ".join(
            f"{s.id}: {s.refused}" for s in refused
        )
    return f"the dry run found nothing that would refuse ({len(r.steps)} steps)"


def check_sentence(r: CheckResult) -> str:
    if r.ready:
        return (
            f"the site check found the pair ready ({r.hosts} hosts, {len(r.warnings)} warning(s))"
        )
    return f"the site check found {len(r.problems)} problem(s): " + "; ".join(
        f"{p.host} {p.check}: {p.found}" for p in r.problems
    )


@workflow.defn(name=SCHEDULE_TYPE)
class ScheduleWorkflow:
    def __init__(self) -> None:
        self._state: ScheduleState | None = None
        self._plan: NotifyPlan | None = None  # whom it tells (workflows/notify.py)
        self._telling: list[asyncio.Future[None]] = []
        # Whose keys prove a cancel (read at the start; None in schedules from before
        # signed schedules, whose cancels are taken as they were).
        self._keys: signing.Keys | None = None

    @property
    def state(self) -> ScheduleState:
        assert self._state is not None
        return self._state

    @workflow.query(name="state")
    def read_state(self) -> ScheduleState:
        return self.state

    @workflow.update(name="cancel")
    def cancel(self, req: CancelRequest) -> ScheduleState:
        """End the scheduled run before it starts, with who and why (the API checked they
        are an operator). Where the pair lists keys, proven by whose (a missing intent
        under require_signed, or a bad, unknown, expired or misbound one, is refused:
        the refusal is the update's recorded answer, and the schedule still waits)."""
        st = self.state
        proof = None
        if self._keys is not None:
            bound = intent.Binding(
                pair=st.pair,
                run=schedule_workflow_id(st.pair, st.schedule_id),
                step="schedule",
                action="cancel",
                operator=req.operator,
            )
            proof, why = signing.prove_input(req, req.intent, bound, self._keys, workflow.now())
            if why is not None:
                raise ApplicationError(f"cancel refused: {why}", type="Refused")
        st.status, st.cancelled_by, st.why = "cancelled", req.operator, req.reason
        st.cancelled_proof = proof
        self.tell_runs(f"{self.title()}: cancelled by {req.operator}: {req.reason}")
        return st

    @cancel.validator
    def _cancel_fits(self, req: CancelRequest) -> None:
        if self._state is None or (self.state.status == "waiting" and not self.state.checked):
            # Not before it has read whose keys prove a cancel.
            raise ApplicationError("still starting; try again in a moment")
        if self.state.status != "waiting":
            raise ApplicationError(
                f"scheduled run {self.state.schedule_id} is {self.state.status} already"
            )
        if not req.reason.strip():
            raise ApplicationError("a cancel needs a reason (--reason TEXT)")

    def tell_runs(self, text: str) -> None:
        """Tell the `runs` audience (workflows/notify.py send, in the background: a
        delivery that fails never holds the schedule) and keep it in the state."""
        workflow.logger.info(text)
        told = Told(at=workflow.now(), text=text)
        self.state.told.append(told)
        if self._plan is not None:
            self._telling.append(asyncio.ensure_future(self._deliver(told)))

    async def _deliver(self, told: Told) -> None:
        st = self.state
        r = await send(st.pair, "runs", f"[amsm] pair {st.pair}: scheduled run", told.text)
        told.delivered, told.error = r.delivered, r.error

    def title(self) -> str:
        st = self.state
        return f"{st.what} on pair {st.pair} scheduled for {st.at:%Y-%m-%d %H:%M} UTC by {st.initiator}"

    @workflow.run
    async def run(self, inp: ScheduleInput) -> ScheduleState:
        kind = KINDS.get(inp.kind)
        if kind is None:
            raise ApplicationError(
                f"unknown workflow {inp.kind!r}; available: {', '.join(KINDS)}",
                non_retryable=True,
            )
        end = inp.at + timedelta(seconds=inp.window)
        self._state = ScheduleState(
            schedule_id=inp.schedule_id,
            pair=inp.pair,
            kind=inp.kind,
            what=inp.what,
            initiator=inp.initiator,
            filed=inp.filed,
            at=inp.at,
            window_end=end,
            reason=inp.reason,
        )
        self.show()
        caps: Capabilities | None = None
        if workflow.patched(NOTIFY_PATCH):
            read = await workflow.execute_activity_method(
                ProbeActivities.get_capabilities, PairRef(pair=inp.pair), **BOOTSTRAP
            )
            self._plan, caps = read.notify, read
        if caps is not None and workflow.patched(SIGNED_PATCH):
            why = await self.prove(inp, caps)
            if why is not None:
                self.state.status, self.state.why = "dropped", why
                self.tell_runs(f"{self.title()}: refused: {why}")
                return await self.finish()
        self.state.checked = True
        if await self.until(inp.at - timedelta(seconds=inp.lead)):
            await self.lead(inp)
        if await self.until(inp.at):
            await self.start_in_window(inp, end)
        return await self.finish()

    async def prove(self, inp: ScheduleInput, caps: Capabilities) -> str | None:
        """Who filed it: their proof kept in the state, or why the filing is refused (a
        missing intent under identity.require_signed; a bad, unknown, expired or
        misbound one; one whose nonce was taken already)."""
        keys = signing.keys_of(caps.operator_keys, caps.console_key, caps.require_signed)
        self._keys = keys
        bound = intent.Binding(
            pair=inp.pair,
            run=schedule_workflow_id(inp.pair, inp.schedule_id),
            step=inp.kind,
            action="schedule",
            operator=inp.initiator,
        )
        shown = None
        if inp.intent is not None:  # what it files: the run's input as checked at its time
            shown = signing.schedule_digest(self.run_input(inp), signing.iso(inp.at), inp.window)
        proof, why = signing.prove_input(inp, inp.intent, bound, keys, workflow.now(), shown=shown)
        if why is None and inp.intent is not None:
            why = await take_nonce(inp.pair, inp.intent.intent.nonce)
        if why is None:
            self.state.proof = proof
        return why

    async def until(self, when: datetime) -> bool:
        """Wait (a durable timer) until `when`; False once cancelled."""
        await self.wait(when)
        return self.state.status == "waiting"

    async def wait(self, until: datetime) -> None:
        """A durable timer until `until`, cut short by a cancel."""
        left = (until - workflow.now()).total_seconds()
        if left <= 0:
            return
        try:
            await workflow.wait_condition(lambda: self.state.status != "waiting", timeout=left)
        except TimeoutError:
            pass  # the time came

    async def lead(self, inp: ScheduleInput) -> None:
        """The dry run and the site check, run as they run by hand; what they found is
        kept and told. A failed one is said, never a reason to stop here: the start
        checks again."""
        st = self.state
        base = f"{pair_workflow_id(inp.pair)}-{{}}-schedule-{inp.schedule_id}"
        st.lead_at = workflow.now()
        try:
            dry = await workflow.execute_child_workflow(
                PairDryRunWorkflow.run,
                DryRunInput(pair=inp.pair, kind=inp.kind, input=inp.input),
                id=base.format("dry-run"),
            )
            st.dry_run = dry_run_sentence(dry)
        except ChildWorkflowError as e:
            st.dry_run = f"the dry run did not finish: {describe_failure(e)}"
        try:
            check = await workflow.execute_child_workflow(
                PairCheckWorkflow.run,
                CheckInput(pair=inp.pair, initiator=inp.initiator),
                id=base.format("check"),
            )
            st.check = check_sentence(check)
        except ChildWorkflowError as e:
            st.check = f"the site check did not finish: {describe_failure(e)}"
        self.tell_runs(f"{self.title()} starts soon: {st.dry_run}; {st.check}")
        self.show()

    async def start_in_window(self, inp: ScheduleInput, end: datetime) -> None:
        """Start the run at its time, or as soon as it may inside the window; dropped,
        never started late, when the window ends first."""
        st = self.state
        while st.status == "waiting":
            if workflow.now() >= end:  # no worker ran the schedule in its window
                self.drop(st.why or "no worker of the pair ran it before its window ended")
                return
            why = await self.why_not_now(inp)
            if why is None:
                why = await self.start_run(inp)
                if why is None:
                    return
            st.why = why
            self.show()
            await self.wait(min(end, workflow.now() + RETRY_EVERY))

    def drop(self, why: str) -> None:
        st = self.state
        st.status, st.why = "dropped", why
        self.tell_runs(f"{self.title()}: dropped, not started within its window: {why}")

    async def why_not_now(self, inp: ScheduleInput) -> str | None:
        """Why the run may not start now, or None: another run on the pair, the blackout
        windows, the run's own refusal on the pair as read now. A read that fails is a
        reason not to start (fail closed), tried again while the window lasts."""
        try:
            return await self.refusal_now(inp)
        except ActivityError as e:
            return f"the pair could not be read: {describe_failure(e)}"

    async def refusal_now(self, inp: ScheduleInput) -> str | None:
        ref = PairRef(pair=inp.pair)
        running = await workflow.execute_activity_method(
            PairActivities.pair_run_state, ref, **BOOTSTRAP
        )
        if running.running:
            return f"another run goes on pair {inp.pair} ({running.workflow}, run {running.run_id})"
        args = self.run_input(inp)
        status = await workflow.execute_activity_method(
            ProbeActivities.probe_pair, ref, **BOOTSTRAP
        )
        caps = await workflow.execute_activity_method(
            ProbeActivities.get_capabilities, ref, **BOOTSTRAP
        )
        on_air = self.blackout_refusal(inp, caps.blackout)
        if on_air:
            return on_air
        fences = await workflow.execute_activity_method(
            PairActivities.fences_waiting, ref, **BOOTSTRAP
        )
        return run_refusal(inp.kind, args, status, caps, fences)

    def blackout_refusal(self, inp: ScheduleInput, windows: Sequence[Window]) -> str | None:
        """Rule no-switch-in-blackout, as the run itself would refuse it (the same sentence):
        on air, the scheduled run is not started and tries again until its window ends. A
        run filed with that rule overridden starts, and the run records the override."""
        overrides = inp.input.get("overrides") or []
        if any(
            o.get("rule") == RULE_NO_SWITCH_IN_BLACKOUT for o in overrides if isinstance(o, dict)
        ):
            return None
        on_air = blackout.window_at(windows, workflow.now())
        return blackout.refusal(on_air) if on_air is not None else None

    def run_input(self, inp: ScheduleInput) -> BaseModel:
        """The run's input as filed, saying who scheduled it."""
        scheduled = ScheduledBy(
            by=inp.initiator,
            filed=inp.filed.isoformat(timespec="seconds"),
            schedule_id=inp.schedule_id,
        )
        if inp.intent is not None and workflow.patched(SIGNED_PATCH):
            scheduled = scheduled.model_copy(
                update={"at": signing.iso(inp.at), "window": inp.window, "intent": inp.intent}
            )
        model = KINDS[inp.kind].input
        data = dict(inp.input)
        # A kind whose input cannot say it (one written before, or in a test) runs without.
        if "scheduled" in model.model_fields:
            data["scheduled"] = scheduled.model_dump(mode="json")
        try:
            return model.model_validate(data)
        except ValidationError as e:
            raise ApplicationError(
                f"bad input for {inp.kind}: {e.error_count()} error(s)", non_retryable=True
            ) from None

    async def start_run(self, inp: ScheduleInput) -> str | None:
        """Start the run under the pair's one-workflow id as the person who scheduled it;
        None once started, else why not (the id is taken: another run started first)."""
        st = self.state
        args = self.run_input(inp)
        scheduled = getattr(args, "scheduled", None)
        said = scheduled.sentence() if scheduled else f"scheduled by {inp.initiator}"
        runs: Any = CLASSES[inp.kind]  # the kind's class (workflows/kinds.py)
        try:
            handle = await workflow.start_child_workflow(
                runs.run,
                RawValue(workflow.payload_converter().to_payloads([args])[0]),
                id=pair_workflow_id(inp.pair),
                # The run outlives the schedule, which ends once it has started it.
                parent_close_policy=ParentClosePolicy.ABANDON,
                memo={
                    "kind": inp.kind,
                    "what": inp.what,
                    "initiator": inp.initiator,
                    "scheduled": said,
                },
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(search.PAIR, inp.pair),
                        SearchAttributePair(search.KIND, inp.kind),
                        SearchAttributePair(search.INITIATOR, inp.initiator),
                        SearchAttributePair(search.STATE, "running"),
                    ]
                ),
                static_summary=f"{inp.what} on pair {inp.pair}, by {inp.initiator} ({said})",
            )
        except WorkflowAlreadyStartedError:
            return f"another run goes on pair {inp.pair} (it started first)"
        st.status, st.run_id, st.started_at, st.why = (
            "started",
            handle.first_execution_run_id,
            workflow.now(),
            None,
        )
        self.tell_runs(f"{self.title()}: started, run {st.run_id} ({said})")
        return None

    async def finish(self) -> ScheduleState:
        await asyncio.gather(*self._telling)  # each delivery has its own short limit
        self.show()
        workflow.upsert_search_attributes([search.STATE.value_set(self.state.status)])
        return self.state

    def show(self) -> None:
        st = self.state
        line = f"**{self.title()}**: {st.status}"
        if st.why:
            line += f" ({st.why})"
        workflow.set_current_details(line)
