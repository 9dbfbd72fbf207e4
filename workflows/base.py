"""What every big workflow of a pair shares: the checklist, its signals, its query, and the
steps that several workflows use (client switches, verified manual steps, abort)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import (
    ChildWorkflowCancellationType,
    ChildWorkflowHandle,
    ParentClosePolicy,
)

with workflow.unsafe.imports_passed_through():
    from activities.drivers.plans import clients as client_plans
    from activities.models import (
        BatchRef,
        Capabilities,
        ClientBatchResult,
        ClientSwitchResult,
        PairRef,
        RunInput,
        RunsSince,
        ScheduleLineage,
        SideInput,
        SideRunInput,
    )
    from activities.pair import PairActivities
    from activities.probe import ProbeActivities
    from activities.sync_tools import SyncToolActivities
    from inventory import intent
    from inventory.blackout import Window
    from inventory.intent import SignedIntent
    from inventory.models import Side, Timing, pair_workflow_id, schedule_workflow_id
    from inventory.rules import RULE_NO_SWITCH_IN_BLACKOUT
    from inventory.status import PairStatus
    from workflows import blackout, outcomes, preconditions, signing
    from workflows.activity_options import BOOTSTRAP, A, DeviceOp, batch_wait, device_op
    from workflows.break_glass import break_glass_first
    from workflows.checklist import Aborted, StepRunner, describe_failure
    from workflows.client_switch import ClientBatchWorkflow, ClientSwitchWorkflow
    from workflows.inputs import BadPayload, read, read_input
    from workflows.kind import Kind
    from workflows.limits import CODEC_MARGIN, MAX_CONTINUED_BYTES, encoded_size
    from workflows.models import (
        STILL_STARTING,
        Checklist,
        ClientBatchInput,
        ClientProgress,
        ClientSwitchInput,
        ClientTarget,
        Decision,
        OperatorSignal,
        ScheduledBy,
        StepState,
        UpdateResult,
    )
    from workflows.nonce import take_nonce
    from workflows.notify import Notices
    from workflows.overrides import OverrideRecord, start_override_problem
    from workflows.routing import on_site
    from workflows.rules import unknown_signal_refusal
    from workflows.shield import despite_cancel


# Runs started before InSync/AllSync steps could be automated replay without the check.
AUTOMATE_PATCH = "automate-sync-steps"
# Runs started before child ids took the random end of the run id replay with its start.
CHILD_ID_PATCH = "child-id-random-tag"
# Runs started before clients were switched in batches replay with one child per client.
BATCH_PATCH = "client-batches"
# Runs started before a run could continue as new while its clients switch (a storm of
# signals during the switches) replay without the watch, and rebuild a retried step's
# clients.
CLIENTS_CONTINUE_PATCH = "continue-during-client-switches"
# Runs started before child ids took a random tag from an activity (not derived from the
# run id, which anyone who sees the run can read) replay with the run id's tag.
RANDOM_IDS_PATCH = "random-child-ids"
# Runs started before each run checked its own workflow id replay without the check.
OWN_ID_PATCH = "one-run-per-pair-id"
# Runs started before they checked for a waiting fence themselves replay without it.
FENCE_CHECK_PATCH = "fence-check-in-run"
# Updates of runs started before an update answered once the walk had taken it (with an
# UpdateResult) answered at once: their answer comes before what the walk then did (a
# search attribute upserted, an activity scheduled), and they replay so.
UPDATE_TAKEN_PATCH = "update-answers-once-taken"
# Runs started before a start could be signed replay without its check: reached only
# with a signed start or under identity.require_signed (docs/operators/signed-acts.md).
START_PATCH = "signed-starts"
# A signed start is bound to the run it follows, so it starts one run: sent again once
# that run has started, it is refused as replayed (inventory/intent.py start_binding).
START_AFTER_PATCH = "signed-starts-follow-a-run"
# Signals kept while a run starts (before it knows who may act); more are rejected.
EARLY_KEPT = 50


# A signed start or control whose intent names no run it follows.
NAMES_NO_RUN = (
    "intent refused (misbound): it does not name the run it follows (signed by an amsm "
    f"from before starts and controls were bound to it): sign it again ({intent.DOCS})"
)


# Runs started before a signed start or control was judged by its nonce alone (it takes
# it, workflows/nonce.py) also refused it when the server's list showed any run under its
# id since the run it follows; they replay with that question.
NONCE_ALONE_PATCH = "signed-acts-nonce-alone"


async def started_since(pair: str, workflow_id: str, follows: str) -> str | None:
    """A proven start or control that follows the run `follows` under `workflow_id`:
    why it is refused (the run it follows is no run of that id; before the patch, also
    a run started there since: it was used already), or None. The server is asked once
    (PairActivities.runs_since); the answer stays in the history. A second use of the
    intent is refused by its nonce, which the server checks exactly."""
    listed = not workflow.patched(NONCE_ALONE_PATCH)
    since = await workflow.execute_activity_method(
        PairActivities.runs_since,
        RunsSince(
            pair=pair,
            after=follows,
            own=workflow.info().run_id,
            workflow_id=workflow_id,
            listed=listed,
        ),
        **BOOTSTRAP,
    )
    if since is None:
        return None
    return (
        f"intent refused (replayed): it was signed to start the run after {follows}, and "
        f"{since}: a signed act that starts a run starts one; sign it again ({intent.DOCS})"
    )


async def prove_own_start(
    c: Checklist, inp: BaseModel, signed: SignedIntent | None, keys: signing.Keys
) -> tuple[str | None, str | None]:
    """A start sent by a person: (its proof, None) or (None, why it is refused)."""
    # The pair's id, not workflow.info()'s: a replay of an exported history runs
    # under another id (a run under another id is refused, OWN_ID_PATCH).
    run = pair_workflow_id(c.pair)
    follows: str | None = None
    if signed is not None and workflow.patched(START_AFTER_PATCH):
        follows = intent.followed_run(signed.intent.run)
        if follows is None:
            return None, NAMES_NO_RUN
        run = intent.start_binding(run, follows)
    bound = intent.Binding(
        pair=c.pair, run=run, step=c.workflow, action="start", operator=c.initiator
    )
    proof, why = signing.prove_input(inp, signed, bound, keys, workflow.now(), c.nonces)
    if why is None and follows is not None:
        why = await started_since(c.pair, pair_workflow_id(c.pair), follows)
    if why is None and signed is not None:
        why = await take_nonce(c.pair, signed.intent.nonce)
    return (proof, None) if why is None else (None, why)


async def prove_scheduled(
    c: Checklist, inp: BaseModel, by: ScheduledBy, keys: signing.Keys
) -> tuple[str | None, str | None]:
    """A run a schedule started, carrying the intent its operator signed when filing it
    (docs/operators/signed-acts.md, scheduled runs): (its proof, None) or (None, why it
    is refused). It must be what was filed (the run's input, time and window), not a
    reset of a run, and started by that schedule (its parent, as the server records it,
    which no client can set) in a run of amsm's own `pair-schedule` on this run's queue
    that was not reset either: such a run checked the intent and took its nonce before
    it waited, and starts one run. Its time is not checked again: the schedule checked
    it when it was filed."""
    wid = schedule_workflow_id(c.pair, by.schedule_id)
    parent = workflow.info().parent
    if parent is None or parent.workflow_id != wid:
        return None, (
            f"intent refused (misbound): it was signed for the run that schedule "
            f"{by.schedule_id} starts ({wid}), and no such schedule started this run: "
            f"sign a start of your own ({intent.DOCS})"
        )
    if by.at is None or by.window is None or by.intent is None:
        return None, f"intent refused (misbound): its schedule names no time ({intent.DOCS})"
    signed = by.intent
    bound = intent.Binding(
        pair=c.pair, run=wid, step=c.workflow, action="schedule", operator=c.initiator
    )
    at = intent.signed_time(signed.intent.at) or workflow.now()
    shown = signing.schedule_digest(inp, by.at, by.window)
    proof, why = signing.prove_input(inp, signed, bound, keys, at, c.nonces, shown=shown)
    if why is not None:
        return None, why
    why = await workflow.execute_activity_method(
        PairActivities.schedule_lineage,
        ScheduleLineage(pair=c.pair, workflow_id=wid, run_id=parent.run_id),
        **BOOTSTRAP,
    )
    if why is not None:
        return None, (
            f"intent refused (replayed): {why}: a filing starts one run; file it again "
            f"({intent.DOCS})"
        )
    return proof, None


def run_tag(run_id: str) -> str:
    return run_id.replace("-", "")[-12:]


async def new_tag(pair: str) -> str:
    """A random tag for a child workflow id (from an activity: not derived from anything a
    client can see before the child starts)."""
    return str(
        await workflow.execute_activity_method(
            PairActivities.new_tag, PairRef(pair=pair), **BOOTSTRAP
        )
    )


async def handlers_finished() -> None:
    """Let every update in flight answer before the run ends or continues as new (the SDK
    would abandon it, and its caller would get no answer). Waits only when one is in
    flight: a run recorded before updates waited never had one, and replays as it was."""
    if not workflow.all_handlers_finished():
        await workflow.wait_condition(workflow.all_handlers_finished)


class PairWorkflow:
    """Signals `confirm`, `approve`, `decide`; query `progress`; subclasses walk their steps."""

    runner: StepRunner | None = None
    timing: Timing
    pair: str
    caps: Capabilities = Capabilities()
    # The blackout windows a client's restart waits out: none once the run overrode
    # no-switch-in-blackout (workflows/blackout.py).
    holds: list[Window] = []
    resuming = False  # this run continues an earlier one (continue-as-new)
    # What a run carries on, besides its checklist, when it continues as new.
    continue_with: Callable[[], dict[str, Any]] | None = None
    notices: Notices | None = None  # who is told what (the inventory's `notify`)
    start_input: BaseModel | None = None  # what the run was started with (_start_runner)

    def __init__(self) -> None:
        self._tag: str | None = None
        self._early: list[tuple[str, OperatorSignal | Decision]] = []
        self._early_rejected: list[tuple[str, str]] = []
        # Signals wait until the run knows who may act (the capabilities are read).
        self._ready = False
        # Every signal this execution received (the server counts them too, and refuses
        # more past history.maximumSignalsPerExecution: the run continues as new first).
        self.signals_received = 0

    # Signals take raw payloads so that a malformed one (from the Web UI, say) is rejected
    # visibly in the checklist instead of being dropped by the data converter.
    @workflow.signal(name="confirm")
    def confirm(self, raw: RawValue) -> None:
        self._raw("confirm", raw)

    @workflow.signal(name="approve")
    def approve(self, raw: RawValue) -> None:
        self._raw("approve", raw)

    @workflow.signal(name="decide")
    def decide(self, raw: RawValue) -> None:
        self._raw("decide", raw)

    @workflow.signal(dynamic=True)
    def _other_signal(self, name: str, args: Sequence[RawValue]) -> None:
        # Any other signal is rejected like a malformed one (counted, the last few kept):
        # without a handler the SDK would keep them all in memory, and a run that only
        # receives them would not look at its conditions (nor continue as new).
        self.signals_received += 1
        self._malformed(name, unknown_signal_refusal(name))

    def _raw(self, kind: str, raw: RawValue) -> None:
        self.signals_received += 1
        try:
            payload: OperatorSignal | Decision = (
                read(Decision, raw) if kind == "decide" else read(OperatorSignal, raw)
            )
        except BadPayload as e:
            # An undecodable payload (wire/payloads.py) says so in its own fixed text.
            self._malformed(kind, str(e) if e.undecodable else f"malformed payload: {e}")
            return
        self._signal(kind, payload)

    def _malformed(self, kind: str, what: str) -> None:
        if self.runner is None:
            # Before the checklist exists (the start's own activation): kept, bounded.
            if len(self._early_rejected) < EARLY_KEPT:
                self._early_rejected.append((kind, what))
            return
        self.runner.reject(kind, "?", "?", what)

    def _signal(self, kind: str, payload: OperatorSignal | Decision) -> str | None:
        """Hand a signal to the checklist; returns the reason when it is rejected."""
        if self.runner is None or not self._ready:
            # A signal can arrive before run() has built the checklist, or before it knows
            # who may act; keep it for then (a bounded number: the rest are rejected).
            if len(self._early) < EARLY_KEPT:
                self._early.append((kind, payload))
            else:
                self._malformed(kind, "too many signals before the run started")
            return None
        if isinstance(payload, Decision):
            return self.runner.on_decision(payload)
        return self.runner.on_signal(kind, payload)

    # Updates back the CLI: the same effect as the signals, but what does not fit the run
    # now is refused at once by the validator (before anything is written to the history),
    # and the answer comes once the walk has taken the request (workflows/models.py
    # UpdateResult), so the caller sees its effect without reading the checklist again.
    @workflow.update(name="confirm-step")
    async def confirm_step(self, sig: OperatorSignal) -> UpdateResult:
        return await self._take("confirm", sig)

    @confirm_step.validator
    def _check_confirm(self, sig: OperatorSignal) -> None:
        self._validate(lambda r: r.check_signal("confirm", sig))

    @workflow.update(name="approve-step")
    async def approve_step(self, sig: OperatorSignal) -> UpdateResult:
        return await self._take("approve", sig)

    @approve_step.validator
    def _check_approve(self, sig: OperatorSignal) -> None:
        self._validate(lambda r: r.check_signal("approve", sig))

    @workflow.update(name="decide-step")
    async def decide_step(self, d: Decision) -> UpdateResult:
        return await self._take("decide", d)

    @decide_step.validator
    def _check_decide(self, d: Decision) -> None:
        self._validate(lambda r: r.check_decision(d))

    async def _take(self, kind: str, payload: OperatorSignal | Decision) -> UpdateResult:
        refused = self._signal(kind, payload)
        runner = self.runner
        if refused is None and runner is not None and self._ready:
            if workflow.patched(UPDATE_TAKEN_PATCH):
                await workflow.wait_condition(lambda: runner.taken(payload))
        return self.steps.answer(payload, refused)

    def _validate(self, check: Callable[[StepRunner], str | None]) -> None:
        if self.runner is None or not self._ready:
            raise ValueError(f"the run is {STILL_STARTING}")
        reason = check(self.runner)
        if reason is not None:
            raise ValueError(reason)

    @workflow.query
    def progress(self) -> Checklist | None:
        return self.runner.checklist if self.runner else None

    def _start_runner(self, runner: StepRunner, inp: BaseModel | None = None) -> None:
        """`inp`: the run's input; a run waiting long continues as new with it and its
        checklist (`resume`), and a run that is such a continuation goes on where it was."""
        self.runner = runner
        self.start_input = inp
        runner.signals_received = lambda: self.signals_received
        if inp is not None:
            self.resuming = getattr(inp, "resume", None) is not None

            async def again() -> None:
                await handlers_finished()
                await self.told()
                more = self.continue_with() if self.continue_with else {}
                new = inp.model_copy(update={"resume": runner.checklist, **more})
                size = encoded_size(new, workflow.payload_converter())
                if size > MAX_CONTINUED_BYTES - CODEC_MARGIN:
                    runner.cannot_continue(size)
                    return
                workflow.continue_as_new(new)

            runner.continue_as_new = again
        for kind, what in self._early_rejected:
            self._malformed(kind, what)
        self._early_rejected.clear()

    def _open_signals(self) -> None:
        """The run knows who may act: hand it the signals that came before."""
        self._ready = True
        early, self._early = self._early, []
        for kind, payload in early:
            self._signal(kind, payload)

    @property
    def steps(self) -> StepRunner:
        assert self.runner is not None
        return self.runner

    # -- the frame every workflow runs in ----------------------------------------------------
    async def walk(self, body: Callable[[], Awaitable[str]]) -> Checklist:
        """Run the steps; on abort, let in-flight work finish and report where devices are.
        A cancellation request is an abort (workflows/shield.py)."""

        if self.notices is not None:
            self.notices.started()

        async def steps() -> Checklist:
            try:
                message = await body()
            except Aborted:
                self.steps.aborted(await self.where_devices_are())
                return self.steps.checklist
            self.steps.complete(message)
            return self.steps.checklist

        try:
            checklist = await despite_cancel(steps(), self.steps.cancel_requested)
            await handlers_finished()
        finally:
            await self.told()  # a run that fails is told too
        return checklist

    def tell_people(self) -> None:
        """From now on the run tells people when a step waits and when it ends
        (workflows/notify.py), where the inventory has `notify`."""
        runner = self.steps
        self.notices = Notices.attach(self.caps.notify, runner.checklist, runner.touch)
        if self.notices is not None:
            runner.on_publish = self.notices.seen
            self.notices.seen()

    async def told(self) -> None:
        """Every message sent has its result (before the run ends or continues as new)."""
        if self.notices is not None:
            await self.notices.flush()

    async def where_devices_are(self) -> list[str]:
        try:
            st = await self.probe()
        except Exception as e:  # the devices may be what failed; say so instead
            return [f"the devices could not be read: {e}"]
        mode, main, reason = st.derived
        out = [f"pair: {mode}" + (f", {main} main" if main else "") + f" ({reason})"]
        for side in ("X", "Y"):
            d = st.dsm[side]  # type: ignore[index]
            out.append(
                f"DSM {d.host}: {d.mode or 'not responding'}, replication {d.replication_text}"
            )
        out.append(
            "Browse: "
            + (
                f"Active on {st.browse_active_on}"
                if st.browse_active_on
                else "not active on one side"
            )
        )  # noqa: E501
        for s in ("X", "Y"):
            hosts = [c.host for c in st.clients if c.side == s]
            out.append(f"clients on {s}: {', '.join(hosts) or 'none'}")
        lost = [f"{c.host} ({c.status})" for c in st.clients if c.side is None]
        if lost:
            out.append(f"clients with no side: {', '.join(lost)}")
        out.append(
            f"InSync: {'running' if st.insync.running else 'stopped'}, main {st.insync.main}; "
            f"AllSync on: {', '.join(st.allsync.running_on) or 'nowhere'}"
        )
        return out

    # -- activities every workflow uses ----------------------------------------------------
    async def bootstrap(self, pair: str, makes_main: tuple[Side, ...] = ()) -> PairStatus:
        """Read the timing, who may act and the pair. `makes_main`: the sides this run makes
        main, refused while a fence still waits to put one of them in backup."""
        self.pair = pair
        own = workflow.info().workflow_id
        if own != pair_workflow_id(pair) and workflow.patched(OWN_ID_PATCH):
            # one-workflow-per-pair rests on the id: a run under another id would run its
            # steps beside the pair's run, and controls would not see it.
            self._open_signals()
            self.refuse(
                self.steps.checklist.workflow,
                f"rule 'one-workflow-per-pair': the pair's runs use the workflow id "
                f"{pair_workflow_id(pair)}, not {own}",
            )
        self.timing = await workflow.execute_activity_method(
            ProbeActivities.get_timing, PairRef(pair=pair), **BOOTSTRAP
        )
        if self.runner is not None:
            self.runner.continue_after_events = self.timing.continue_after_events
        if workflow.patched(AUTOMATE_PATCH):
            self.caps = await workflow.execute_activity_method(
                ProbeActivities.get_capabilities, PairRef(pair=pair), **BOOTSTRAP
            )
            if self.runner is not None:
                self.runner.operators = set(self.caps.operators)
                self.runner.operator_keys = dict(self.caps.operator_keys)
                self.runner.console_key = self.caps.console_key
                self.runner.require_signed = self.caps.require_signed
                self.runner.approval_rules = dict(self.caps.approvals)
                # Who started the run must be an operator; the refusal stays in the history.
                who = self.runner.checklist.initiator
                if self.runner.not_operator(who):
                    self._open_signals()
                    self.refuse(
                        self.runner.checklist.workflow, f"{who} is not an operator of pair {pair}"
                    )
                await self.prove_start()
                self.tell_people()
        self._open_signals()
        if makes_main and not self.resuming and workflow.patched(FENCE_CHECK_PATCH):
            waiting = await workflow.execute_activity_method(
                PairActivities.fences_waiting, PairRef(pair=pair), **BOOTSTRAP
            )
            fenced_off = preconditions.under_fence(makes_main, waiting)
            if fenced_off:
                self.refuse(self.steps.checklist.workflow, fenced_off)
        return await self.probe()

    async def prove_start(self) -> None:
        """Who started the run: proven by whose key (the checklist's `initiator_proof`,
        and the memo's STARTED_BY), or the run refused before it reads a device (a
        missing intent under identity.require_signed, a bad, expired or misbound one, or
        one that already started the run after the one it follows).
        Without a key anywhere in the pair, nothing; a continuation is not checked again."""
        runner, inp = self.steps, self.start_input
        if inp is None or self.resuming or "intent" not in type(inp).model_fields:
            return
        c, signed = runner.checklist, getattr(inp, "intent", None)
        keys = signing.keys_of(runner.operator_keys, runner.console_key, runner.require_signed)
        if (signed is not None or keys.require_signed) and not workflow.patched(START_PATCH):
            return
        by: ScheduledBy | None = getattr(inp, "scheduled", None)
        if signed is None and by is not None and by.intent is not None:
            signed = by.intent  # filed by a person, started by their schedule
            proof, why = await prove_scheduled(c, inp, by, keys)
        else:
            proof, why = await prove_own_start(c, inp, signed, keys)
        if why is not None:
            self._open_signals()
            self.refuse(c.workflow, why)
            return
        c.initiator_proof = proof
        if signed is not None and proof is not None:
            c.nonces[signed.intent.nonce] = signed.intent.at
            memo = {signing.STARTED_BY: {"operator": c.initiator, "proof": proof}}
            workflow.upsert_memo(memo)
            runner.publish()

    async def probe(self) -> PairStatus:
        return await workflow.execute_activity_method(
            ProbeActivities.probe_pair, PairRef(pair=self.pair), **BOOTSTRAP
        )

    async def act(self, activity: DeviceOp[A], arg: A) -> str:
        r = await workflow.execute_activity_method(
            activity, arg, **device_op(self.timing), **on_site(arg)
        )
        return r.message

    def auto(self, activity: DeviceOp[A], arg: A) -> Callable[[StepState], Awaitable[str]]:
        async def action(_: StepState) -> str:
            return await self.act(activity, arg)

        return action

    def refuse(self, what: str, why: str) -> None:
        if self.resuming:
            # The continuation of a run whose preconditions held when it started: the
            # pair is half-way through it now, which is not a reason to stop.
            workflow.logger.info("continued run: precondition not checked again: %s", why)
            return
        self.steps.fail(f"{what} refused: {why}")
        raise ApplicationError(
            f"{what} refused: {why}", type="PreconditionFailed", non_retryable=True
        )

    def require(self, what: str, why: str | None) -> None:
        """Refuse the run with `why` (workflows/preconditions.py), unless it is None."""
        if why is not None:
            self.refuse(what, why)

    # -- InSync / AllSync steps: automatic where the inventory names the service, else
    # manual and verified --------------------------------------------------------------------
    def insync_step(self, running: bool) -> dict[str, Any]:
        if self.caps.insync_service:
            return {
                "automatic": self.auto(
                    SyncToolActivities.insync_run, RunInput(pair=self.pair, running=running)
                )
            }
        return {"verify": self.verify_insync(running)}

    def allsync_step(self, side: Side, running: bool) -> dict[str, Any]:
        if self.caps.allsync_service:
            arg = SideRunInput(pair=self.pair, side=side, running=running)
            return {"automatic": self.auto(SyncToolActivities.allsync_run, arg)}
        return {"verify": self.verify_allsync(side, running)}

    # -- verified manual steps ---------------------------------------------------------------
    def verify_insync(self, running: bool) -> Callable[[StepState], Awaitable[str | None]]:
        async def check(_: StepState) -> str | None:
            st = await workflow.execute_activity_method(
                SyncToolActivities.insync_state,
                PairRef(pair=self.pair),
                **device_op(self.timing),
            )
            return outcomes.tool_seen("InSync", running, st.running, st.host)

        return check

    def verify_allsync(
        self, side: Side, running: bool
    ) -> Callable[[StepState], Awaitable[str | None]]:
        async def check(_: StepState) -> str | None:
            where = SideInput(pair=self.pair, side=side)
            st = await workflow.execute_activity_method(
                SyncToolActivities.allsync_state, where, **device_op(self.timing), **on_site(where),
            )  # fmt: skip
            return outcomes.tool_seen("AllSync", running, st.running, st.host)

        return check

    # -- client switches -------------------------------------------------------------------------
    async def switch_clients(self, step: StepState, hosts: list[str], to: Side) -> str:
        """Switch clients in parallel, one child workflow each, at most N at a time.

        A client that fails waits for its own decision (retry or skip) while the
        others go on; after an abort no new client starts, and those in flight finish.
        """
        runner = self.steps
        if step.clients is None or not workflow.patched(CLIENTS_CONTINUE_PATCH):
            step.clients = [ClientProgress(host=h, to=to) for h in hosts]
        # else: carried over from the run before this one (or a retry of the step): the
        # clients go on from where they were, none is switched twice.
        runner.publish()
        if not step.clients:
            return outcomes.NO_CLIENTS
        return await self.move_clients(step, step.clients)

    async def child_tag(self) -> str:
        """The random part of this run's child workflow ids: drawn once by an activity, so
        that nobody can take a child's id before the run starts it."""
        if self._tag is None:
            info = workflow.info()
            if workflow.patched(RANDOM_IDS_PATCH):
                self._tag = await new_tag(self.pair)
            elif workflow.patched(CHILD_ID_PATCH):
                # Run ids are uuid7: their first characters are a timestamp shared by runs
                # started within a minute; the last ones are random.
                self._tag = run_tag(info.run_id)
            else:
                self._tag = info.run_id[:8]
        return self._tag

    async def move_clients(self, step: StepState, clients: list[ClientProgress]) -> str:
        tag = await self.child_tag()
        if workflow.patched(BATCH_PATCH):
            await self._move_in_batches(step, clients, tag)
        else:
            await self._move_one_by_one(step, clients, tag)
        self.steps.check_abort()
        return outcomes.clients_switched(
            [c.seconds or 0 for c in clients if c.status == "done"],
            [c.host for c in clients if c.status == "skipped"],
        )

    async def _move_in_batches(
        self, step: StepState, clients: list[ClientProgress], tag: str
    ) -> None:
        """One `client-batch` child per `client_batch_size` clients, every client at once
        unless the inventory sets `max_parallel_clients` (a limit per side the clients go
        to, where that side's bridges need one). A failed client waits for its own
        decision; a retry switches it alone, in a batch of one.

        While the clients switch, signals still arrive, and the server keeps each one it
        accepts: when the history has grown, the run continues as new here, once no
        batch is being started and nothing waits to be read. The batches go on (they are
        abandoned, never cancelled) and the next run, given this step's clients, follows
        each batch still switching (`client_batch_result`), waits again for the failed
        ones' decisions, and starts only the clients that had not started."""
        runner = self.steps
        may_continue = workflow.patched(CLIENTS_CONTINUE_PATCH)
        batches = _ClientBatches(self, step, clients, tag)
        work: list[Awaitable[None]] = []
        todo = clients
        if may_continue:
            todo, work = batches.carried_over(clients)
        work += batches.new(todo)
        all_done = asyncio.ensure_future(asyncio.gather(*work))
        if may_continue and runner.continue_as_new is not None:
            await workflow.wait_condition(
                lambda: (
                    all_done.done()
                    or (batches.starting == 0 and runner.quiet() and runner.should_continue())
                )
            )
            if not all_done.done():
                runner.render()
                workflow.logger.info(
                    "continuing as new after %d events while clients switch",
                    workflow.info().get_current_history_length(),
                )
                await runner.continue_as_new()
        await all_done

    async def _move_one_by_one(
        self, step: StepState, clients: list[ClientProgress], tag: str
    ) -> None:
        """Before the `client-batches` patch: one `client-switch` child per client."""
        runner = self.steps
        limit = asyncio.Semaphore(self.timing.max_parallel_clients or max(1, len(clients)))

        async def one(cp: ClientProgress) -> None:
            while True:
                async with limit:
                    if runner.abort is not None:
                        return
                    cp.status, cp.error = "switching", None
                    cp.attempts += 1
                    runner.publish()
                    suffix = f"-{cp.attempts}" if cp.attempts > 1 else ""
                    assert cp.to is not None
                    # From the pair, not workflow_id, so a history replays under any id.
                    cp.workflow_id = f"amsm-{self.pair}-{tag}-{cp.host}{suffix}"
                    result = await workflow.execute_child_workflow(
                        ClientSwitchWorkflow.run,
                        ClientSwitchInput(
                            pair=self.pair, host=cp.host, to=cp.to, timing=self.timing
                        ),
                        id=cp.workflow_id,
                        # A client switch that has started is never cancelled half-way.
                        parent_close_policy=ParentClosePolicy.ABANDON,
                        cancellation_type=ChildWorkflowCancellationType.ABANDON,
                    )
                if not await self._retry_wanted(step, cp, result):
                    return

        await asyncio.gather(*(one(cp) for cp in clients))

    async def _retry_wanted(
        self, step: StepState, cp: ClientProgress, r: ClientSwitchResult
    ) -> bool:
        """Record a client's result; a failed one waits for its own decision. True when
        the operator asked for it to be switched again."""
        runner = self.steps
        cp.seconds = r.seconds
        if r.ok:
            cp.status, cp.message = "done", r.message
            runner.publish()
            return False
        cp.status, cp.error = "failed", r.message
        if not step.pending_clients:
            # Every client has finished and one failed: the step waits on the operator.
            step.status = "failed"
        try:
            d = await runner.decision_for(f"{step.id}/{cp.host}")
        except Aborted:
            return False
        if step.status == "failed":
            step.status = "running"
        if d.action == "skip":
            cp.status, cp.message = "skipped", outcomes.client_skipped(d.operator, d.reason)
            runner.publish()
            return False
        return True

    async def hold_for_blackout(self, step: StepState) -> None:
        """Rule no-switch-in-blackout: clients are not restarted on air. A batch due in a
        window waits for its end, and the step's note says so ("held for News at Six
        until 18:40 +01:00"). Only a run whose inventory has windows comes here."""
        now = workflow.now()
        on_air = blackout.window_at(self.holds, now) if self.holds else None
        if on_air is None or not workflow.patched(blackout.PATCH):
            return
        until = blackout.clear_at(self.holds, now)
        before, step.note = step.note, "clients " + blackout.held(on_air, until)
        self.steps.publish()
        await workflow.sleep(until - now)
        step.note = before
        self.steps.publish()

    def clients_on(
        self, status: PairStatus, side: Side, exclude: list[str] | None = None
    ) -> list[str]:
        return client_plans.to_switch(_clients(status), side, exclude or [])

    def unknown_clients(self, status: PairStatus) -> str:
        return client_plans.side_unknown(_clients(status))


def _clients(status: PairStatus) -> list[client_plans.Client]:
    """The pair's clients as the client plans take them."""
    return [(c.host, c.side, c.status) for c in status.clients]


class _ClientBatches:
    """The `client-batch` children of one step's clients (PairWorkflow._move_in_batches):
    the batches it starts, the ones an earlier run started that it follows, and each
    client's result, a failed one waiting for its own decision."""

    def __init__(
        self, wf: PairWorkflow, step: StepState, clients: list[ClientProgress], tag: str
    ) -> None:
        self.wf = wf
        self.runner = wf.steps
        self.step = step
        self.tag = tag
        most = wf.timing.max_parallel_clients or len(clients) or 1
        self.size = min(wf.timing.client_batch_size, most)
        self.limits = {side: asyncio.Semaphore(max(1, most // self.size)) for side in ("X", "Y")}
        self.starting = 0  # batches whose child is being started: the run does not continue then

    def carried_over(
        self, clients: list[ClientProgress]
    ) -> tuple[list[ClientProgress], list[Awaitable[None]]]:
        """A step carried over from the run before: each client from where it was. The
        clients still to start, and the work of those that had: a failed one waits for
        its decision again, a batch still switching is followed."""
        todo = [
            c
            for c in clients
            if c.status == "pending" or (c.status not in ("done", "skipped") and not c.workflow_id)
        ]
        work: list[Awaitable[None]] = []
        following: dict[str, list[ClientProgress]] = {}
        for cp in clients:
            if cp.status == "switching" and cp.workflow_id:
                following.setdefault(cp.workflow_id, []).append(cp)
            elif cp.status == "failed" and cp.workflow_id:
                failed = ClientSwitchResult(
                    host=cp.host, ok=False, message=cp.error or "failed", seconds=0
                )
                work.append(self.settle(cp, failed))
        work += [self.follow(g, wid) for wid, g in following.items()]
        return todo, work

    def new(self, todo: list[ClientProgress]) -> list[Awaitable[None]]:
        """The batches of the clients `todo`, `size` clients each."""
        # A batch goes to one side (a split's move-editors sends clients both ways).
        sides = list(dict.fromkeys(cp.to for cp in todo))
        groups = [
            part[i : i + self.size]
            for side in sides
            for part in [[cp for cp in todo if cp.to == side]]
            for i in range(0, len(part), self.size)
        ]
        # (A run that continued as new draws a new tag: its ids are new too.)
        prefix = f"amsm-{self.wf.pair}-{self.tag}-{self.step.id}"
        return [self.batch(g, f"{prefix}-{n}") for n, g in enumerate(groups, 1)]

    async def batch(self, group: list[ClientProgress], wid: str) -> None:
        async with self.limits[group[0].to or "X"]:
            await self.wf.hold_for_blackout(self.step)
            if self.runner.abort is not None:
                return
            for cp in group:
                cp.status, cp.error = "switching", None
                cp.attempts += 1
                cp.workflow_id = wid
            self.runner.publish()
            arg = ClientBatchInput(
                pair=self.wf.pair,
                clients=[ClientTarget(host=cp.host, to=cp.to) for cp in group if cp.to],
                timing=self.wf.timing,
                blackout=self.wf.holds,
            )
            self.starting += 1
            try:
                handle = await self._start(group, arg, wid)
            finally:
                self.starting -= 1
            result = await handle
        await self.settle_all(group, result)

    async def _start(
        self, group: list[ClientProgress], arg: ClientBatchInput, wid: str
    ) -> ChildWorkflowHandle[ClientBatchWorkflow, ClientBatchResult]:
        for tries in range(1, 4):
            try:
                return await workflow.start_child_workflow(
                    ClientBatchWorkflow.run,
                    arg,
                    id=wid,
                    # A client switch that has started is never cancelled
                    # half-way, nor ended by the run continuing as new.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    cancellation_type=ChildWorkflowCancellationType.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                # Someone holds the id (it cannot have been guessed; it can have
                # been read): never trust what runs there, start under a new one.
                if tries == 3:
                    raise
                workflow.logger.warning("child id %s is taken; a new one", wid)
                wid = f"{wid}-{await new_tag(self.wf.pair)}"
                for cp in group:
                    cp.workflow_id = wid
        raise AssertionError("the third try returns or raises")

    async def follow(self, group: list[ClientProgress], wid: str) -> None:
        """A batch an earlier run of this workflow started and that may still run."""
        async with self.limits[group[0].to or "X"]:
            try:
                result = await workflow.execute_activity_method(
                    PairActivities.client_batch_result,
                    BatchRef(pair=self.wf.pair, workflow_id=wid),
                    **batch_wait(self.wf.timing),
                )
            except ActivityError as e:
                why = f"its switch ({wid}) could not be followed: {describe_failure(e)}"
                result = ClientBatchResult(
                    results=[
                        ClientSwitchResult(host=cp.host, ok=False, message=why, seconds=0)
                        for cp in group
                    ]
                )
        await self.settle_all(group, result)

    async def settle_all(self, group: list[ClientProgress], result: ClientBatchResult) -> None:
        by_host = {r.host.lower(): r for r in result.results}
        await asyncio.gather(*(self.settle(cp, by_host.get(cp.host.lower())) for cp in group))

    async def settle(self, cp: ClientProgress, r: ClientSwitchResult | None) -> None:
        if r is None:  # cannot happen: every client of a batch has a result
            r = ClientSwitchResult(host=cp.host, ok=False, message="no result", seconds=0)
        if await self.wf._retry_wanted(self.step, cp, r):
            await self.batch([cp], f"amsm-{self.wf.pair}-{self.tag}-{cp.host}-{cp.attempts + 1}")


class KindWorkflow(PairWorkflow):
    """The template of the workflows an operator starts (workflows/kinds.py): each kind's
    class runs `run_kind` with its row and says, in `prepare`, what it refuses and how it
    walks its steps."""

    kind: Kind  # the row this run runs (a copy of a kind may run another kind's class)

    async def run_kind(self, kind: Kind, raw: RawValue) -> Checklist:
        """Read the input, open the checklist titled from the row, read the pair (refused
        under a fence that waits on a side this run makes main), then the kind's own
        precondition and walk."""
        self.kind = kind
        inp: Any = read_input(kind.input, raw, kind.name)
        side: Side = getattr(inp, kind.side)
        a, b = kind.sides(side)
        self._start_runner(
            StepRunner(
                kind.name,
                inp.pair,
                kind.title(a, b, inp),
                inp.initiator,
                kind.table(a, b),
                gates=dict(kind.gates),
                resume=inp.resume,
            ),
            inp,
        )
        try:
            status = await self.bootstrap(inp.pair, kind.makes_main(side))
            self.blackout_check(inp)
            body = self.prepare(inp, status, a, b)
        except ApplicationError:
            await self.told()  # a refused run: who is told hears it
            raise
        return await self.walk(break_glass_first(self.steps, body))

    def blackout_check(self, inp: Any) -> None:
        """Rule no-switch-in-blackout at the start: refused inside a window unless the
        operator overrode it (then recorded, and no client waits). Reached only when the
        inventory has windows or the start names overrides; a continuation is not
        checked again (refuse)."""
        overrides = getattr(inp, "overrides", [])
        if not (self.caps.blackout or overrides) or not workflow.patched(blackout.PATCH):
            return
        what = self.steps.checklist.workflow
        self.require(what, start_override_problem(overrides))
        forcing = [o for o in overrides if o.rule == RULE_NO_SWITCH_IN_BLACKOUT]
        on_air = blackout.window_at(self.caps.blackout, workflow.now())
        self.holds = [] if forcing else self.caps.blackout
        if self.resuming or not forcing:
            if on_air is not None:
                self.refuse(what, blackout.refusal(on_air))
            return
        o = forcing[0]
        used = on_air is not None
        self.steps.checklist.overrides.append(
            OverrideRecord(
                rule=o.rule,
                operator=self.steps.checklist.initiator,
                reason=o.reason,
                used=used,
                overrode=[blackout.refusal(on_air)] if on_air else [],
                outcome=f"used: {blackout.forced(on_air)}"
                if on_air
                else "not needed: no blackout window was on air at the start",
            )
        )
        self.steps.publish()

    def prepare(
        self, inp: Any, status: PairStatus, a: Side, b: Side
    ) -> Callable[[], Awaitable[str]]:
        """Refuse the run if its precondition does not hold on `status`; else the body
        that walks its steps ((a, b): Kind.sides of the input's side)."""
        raise NotImplementedError
