"""The checklist engine shared by every big workflow.

A workflow walks its step table in order. An auto step runs an action; a manual
step waits for `confirm` (and, where the service can observe the effect, checks
it); a gate waits for `approve`. A step that fails after its retries waits for the
operator's `decide`: retry, skip (with a reason), or abort the run.

Every signal is recorded with the operator and note or reason; a signal that does
not fit (unknown step, a step not awaiting it, the wrong kind, a skip without a
reason) is rejected and shown in the checklist rather than crashing the workflow.
After each change the markdown checklist goes to `workflow.set_current_details`,
which the Web UI shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from inventory import intent
from inventory.intent import SignedIntent
from inventory.models import Approval
from workflows import outcomes, rules, search
from workflows.limits import (
    CONTINUE_AFTER_EVENTS,
    CONTINUE_AFTER_SIGNALS,
    CONTINUE_SIGNALS_EVERY,
    MAX_CONTINUED_BYTES,
    MAX_NAME,
    REJECTED_KEPT,
    cut,
    history_is_long,
)
from workflows.models import (
    ApprovalRecord,
    Checklist,
    Decision,
    DecisionRecord,
    OperatorSignal,
    RejectedSignal,
    StepDef,
    StepRecord,
    StepState,
    StepStatus,
    UpdateResult,
)
from workflows.view import render_markdown

T = TypeVar("T")
SKIPPED = object()  # what _attempt returns when the operator skipped the step


CANCEL_OPERATOR = "temporal (cancel request)"
# Runs started before a waiting run could continue as new replay without it.
CONTINUE_PATCH = "continue-as-new-while-waiting"
# Runs started before each step's changes were recorded in the history replay without them.
RECORD_PATCH = "record-step-outcomes"
# Runs started before a run continued as new once it had received CONTINUE_AFTER_SIGNALS
# signals (the server refuses a run's signals past history.maximumSignalsPerExecution,
# workflows/server.py) replay without it.
SIGNALS_PATCH = "continue-after-signals"
# Runs started before a run continued for its signal count no sooner than
# CONTINUE_SIGNALS_EVERY seconds after it started (a storm kept the run closing and
# starting, and the operator's updates were refused) replay without the wait.
PACED_PATCH = "continue-after-signals-paced"
# The memo field each record goes to: the history keeps every upsert as an event
# (WorkflowPropertiesModified), so a run that never finishes still says what each step
# became, as data (records/history.py reads them back).
STEP_RECORDS = "amsm-steps"
# The same for the signals it rejected: their count, and the ones since the last record
# (at most REJECTED_KEPT), so that a report need not judge them again.
REJECTED_RECORDS = "amsm-rejected"
# Runs started before a confirmed manual step showed "running" while it acts replay with
# it still awaiting confirmation then (a state change upserts a search attribute).
RUNNING_PATCH = "manual-step-running-after-confirm"
# Runs started before a failed automatic step could continue as new while it waits for
# its decision replay without it.
FAILED_CONTINUE_PATCH = "continue-while-a-step-failed"
# Signed acts (docs/operators/signed-acts.md): an act's intent verified, a replayed, bad,
# expired or misbound one refused, and an unsigned one refused under require_signed.
INTENT_PATCH = "signed-intents"
# Two people for what cannot be undone (docs/operators/two-person.md): a gate the
# inventory's `approvals` names opens only on that many distinct proven people, each
# approval bound to what the gate showed. Reached only where the run's inventory has
# `approvals` for the gate.
TWO_PERSON_PATCH = "two-person"
RECORD_TEXT = 2000  # a record's texts are cut to this: the checklist has them whole


def step_record(s: StepState, at: str) -> dict[str, object]:
    """What the history keeps of a step when it changes (models.StepRecord)."""
    texts = {
        f: v if len(v) <= RECORD_TEXT else v[: RECORD_TEXT - 1] + "…"
        for f in ("reason", "note", "message", "error")
        if (v := getattr(s, f))
    }
    rec = StepRecord(
        step=s.id, at=at, status=s.status, outcome=s.outcome, operator=s.operator, **texts
    )
    return rec.model_dump(mode="json", exclude_none=True)


def _recorded_as(s: StepState) -> tuple[object, ...]:
    return (s.status, s.outcome, s.reason, s.operator, s.note, s.message, s.error)


class Aborted(Exception):
    """The operator aborted the run; raised at the next safe point."""


def describe_failure(e: BaseException) -> str:
    """The device's own error text, without Temporal's wrapping."""
    cause: BaseException | None = e
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)


class StepRunner:
    """Holds a run's checklist and walks it."""

    # Signed acts: the public keys the worker hands the run (get_capabilities), by
    # operator in lower case, the console's, and whether an unsigned act is refused.
    operator_keys: Mapping[str, str] = MappingProxyType({})
    console_key: str | None = None
    require_signed = False
    # The inventory's `approvals` (docs/operators/two-person.md), by gate id; the gates
    # judging an approval just taken (replaced, never changed in place).
    approval_rules: Mapping[str, Approval] = MappingProxyType({})
    _judging: frozenset[str] = frozenset()

    def __init__(
        self,
        workflow_name: str,
        pair: str,
        title: str,
        initiator: str,
        steps: list[StepDef],
        gates: dict[str, tuple[str, ...]] | None = None,
        resume: Checklist | None = None,
    ) -> None:
        """`gates`: for each gate whose skip is allowed, the steps it guards (a skip
        passes them over too); any other gate can only be approved. `resume`: the
        checklist a run continued as new with; the walk goes on where it was."""
        info = workflow.info()
        if resume is not None:
            self.checklist = resume.model_copy(deep=True)
            self.checklist.first_run_id = resume.first_run_id or resume.run_id
            self.checklist.continued += 1
            self.checklist.run_id, self.checklist.workflow_id = info.run_id, info.workflow_id
        else:
            self.checklist = Checklist(
                workflow=workflow_name,
                pair=pair,
                title=title,
                run_id=info.run_id,
                workflow_id=info.workflow_id,
                initiator=initiator,
                started_at=self.now(),
                steps=[StepState(id=s.id, kind=s.kind, title=s.title) for s in steps],
            )
        self._signals: dict[str, OperatorSignal] = {}
        self._decisions: dict[str, Decision] = {}  # key: step or step/client
        self.last_signal: dict[str, OperatorSignal] = {}  # the confirmation each step took
        self.operators: set[str] = set()  # who may act; empty: anyone
        self.abort: Decision | None = None
        self._indexed_state = "running"  # the client sets AmsmState=running at start
        self._dirty = True
        self._render_task = asyncio.get_running_loop().create_task(self._renderer())
        self.gates = dict(gates or {})
        # Set by the workflow: how a gate that needs several people reads its devices
        # again after each approval (its items and message afresh).
        self.rereads: dict[str, Callable[[StepState], Awaitable[str]]] = {}
        # Set by the workflow: continue as new with the checklist (raises, once the update
        # handlers in flight have answered; returns when the continuation would be too big
        # to send, see cannot_continue). Runs started before the patch never continue.
        self.continue_as_new: Callable[[], Awaitable[None]] | None = None
        self._may_continue = workflow.patched(CONTINUE_PATCH)
        self.continue_after_events = CONTINUE_AFTER_EVENTS  # the inventory's, once read
        # How many signals this run (this execution) has received: set by the workflow.
        self.signals_received: Callable[[], int] = lambda: 0
        self._counts_signals = workflow.patched(SIGNALS_PATCH)
        self._paced = self._counts_signals and workflow.patched(PACED_PATCH)
        self._started = workflow.now()  # this run's (this execution's) start
        # What the history last recorded of each step (a continued run: its checklist).
        self._records = workflow.patched(RECORD_PATCH)
        self._running_after_confirm = workflow.patched(RUNNING_PATCH)
        self._continue_when_failed = workflow.patched(FAILED_CONTINUE_PATCH)
        self._recorded = {s.id: _recorded_as(s) for s in self.checklist.steps}
        self._rejected_recorded = self.checklist.rejected_total
        # Shown each change (workflows/notify.py Notices.seen) when the run tells people.
        self.on_publish: Callable[[], None] | None = None
        self.publish()

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def now() -> str:
        return workflow.now().isoformat(timespec="seconds")

    def publish(self) -> None:
        c = self.checklist
        c.settle_state()
        self._dirty = True
        if self._records:
            self._record_changes()
        if c.state != self._indexed_state and workflow.patched(search.STATE_PATCH):
            # Only on a change of state: one command per transition, not per update.
            workflow.upsert_search_attributes([search.STATE.value_set(c.state)])
            self._indexed_state = c.state
        if c.state not in ("running", "awaiting-operator"):
            self.render()
        if self.on_publish is not None:
            self.on_publish()

    def touch(self) -> None:
        """Something besides a step changed (a delivery): draw the checklist again."""
        self._dirty = True

    def _record_changes(self) -> None:
        """One memo upsert with what changed since the last one (nothing: no event): the
        steps and the signals rejected."""
        c = self.checklist
        changed = [s for s in c.steps if _recorded_as(s) != self._recorded[s.id]]
        memo: dict[str, object] = {}
        # To the millisecond (the checklist's own times are to the second): a report
        # measures steps shorter than a second, and the benchmark each step's overhead.
        at = workflow.now().isoformat(timespec="milliseconds")
        if changed:
            memo[STEP_RECORDS] = [step_record(s, at) for s in changed]
        if c.rejected_total > self._rejected_recorded:
            since = min(c.rejected_total - self._rejected_recorded, len(c.rejected))
            memo[REJECTED_RECORDS] = {
                "total": c.rejected_total,
                "last": [r.model_dump(mode="json") for r in c.rejected[len(c.rejected) - since :]],
            }
        if not memo:
            return
        workflow.upsert_memo(memo)
        for s in changed:
            self._recorded[s.id] = _recorded_as(s)
        self._rejected_recorded = c.rejected_total

    def render(self) -> None:
        """The markdown checklist to the Web UI's current details (no history event)."""
        self._dirty = False
        workflow.set_current_details(render_markdown(self.checklist, self.now()))

    async def _renderer(self) -> None:
        # Once per activation at most, however many signals it carried: rendering a
        # checklist of hundreds of clients for each of 4,000 signals would wedge the task.
        while True:
            await workflow.wait_condition(lambda: self._dirty)
            if self._records:
                self._record_changes()  # rejected signals: once per activation too
            self.render()

    def reject(self, signal: str, step: str, operator: str, reason: str) -> None:
        """Record a rejected signal: counted, the last few kept (cut short), logged on one
        line. A storm of them costs a list append each, not a checklist rendering each."""
        c = self.checklist
        c.rejected_total += 1
        c.rejected.append(
            RejectedSignal(
                at=self.now(),
                signal=cut(signal, MAX_NAME),
                step=cut(step, MAX_NAME),
                operator=cut(operator, MAX_NAME),
                reason=cut(reason),
            )
        )
        del c.rejected[:-REJECTED_KEPT]
        if c.rejected_total <= REJECTED_KEPT or c.rejected_total % 100 == 0:
            workflow.logger.warning(
                "rejected %s %s by %s: %s (%d rejected in all)",
                *(cut(x, 80) for x in (signal, step, operator, reason)),
                c.rejected_total,
                extra={"step": cut(step, MAX_NAME)},
            )
        self._dirty = True

    # -- signals ------------------------------------------------------------------------------
    def check_signal(self, kind: str, sig: OperatorSignal) -> str | None:
        """Why a confirm/approve would be rejected now, or None when it fits
        (workflows/rules.py)."""
        try:
            step: rules.StepView | None = rules.view(self.checklist.step(sig.step))
        except KeyError:
            step = None
        if kind == "approve" and sig.step in self._judging:
            # A gate that needs several people, taking another approval (only under the
            # two-person patch is anything judged): say so, not "running".
            return rules.judging_refusal(sig.step)
        return rules.signal_refusal(kind, sig.step, step, taken=sig.step in self._signals)

    def not_operator(self, who: str) -> str | None:
        return rules.operator_refusal(self.operators, who)

    def prove(
        self,
        action: str,
        step_id: str,
        operator: str,
        signed: SignedIntent | None,
        client: str | None = None,
        clients: list[str] | None = None,
    ) -> tuple[str | None, str | None]:
        """Who an act is proven to be (docs/operators/signed-acts.md): (its proof, None), or
        (None, why it is refused). Reached only with a signed intent or under
        `identity.require_signed`; otherwise the act is as before (unproven where the
        pair has keys)."""
        if signed is None and not self.require_signed:
            return (intent.UNPROVEN if self.operator_keys or self.console_key else None), None
        if not workflow.patched(INTENT_PATCH):
            return None, None
        c = self.checklist
        try:
            items = c.step(step_id).items
        except KeyError:
            items = None
        bound = intent.Binding(
            pair=c.pair,
            run=c.first_run_id or c.run_id,
            step=step_id,
            action=action,
            operator=operator,
            client=client,
            shown=intent.shown_for(action, items, clients),
        )
        now = workflow.now()
        verdict = (
            None
            if signed is None
            else intent.verify(signed, self.operator_keys, now, c.nonces, bound, self.console_key)
        )
        refusal = rules.identity_refusal(
            verdict is not None,
            None if verdict is None else verdict.refusal_sentence,
            self.require_signed,
        )
        if refusal is not None or verdict is None or signed is None:
            return None, refusal
        # The nonce is kept while its intent could still be taken, then dropped.
        c.nonces = {n: at for n, at in c.nonces.items() if intent.fresh(at, now)}
        c.nonces[signed.intent.nonce] = signed.intent.at
        return verdict.proof, None

    def on_signal(self, kind: str, sig: OperatorSignal) -> str | None:
        """Accept a confirm/approve for the step that awaits it; reject anything else
        visibly. Returns the reason of a rejection."""
        reason = self.not_operator(sig.operator) or self.check_signal(kind, sig)
        proof = None
        if reason is None:
            proof, reason = self.prove(
                kind, sig.step, sig.operator, sig.intent, clients=sig.clients
            )
        rule = self.approval_rule(sig.step) if kind == "approve" and reason is None else None
        if rule is not None:
            reason = self._approval(sig, proof, rule)
        if reason is not None:
            self.reject(kind, sig.step, sig.operator, reason)
            return reason
        if proof is not None and rule is None:
            self.checklist.step(sig.step).proof = proof
        self._signals[sig.step] = sig
        workflow.logger.info("%s %s by %s", kind, sig.step, sig.operator, extra={"step": sig.step})
        return None

    def approval_rule(self, step_id: str) -> Approval | None:
        """The inventory's rule for a gate that needs several people, or None (and old
        runs, which never reach the patch)."""
        rule = self.approval_rules.get(step_id)
        if rule is None or not workflow.patched(TWO_PERSON_PATCH):
            return None
        return rule

    def _approval(self, sig: OperatorSignal, proof: str | None, rule: Approval) -> str | None:
        """Record one approval of a gate that needs several people, or why it is refused
        (workflows/rules.py approval_refusal); the walk judges it (`_judge`)."""
        step = self.checklist.step(sig.step)
        reason = rules.approval_refusal(
            step.id,
            sig.operator,
            proof not in (None, intent.UNPROVEN),
            [a.operator for a in step.counted],
            self.checklist.initiator,
            rule.required,
            rule.not_initiator,
        )
        if reason is not None:
            return reason
        record = ApprovalRecord(
            at=self.now(),
            operator=sig.operator,
            proof=proof,
            note=sig.note,
            shown=intent.shown(step.items),
        )
        step.approvals = [*(step.approvals or []), record]
        self._judging = self._judging | {step.id}
        return None

    async def _judge(self, step: StepState, rule: Approval) -> bool | None:
        """A gate that needs several people took one more approval: read its devices again
        (where the run says how), let lapse every approval given to what it showed before,
        and open (True) when enough distinct people still count; False: it waits on;
        None: skipped while a reading failed."""
        try:
            reread = self.rereads.get(step.id)
            if reread is not None:
                step.status = "running"
                self.publish()
                read = await self._attempt(step, reread)
                if read is SKIPPED:
                    return None
                step.message = str(read)
            now = intent.shown(step.items)
            for a in step.approvals or []:
                if a.lapsed is None:
                    a.lapsed = rules.lapse_reason(a.shown, now, step.message or "")
        finally:
            self._judging = self._judging - {step.id}
        counted = step.counted
        if len(counted) < rule.required:
            return False
        step.operator = cut(" and ".join(a.operator for a in counted), MAX_NAME)
        step.proof = "; ".join(a.proof for a in counted if a.proof) or None
        notes = "; ".join(f"{a.operator}: {a.note}" for a in counted if a.note)
        step.note = notes or None
        return True

    def add_gate_first(self, step_id: str, title: str, items: list[str]) -> StepState:
        """A gate the step table does not have, before every step (a break-glass
        override's approvals, workflows/overrides.py); kept as it is when the run
        continued as new with it."""
        c = self.checklist
        for s in c.steps:
            if s.id == step_id:
                return s
        step = StepState(id=step_id, kind="gate", title=title, items=items)
        c.steps.insert(0, step)
        self._recorded[step_id] = _recorded_as(step)
        self.publish()
        return step

    def check_decision(self, d: Decision) -> str | None:
        """Why a decision would be rejected now, or None when it fits (workflows/rules.py)."""
        try:
            step: rules.StepView | None = rules.view(self.checklist.step(d.step))
        except KeyError:
            step = None
        return rules.decision_refusal(
            d,
            step,
            aborting_by=self.abort.operator if self.abort is not None else None,
            gate_skippable=d.step in self.gates,
            decided=d.step in self._decisions,
        )

    def on_decision(self, d: Decision) -> str | None:
        """retry / skip a failed step or client, skip a waiting manual step, or abort the run.
        Returns the reason of a rejection."""
        reason = self.not_operator(d.operator) or self.check_decision(d)
        proof = None
        if reason is None:
            proof, reason = self.prove(d.action, d.step, d.operator, d.intent, client=d.client)
        if reason is not None:
            self.reject("decide", d.step, d.operator, reason)
            return reason
        if d.action == "abort":
            if self.abort is None:
                self.abort = d
                self._record(d)
                self._prove_last(proof)
            return None
        step = self.checklist.step(d.step)
        if step.clients is not None and (d.client or step.failed_clients):
            for c in step.failed_clients:
                if d.client in (None, c.host):
                    self._decisions[f"{step.id}/{c.host}"] = d
        else:
            self._decisions[step.id] = d
        if proof is not None and d.action == "skip":
            step.proof = proof
        self._record(d)
        self._prove_last(proof)
        return None

    def _prove_last(self, proof: str | None) -> None:
        """The decision just recorded: proven by whose key, or unproven."""
        if proof is not None:
            self.checklist.decisions[-1].proof = proof

    def taken(self, payload: OperatorSignal | Decision) -> bool:
        """An accepted confirm, approve or decision has been acted on: the walk took it
        from where it waits (an abort at once: it stops the run at the next safe point),
        or the run has stopped."""
        if self.abort is not None or self.checklist.state not in ("running", "awaiting-operator"):
            return True
        if isinstance(payload, OperatorSignal):
            return payload.step not in self._signals and payload.step not in self._judging
        if payload.action == "abort":
            return True
        prefix = f"{payload.step}/"
        return payload.step not in self._decisions and not any(
            k.startswith(prefix) for k in self._decisions
        )

    def answer(self, payload: OperatorSignal | Decision, refused: str | None) -> UpdateResult:
        """What an update answers: refused, or the step as the run left it once taken."""
        c = self.checklist
        try:
            status: StepStatus | None = c.step(payload.step).status
        except KeyError:
            status = None
        return UpdateResult(
            accepted=refused is None,
            reason=refused,
            run_id=workflow.info().run_id,
            step=payload.step,
            step_status=status,
            awaiting=c.awaiting[0].id if c.awaiting else None,
        )

    def _record(self, d: Decision) -> None:
        self.checklist.decisions.append(
            DecisionRecord(
                at=self.now(),
                step=d.step,
                action=d.action,
                operator=d.operator,
                reason=d.reason,
                client=d.client,
            )  # fmt: skip
        )
        workflow.logger.info(
            "decide %s %s %s by %s",
            d.action,
            d.step,
            d.client or "",
            d.operator,
            extra={"step": d.step, "host": d.client},
        )
        self.publish()

    # -- waiting ---------------------------------------------------------------------------------
    async def wait(
        self, ready: Callable[[], bool], remind: float = 0, may_continue: bool = False
    ) -> None:
        """Wait for `ready` or an abort; refresh the reminder of how long it has waited.
        `may_continue`: nothing else is in flight, so when the history has grown the run
        continues as new from here (a storm of signals cannot fill it)."""
        again = may_continue and self.continue_as_new is not None and self._may_continue
        while True:
            # A run too young to continue for its signal count waits for the pace with a
            # timer (a storm that has ended leaves no signal to wake it); until it has
            # one, reaching the count wakes it to start that timer. Runs before the
            # pace (PACED_PATCH) have no pace: their condition is as it was.
            pace = self._pace_left() if again else 0.0
            cond = lambda unpaced=(again and pace <= 0): (  # noqa: E731
                ready()
                or self.abort is not None
                or (again and self.should_continue())
                or (unpaced and self._pace_left() > 0)
            )
            if pace > 0 and (remind <= 0 or pace < remind):
                try:
                    await workflow.wait_condition(cond, timeout=timedelta(seconds=max(pace, 1)))
                except TimeoutError:
                    continue
            elif remind > 0:
                try:
                    await workflow.wait_condition(cond, timeout=timedelta(seconds=remind))
                except TimeoutError:
                    self.publish()
                    continue
            else:
                await workflow.wait_condition(cond)
            if not ready() and self.abort is not None:
                raise Aborted()
            if not ready() and again and pace <= 0 < self._pace_left():
                continue  # the count is reached: wait again, with the pace's timer
            if ready() or not (again and self.should_continue()):
                return
            self.render()
            workflow.logger.info(
                "continuing as new after %d events and %d signals",
                workflow.info().get_current_history_length(),
                self.signals_received(),
            )
            assert self.continue_as_new is not None
            # Returns only when the continuation would be too big to send: then
            # should_continue() is false from here on, and the run waits on in this history.
            await self.continue_as_new()

    def cannot_continue(self, size: int) -> None:
        """The continuation would be bigger than the server takes (it would fail its
        workflow task for ever): this run stops trying and goes on in one history."""
        self.continue_as_new = None
        self.checklist.message = (
            f"this run cannot continue as new: its checklist is {size:,} bytes, over the "
            f"{MAX_CONTINUED_BYTES:,} the server takes; it goes on in one history"
        )
        workflow.logger.error("cannot continue as new: %d bytes", size)
        self.publish()

    def cancel_requested(self) -> None:
        """A cancellation request (Web UI, temporal CLI) is an abort: in-flight client
        switches finish, nothing new starts, the checklist ends with where the devices are."""
        workflow.logger.warning("cancellation requested: treated as an abort")
        if self.abort is None:
            d = Decision(
                action="abort",
                operator=CANCEL_OPERATOR,
                reason="cancellation requested in Temporal (Web UI or CLI); treated as an abort",
            )
            self.abort = d
            self._record(d)

    def should_continue(self) -> bool:
        """True when the history has grown enough that a waiting run continues as new, or
        when it has received so many signals that the server would soon refuse more."""
        if self.continue_as_new is None or not self._may_continue:
            return False
        return history_is_long(self.continue_after_events) or (
            self._counts_signals
            and self.signals_received() >= CONTINUE_AFTER_SIGNALS
            and not self._pace_left()
        )

    def _pace_left(self) -> float:
        """Seconds before this run may continue for its signal count (0: it may, or the
        count is not reached, or the run is older than the pace)."""
        if not self._paced or self.signals_received() < CONTINUE_AFTER_SIGNALS:
            return 0.0
        lived = (workflow.now() - self._started).total_seconds()
        return max(0.0, CONTINUE_SIGNALS_EVERY - lived)

    def quiet(self) -> bool:
        """Nothing accepted and not yet acted on (a decision, a confirmation, an abort):
        the run can continue as new without leaving it behind."""
        return self.abort is None and not self._decisions and not self._signals

    def check_abort(self) -> None:
        if self.abort is not None:
            raise Aborted()

    async def decision_for(self, key: str, may_continue: bool = False) -> Decision:
        self.publish()
        await self.wait(lambda: key in self._decisions, may_continue=may_continue)
        return self._decisions.pop(key)

    # -- steps -----------------------------------------------------------------------------------
    async def run(
        self,
        step_id: str,
        action: Callable[[StepState], Awaitable[str]] | None = None,
        verify: Callable[[StepState], Awaitable[str | None]] | None = None,
        remind: float = 0,
        automatic: Callable[[StepState], Awaitable[str]] | None = None,
    ) -> StepState:
        """Walk one step. `action` for auto steps (and after a confirm, if given); `verify`
        checks a manual step's observable effect and returns what was seen when it disagrees;
        `automatic` does a manual step for the operator where the inventory says how."""
        self.check_abort()
        step = self.checklist.step(step_id)
        if step.status in ("done", "skipped"):
            return step  # done before the run continued as new
        for gate, guarded in self.gates.items():
            g = self.checklist.step(gate)
            if step_id in guarded and g.status == "skipped" and g.operator:
                # What a skipped gate guards is not done either (WORKFLOWS.md: only an
                # approval opens a gate).
                self.pass_over(step_id, outcomes.guarded_note(gate, g.note, g.operator))
                return step
        step.started_at = step.started_at or self.now()
        if automatic is not None:
            step.operator = outcomes.AUTOMATIC
            await self._run_auto(step, automatic)
        elif step.kind == "auto":
            assert action is not None, f"auto step {step_id} needs an action"
            await self._run_auto(step, action)
        else:
            await self._run_manual(step, action, verify, remind)
        if step.status != "skipped":
            step.status = "done"
            if automatic is not None:
                step.outcome = "automatic"
            elif step.kind == "auto":
                step.outcome = "done"
            elif step.outcome is None:  # "verified" when its check agreed
                step.outcome = "approved" if step.kind == "gate" else "confirmed"
        step.ended_at = self.now()
        self.publish()
        return step

    async def _run_auto(
        self, step: StepState, action: Callable[[StepState], Awaitable[str]]
    ) -> None:
        # A failed step waits for its decision with nothing in flight: it may continue as
        # new there (a run can wait days for it), and its continuation waits on for it.
        # (A client step that failed for its clients is not that: its action resumes the
        # clients, and each failed one waits for its own decision.)
        waits_across = self._continue_when_failed
        resumed_failed = waits_across and step.status == "failed" and not step.failed_clients
        while True:
            if resumed_failed:
                resumed_failed = False  # the run before failed it; the decision is next
            else:
                step.status = "running"
                step.error = None
                self.publish()
                try:
                    step.message = await action(step)
                    return
                except (ActivityError, ChildWorkflowError, ApplicationError) as e:
                    step.status = "failed"
                    step.error = describe_failure(e)
                    step.waiting_since = self.now()
            d = await self.decision_for(step.id, may_continue=waits_across)
            step.waiting_since = None
            if d.action == "skip":
                self.skip(step, d)
                return

    async def _run_manual(
        self,
        step: StepState,
        action: Callable[[StepState], Awaitable[str]] | None,
        verify: Callable[[StepState], Awaitable[str | None]] | None,
        remind: float,
    ) -> None:
        rule = self.approval_rule(step.id) if step.kind == "gate" else None
        if rule is not None:
            step.required = rule.required
        while True:
            step.status = "awaiting-approval" if step.kind == "gate" else "awaiting-confirmation"
            step.waiting_since = step.waiting_since or self.now()
            self.publish()
            await self.wait(
                lambda: step.id in self._signals or step.id in self._decisions,
                remind,
                may_continue=True,
            )
            if step.id in self._decisions:
                step.waiting_since = None
                self.skip(step, self._decisions.pop(step.id))
                return
            sig = self._signals.pop(step.id)
            if rule is not None:
                opens = await self._judge(step, rule)
                if opens is None:
                    step.waiting_since = None
                    return
                if not opens:
                    continue  # the same wait goes on: one more approval is needed
            step.waiting_since = None
            self.last_signal[step.id] = sig
            if rule is None:
                step.operator, step.note = sig.operator, sig.note
            if verify is not None:
                step.status, step.message = "running", outcomes.CHECKING
                self.publish()
                checked = await self._attempt(step, verify)
                if checked is SKIPPED:
                    return
                if checked is not None:
                    step.message = outcomes.not_verified(str(checked))
                    continue
                step.message, step.outcome = outcomes.VERIFIED, "verified"
            if action is not None:
                if self._running_after_confirm:
                    # Taken: it no longer waits for the operator (nor takes a second
                    # confirmation) while it acts, e.g. move-editors switching clients.
                    step.status = "running"
                    self.publish()
                done = await self._attempt(step, action)
                if done is SKIPPED:
                    return
                step.message = str(done)
            return

    async def _attempt(
        self, step: StepState, fn: Callable[[StepState], Awaitable[T]]
    ) -> T | object:
        """Run what follows a confirmation; when the device cannot be reached or refuses,
        the step turns failed and waits for retry or skip like any failed step.
        Returns SKIPPED when the operator skipped it."""
        while True:
            try:
                return await fn(step)
            except (ActivityError, ChildWorkflowError, ApplicationError) as e:
                step.status, step.error = "failed", describe_failure(e)
                step.waiting_since = self.now()
            d = await self.decision_for(step.id)
            step.waiting_since, step.error = None, None
            if d.action == "skip":
                self.skip(step, d)
                return SKIPPED
            step.status = "running"
            self.publish()

    def pass_over(self, step_id: str, note: str) -> None:
        """A step that has nothing to do in this run (e.g. no orphans to purge); `note`
        says why (workflows/outcomes.py)."""
        step = self.checklist.step(step_id)
        step.status, step.outcome = "skipped", "passed-over"
        step.note = note
        step.started_at = step.ended_at = self.now()
        self.publish()

    def skip(self, step: StepState, d: Decision) -> None:
        step.status, step.outcome, step.reason = "skipped", "skipped", d.reason
        step.operator = d.operator
        step.note = outcomes.skipped_note(d.reason)

    def fail(self, message: str) -> None:
        self.checklist.state = "failed"
        self.checklist.message = message
        self.checklist.ended_at = self.now()
        self.publish()

    def complete(self, message: str) -> None:
        self.checklist.state = "completed"
        self.checklist.message = message
        self.checklist.ended_at = self.now()
        self.publish()

    def aborted(self, final_state: list[str]) -> None:
        d = self.abort
        c = self.checklist
        c.state = "aborted"
        c.message = outcomes.aborted_message(d.operator if d else "?", d.reason if d else "")
        c.final_state = final_state
        c.ended_at = self.now()
        for s in c.steps:
            if s.status in ("awaiting-confirmation", "awaiting-approval", "running", "failed"):
                s.status, s.outcome = "skipped", "aborted"
                s.note = outcomes.aborted_note(s.note)
                s.waiting_since = None
        self.publish()
