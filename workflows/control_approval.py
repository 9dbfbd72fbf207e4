"""A console control's break-glass override, approved by several people
(docs/operators/two-person.md, "A control's override").

Under the inventory's `approvals: {break-glass: {required: N}}` a control that names an
override does not act at once: it starts this run as its child, under
amsm-<pair>-control-approval, and acts only once it completes. Its one step, the gate
`break-glass`, shows the control and its overrides and waits for N distinct proven
operators exactly as a run's own break-glass gate does (workflows/break_glass.py,
workflows/checklist.py): `amsm approve RUN break-glass`, `amsm show`, `amsm abort` and the
`waiting` audience's messages work on it as on any run. It reads no device and acts on
none; aborted, or not approved within APPROVAL_WAIT, it ends and the control does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from pydantic import Field
from temporalio import workflow
from temporalio.common import RawValue, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as Timeout

with workflow.unsafe.imports_passed_through():
    from activities.models import PairRef
    from activities.probe import ProbeActivities
    from inventory.models import Side, control_approval_workflow_id, control_workflow_id
    from workflows import search
    from workflows.activity_options import BOOTSTRAP
    from workflows.base import PairWorkflow
    from workflows.break_glass import BREAK_GLASS
    from workflows.checklist import StepRunner
    from workflows.inputs import read_input
    from workflows.limits import MAX_OVERRIDES, MAX_TEXT, Bounded, Name, Text, cut
    from workflows.models import Checklist, Hosts, StepDef
    from workflows.overrides import Override, OverrideRecord

# How long a control waits for its override's approvals before it gives up (it holds
# the pair's one control meanwhile): the child's execution timeout, kept by the server.
APPROVAL_WAIT = timedelta(minutes=60)
WORKFLOW = "control-approval"
# Marks the refusal of an approvals run the pair's control did not start (_refuse_strangers).
STRANGER_PATCH = "control-approval-stranger"
NOT_ACTED = "the control did not act: its break-glass override was not approved"


class ControlApprovalInput(Bounded):
    pair: Name
    control: Name
    operator: Name
    # What the control does, as its summary says it ("reboot ED-01"; cut when long), and
    # its side and every host it acts on (each shown, and bound, in the gate's items).
    what: Text
    side: Side | None = None
    hosts: Hosts = []
    overrides: Annotated[list[Override], Field(min_length=1, max_length=MAX_OVERRIDES)]
    # Who the control's operator was proven to be (the control checked their intent).
    proof: Text | None = None
    # A run that waited long continues as new with its checklist (workflows/checklist.py).
    resume: Checklist | None = None


def gate_items(inp: ControlApprovalInput) -> list[str]:
    """What the gate shows, and each approval is bound to (inventory/intent.py shown):
    the control, its side, every host it acts on, each override with why and who."""
    return [
        f"control: {inp.control}" + (f" {inp.side}" if inp.side else ""),
        *(f"host: {h}" for h in inp.hosts),
        *(f"{o.rule}: {o.reason} (by {inp.operator})" for o in inp.overrides),
    ]


@workflow.defn(name=WORKFLOW)
class ControlApprovalWorkflow(PairWorkflow):
    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        inp = read_input(ControlApprovalInput, raw, WORKFLOW)
        self.pair = inp.pair
        rules = ", ".join(o.rule for o in inp.overrides)
        runner = StepRunner(
            WORKFLOW,
            inp.pair,
            f"Break-glass: {inp.what} ({inp.pair})",
            inp.operator,
            [StepDef(id=BREAK_GLASS, kind="gate", title=f"Approve the override of {rules}")],
            resume=inp.resume,
        )
        self._start_runner(runner, inp)
        c = runner.checklist
        if not self.resuming:
            c.step(BREAK_GLASS).items = gate_items(inp)
            c.initiator_proof = inp.proof
            c.overrides = [
                OverrideRecord(
                    rule=o.rule,
                    operator=inp.operator,
                    reason=o.reason,
                    outcome="asked for: waits for its approvals before the control acts",
                )
                for o in inp.overrides
            ]
            runner.publish()
        self._refuse_strangers(inp)
        self.timing = await workflow.execute_activity_method(
            ProbeActivities.get_timing, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        runner.continue_after_events = self.timing.continue_after_events
        self.caps = await workflow.execute_activity_method(
            ProbeActivities.get_capabilities, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        runner.operators = set(self.caps.operators)
        runner.operator_keys = dict(self.caps.operator_keys)
        runner.console_key = self.caps.console_key
        runner.require_signed = self.caps.require_signed
        runner.approval_rules = dict(self.caps.approvals)
        self.tell_people()
        self._open_signals()
        if runner.approval_rule(BREAK_GLASS) is None:
            # Refused even in a continuation: the gate would open on one approval.
            self._refused(
                "the inventory no longer asks for approvals of break-glass overrides "
                "(approvals.break-glass): run the control again"
            )

        async def body() -> str:
            await runner.run(BREAK_GLASS)
            return f"approved: {inp.what} acts now"

        return await self.walk(body)

    def _refuse_strangers(self, inp: ControlApprovalInput) -> None:
        """Only the pair's control starts this run, under the pair's approval id (the
        parent, as the server records it, which no client can set, and which a run keeps
        when it continues as new); a continuation goes on from its own chain's checklist.
        Refused in a continuation too: someone else's code may continue as new into this
        type on the pair's queue with a checklist of its own."""
        info = workflow.info()
        want = control_approval_workflow_id(inp.pair)
        parent = info.parent.workflow_id if info.parent else None
        first = self.steps.checklist.first_run_id
        why = None
        if info.workflow_id != want:
            why = f"a control's approvals run under the workflow id {want}, not {info.workflow_id}"
        elif parent != control_workflow_id(inp.pair):
            why = (
                f"only the pair's control ({control_workflow_id(inp.pair)}) starts it; "
                f"this run was started {'by ' + parent if parent else 'by hand'}"
            )
        elif inp.resume is not None and first != info.first_execution_run_id:
            why = f"it goes on from the checklist of run {first}, not its own chain's"
        # Asked only of a stranger: a replay of an exported history runs under another id
        # (and whatever parent it names), and its run was no stranger.
        if why is not None and workflow.patched(STRANGER_PATCH):
            self._refused(why)

    def _refused(self, why: str) -> None:
        """Refused, continuation or not (PairWorkflow.refuse lets a continuation go on)."""
        self._open_signals()
        self.steps.fail(f"{WORKFLOW} refused: {why}")
        raise ApplicationError(
            f"{WORKFLOW} refused: {why}", type="PreconditionFailed", non_retryable=True
        )

    async def where_devices_are(self) -> list[str]:
        return [NOT_ACTED]


# -- the control's side -------------------------------------------------------------------------
async def approved(inp: ControlApprovalInput, cancelled: Callable[[], bool]) -> str:
    """Start the approvals run for a control's overrides and wait for it: who approved,
    as its gate says it ("by ann and bob (proven by ...)"), or the control refused,
    saying why it did nothing (aborted, not approved in time, the id held). `cancelled`:
    whether the control was asked to cancel; while it waits, that gives the override up
    (the approvals run is cancelled, which it takes as an abort)."""
    wid = control_approval_workflow_id(inp.pair)
    refused = f"{inp.control} refused: its break-glass override was not approved"
    try:
        handle = await workflow.start_child_workflow(
            ControlApprovalWorkflow.run,
            # Taken raw (a bad input is refused, not a failed task): the payload the
            # input makes by itself.
            RawValue(workflow.payload_converter().to_payloads([inp])[0]),
            id=wid,
            execution_timeout=APPROVAL_WAIT,
            # Listed by `amsm runs --kind control-approval`; found by `amsm approve RUN`.
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search.PAIR, inp.pair),
                    SearchAttributePair(search.KIND, WORKFLOW),
                    SearchAttributePair(search.INITIATOR, inp.operator),
                    SearchAttributePair(search.STATE, "running"),
                ]
            ),
            static_summary=f"break-glass approvals of {inp.what} by {inp.operator}",
        )
    except WorkflowAlreadyStartedError:
        raise ApplicationError(
            f"{refused}: its approvals cannot wait under {wid}, which a workflow this "
            f"control did not start holds; end it (temporal workflow terminate "
            f"--workflow-id {wid}) and run the control again",
            type="Refused",
            non_retryable=True,
        ) from None
    run = handle.first_execution_run_id
    workflow.set_current_details(
        f"**{inp.what}** by {inp.operator} waits for the approvals of its break-glass "
        f"override: `amsm approve {run} {BREAK_GLASS}`"
    )
    await workflow.wait_condition(lambda: handle.done() or cancelled())
    given_up = cancelled()
    if given_up and not handle.done():
        # By the id alone: the run that holds it now (a continuation, after a storm).
        await workflow.get_external_workflow_handle(wid).cancel()
    given_up_refusal = ApplicationError(
        f"{refused} (the control was cancelled while it waited); it did nothing",
        type="Refused",
        non_retryable=True,
    )
    try:
        c = await handle
    except ChildWorkflowError as e:
        if given_up:
            # Whether the run took the cancel as an abort or, cancelled as it started,
            # ended cancelled: the control was given up.
            raise given_up_refusal from None
        why = (
            f"within {int(APPROVAL_WAIT.total_seconds() // 60)} minutes"
            if isinstance(e.cause, Timeout)
            else f"(its approvals run {run} failed: {e.cause or e})"
        )
        raise ApplicationError(
            f"{refused} {why}; it did nothing", type="Refused", non_retryable=True
        ) from None
    if given_up:
        raise given_up_refusal
    if c.state != "completed":
        raise ApplicationError(
            f"{refused} (its approvals run {run} was {c.state}); it did nothing",
            type="Refused",
            non_retryable=True,
        )
    gate = c.step(BREAK_GLASS)
    return cut(
        f"approved by {gate.operator}" + (f" ({gate.proof})" if gate.proof else ""), MAX_TEXT
    )
