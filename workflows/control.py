"""The manual's Status and Control buttons, each a short durable workflow.

One control runs at a time per pair (workflow id amsm-<pair>-control). A control
is refused while a big workflow runs on the pair, unless that workflow waits on a
failed step this control can mend (a DSM control for a DSM step, a client switch
for switch-clients, ...): rule `control-alongside-run`. The operator is recorded in
the input and the result.

Break-glass: the input may name rules to override, each with a reason
(workflows/overrides.py). Absolute or unknown rules are refused here whoever started
the control; the overridable ones are passed to the activities that can hit them, and
the result records each override and whether it was needed.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.browse import BrowseActivities
    from activities.clients import ClientActivities
    from activities.dsm import DsmActivities
    from activities.models import (
        BrowseInput,
        BrowseSwitchInput,
        Capabilities,
        DsmModeInput,
        ForcedRule,
        HostInput,
        PairRef,
        PairRunState,
        RunInput,
        SideInput,
        SideRunInput,
        StepResult,
    )
    from activities.pair import PairActivities
    from activities.probe import ProbeActivities
    from activities.smartbins import SmartBinsActivities
    from activities.sync_tools import SyncToolActivities
    from inventory import intent
    from inventory.blackout import Window
    from inventory.intent import SignedIntent
    from inventory.models import Side, Timing, control_workflow_id, pair_workflow_id
    from inventory.rules import RULE_CONTROL_ALONGSIDE_RUN, RULE_NO_SWITCH_IN_BLACKOUT
    from workflows import blackout, signing
    from workflows.activity_options import BOOTSTRAP, A, DeviceOp, device_op, reboot_op
    from workflows.base import (
        NAMES_NO_RUN,
        OWN_ID_PATCH,
        RANDOM_IDS_PATCH,
        new_tag,
        started_since,
    )
    from workflows.checklist import TWO_PERSON_PATCH, describe_failure
    from workflows.client_switch import ClientSwitchWorkflow
    from workflows.control_approval import ControlApprovalInput, approved
    from workflows.inputs import read_input
    from workflows.limits import MAX_OVERRIDES, MAX_TEXT, Bounded, Name, cut
    from workflows.models import ClientSwitchInput, Hosts
    from workflows.nonce import take_nonce
    from workflows.overrides import Override, OverrideRecord, override_problem, records
    from workflows.routing import on_site
    from workflows.shield import despite_cancel

Control = Literal[
    "dsm-set-main",
    "dsm-set-backup",
    "replication-start",
    "replication-stop",
    "smartbins-set-main",
    "smartbins-set-backup",
    "browse-stop",
    "browse-start",
    "browse-switch",
    "clients-switch",
    "insync-set-main",
    "insync-start",
    "insync-stop",
    "allsync-start",
    "allsync-stop",
    "reboot",
]

# Which failed steps of a big workflow each family of controls may mend.
_DSM = ("stop-replication", "start-replication", "dsm-")
_CLIENTS = ("switch-clients", "switch-pilots", "move-editors")
MENDS: dict[str, tuple[str, ...]] = {
    "dsm": _DSM,
    "replication": _DSM,
    "smartbins": ("smartbins-",),
    "browse": ("stop-browse", "switch-browse", "start-browse", "browse-to-"),
    "clients": _CLIENTS,
    "insync-set-main": ("insync-",),
    "insync": ("stop-insync", "start-insync"),
    "allsync": ("stop-allsync", "start-allsync"),
    "reboot": _CLIENTS,
}


def mends(control: str) -> tuple[str, ...]:
    if control in MENDS:
        return MENDS[control]
    return MENDS[control.split("-")[0]]


class ControlInput(Bounded):
    pair: Name
    control: Control
    operator: Name
    side: Side | None = None
    hosts: Hosts = []
    # break-glass; the operator is the control's
    overrides: Annotated[list[Override], Field(max_length=MAX_OVERRIDES)] = []
    # The control signed by its operator, or by the console for them (signed acts).
    intent: SignedIntent | None = None


class ControlResult(BaseModel):
    control: str
    operator: str
    message: str
    details: list[str] = []
    overrides: list[OverrideRecord] = []
    # Proven by whose key, or "unproven" (signed acts); None where the pair has no keys.
    proof: str | None = None
    # Who approved its break-glass override, where the inventory asks for several people
    # (approvals.break-glass): "approved by ann and bob (proven by ...)".
    approved: str | None = None


# Controls started before they could be signed replay without the check: reached only
# with a signed control or under identity.require_signed (docs/operators/signed-acts.md).
CONTROL_PATCH = "signed-controls"


# Controls started before a control's override could wait for its approvals (a child
# run, workflows/control_approval.py) replay with the refusal.
APPROVALS_PATCH = "control-break-glass-approvals"


# A signed control is bound to the control run it follows, so it runs one control: sent
# again once that control has run, it is refused as replayed (as a start, workflows/base.py).
CONTROL_AFTER_PATCH = "signed-controls-follow-a-run"


async def prove_control(inp: ControlInput, caps: Capabilities) -> str | None:
    """Who the control's operator is proven to be (its proof), or refused: a missing
    intent under identity.require_signed, a bad, expired or misbound one, or one that
    already ran the control after the one it follows."""
    keys = signing.keys_of(caps.operator_keys, caps.console_key, caps.require_signed)
    if (inp.intent is not None or keys.require_signed) and not workflow.patched(CONTROL_PATCH):
        return None
    cid = control_workflow_id(inp.pair)  # not info()'s: a replay's may differ
    run, follows, why, proof = cid, None, None, None
    if inp.intent is not None and workflow.patched(CONTROL_AFTER_PATCH):
        follows = intent.followed_run(inp.intent.intent.run)
        if follows is None:
            why = NAMES_NO_RUN
        else:
            run = intent.start_binding(cid, follows)
    if why is None:
        bound = intent.Binding(
            pair=inp.pair, run=run, step=inp.control, action="control", operator=inp.operator
        )
        proof, why = signing.prove_input(inp, inp.intent, bound, keys, workflow.now())
        if why is None and follows is not None:
            why = await started_since(inp.pair, cid, follows)
        if why is None and inp.intent is not None:
            why = await take_nonce(inp.pair, inp.intent.intent.nonce)
    if why is not None:
        raise ApplicationError(f"{inp.control} refused: {why}", type="Refused", non_retryable=True)
    return proof


def what_it_does(inp: ControlInput) -> str:
    """The control as its summary says it: "reboot ED-01", "dsm-set-main X"."""
    return cut(" ".join(w for w in [inp.control, inp.side, *inp.hosts] if w), MAX_TEXT)


def approval_input(inp: ControlInput, proof: str | None) -> ControlApprovalInput:
    return ControlApprovalInput(
        pair=inp.pair,
        control=inp.control,
        operator=inp.operator,
        what=what_it_does(inp),
        side=inp.side,
        hosts=inp.hosts,
        overrides=inp.overrides,
        proof=proof,
    )


def needs_side(inp: ControlInput) -> Side:
    if inp.side is None:
        raise ApplicationError(f"{inp.control} needs a side", type="BadInput", non_retryable=True)
    return inp.side


# The controls that restart clients: refused on air (rule no-switch-in-blackout).
RESTARTS = ("reboot", "clients-switch")


def blackout_forced(
    inp: ControlInput, windows: list[Window], forcing: set[str]
) -> list[ForcedRule]:
    """Rule no-switch-in-blackout for a control that restarts clients: refused while a
    window is on air, unless overridden (then what the override forced). Reached only
    when the inventory has windows."""
    now = workflow.now()
    on_air = blackout.window_at(windows, now) if windows and inp.control in RESTARTS else None
    if on_air is None or not workflow.patched(blackout.PATCH):
        return []
    why = blackout.refusal(on_air, "--reason")
    if RULE_NO_SWITCH_IN_BLACKOUT not in forcing:
        raise ApplicationError(f"{inp.control} refused: {why}", type="Refused", non_retryable=True)
    return [ForcedRule(rule=RULE_NO_SWITCH_IN_BLACKOUT, host=inp.pair, refusal=why)]


@workflow.defn(name="control")
class ControlWorkflow:
    _cancelled = False  # a cancellation was requested (it gives up a waiting override)

    @workflow.run
    async def run(self, raw: RawValue) -> ControlResult:
        inp = read_input(ControlInput, raw, "control")
        return await despite_cancel(self._run(inp), lambda: self._cancel_requested(inp))

    def _cancel_requested(self, inp: ControlInput) -> None:
        # A control is short, and what it started on a device is not cut half-way; one
        # that waits for its override's approvals gives the override up.
        self._cancelled = True
        workflow.logger.warning(
            "%s: cancellation requested; the control finishes what it started", inp.control
        )

    async def _run(self, inp: ControlInput) -> ControlResult:
        own = workflow.info().workflow_id
        if own != f"{pair_workflow_id(inp.pair)}-control" and workflow.patched(OWN_ID_PATCH):
            # One control at a time per pair rests on the id.
            raise ApplicationError(
                f"{inp.control} refused: the pair's controls run under the workflow id "
                f"{pair_workflow_id(inp.pair)}-control, not {own}",
                type="Refused",
                non_retryable=True,
            )
        caps = await workflow.execute_activity_method(
            ProbeActivities.get_capabilities, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        if caps.operators and inp.operator.lower() not in caps.operators:
            raise ApplicationError(
                f"{inp.control} refused: {inp.operator} is not an operator of pair {inp.pair}",
                type="Refused",
                non_retryable=True,
            )
        proof = await prove_control(inp, caps)
        problem = override_problem(inp.overrides)
        # Two people (docs/operators/two-person.md): the control waits for its override's
        # approvals before it checks its rules and acts; before the patch, refused.
        needs = bool(inp.overrides) and "break-glass" in caps.approvals
        needs = needs and workflow.patched(TWO_PERSON_PATCH)
        if needs and not workflow.patched(APPROVALS_PATCH):
            problem = (
                f"this pair's break-glass overrides need {caps.approvals['break-glass'].required} "
                "operators (approvals.break-glass), and a control cannot wait for their "
                "approvals yet (only a run's start can): act without the override "
                "(docs/operators/two-person.md)"
            )
        if problem:
            raise ApplicationError(
                f"{inp.control} refused: {problem}", type="Refused", non_retryable=True
            )
        approvals = None
        if needs:
            approvals = await approved(approval_input(inp, proof), lambda: self._cancelled)
        forcing = {o.rule for o in inp.overrides}
        on_air = blackout_forced(inp, caps.blackout, forcing)
        if inp.overrides:
            workflow.set_current_details(
                f"**{inp.control}** by {inp.operator}, overriding "
                + ", ".join(f"`{o.rule}` ({o.reason})" for o in inp.overrides)
            )
        state = await workflow.execute_activity_method(
            PairActivities.pair_run_state, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        alongside = self._alongside(inp, state, forcing) if state.running else None
        timing = await workflow.execute_activity_method(
            ProbeActivities.get_timing, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        try:
            r = await self._act(inp, timing)
        except ActivityError as e:
            raise ApplicationError(
                f"{inp.control} failed: {describe_failure(e)}",
                type="ControlFailed",
                non_retryable=True,
            ) from None
        recs = records(inp.overrides, inp.operator, r.forced + on_air, alongside)
        workflow.set_current_details(
            f"**{inp.control}** by {inp.operator}: {r.message}"
            + "".join(f"\n- {x.sentence()}" for x in recs)
        )
        details = list(r.details)
        if alongside is not None:
            details.append(f"rule '{RULE_CONTROL_ALONGSIDE_RUN}' overridden: {alongside}")
        return ControlResult(
            control=inp.control,
            operator=inp.operator,
            message=r.message,
            details=details,
            overrides=recs,
            proof=proof,
            approved=approvals,
        )

    def _alongside(self, inp: ControlInput, state: PairRunState, forcing: set[str]) -> str | None:
        """With a run of the pair running: None when the control mends one of its failed
        steps; the refusal, when rule control-alongside-run is overridden; else refused."""
        allowed = mends(inp.control)
        mendable = [s for s in state.failed_steps if s.startswith(allowed)]
        if mendable and inp.control in ("reboot", "clients-switch"):
            # It mends a failed client step only for that step's failed clients.
            strangers = [
                h for h in inp.hosts if h.lower() not in {c.lower() for c in state.failed_clients}
            ]
            if strangers:
                mendable = []
                state.failed_steps = [
                    f"{s} (its failed clients: {', '.join(state.failed_clients) or 'none'}; "
                    f"not {', '.join(strangers)})"
                    for s in state.failed_steps
                ]
        if mendable:
            workflow.logger.info("%s by %s mends %s", inp.control, inp.operator, mendable)
            return None
        waits = (
            f"it waits on failed step(s) {', '.join(state.failed_steps)}, which "
            f"{inp.control} does not mend"
            if state.failed_steps
            else f"it is at {state.current_step or 'its start'}"
        )
        refusal = (
            f"the {state.workflow} run {state.run_id} is running on pair {inp.pair} and {waits}"
        )
        if RULE_CONTROL_ALONGSIDE_RUN not in forcing:
            raise ApplicationError(
                f"{inp.control} refused by rule '{RULE_CONTROL_ALONGSIDE_RUN}': "
                f"{refusal}. Controls run alongside a workflow only to mend a failed "
                f"step ({inp.control} mends: {', '.join(allowed)}*).",
                type="Refused",
                non_retryable=True,
            )
        workflow.logger.warning(
            "%s by %s: rule %s overridden: %s",
            inp.control,
            inp.operator,
            RULE_CONTROL_ALONGSIDE_RUN,
            refusal,
        )
        return refusal

    async def _act(self, inp: ControlInput, timing: Timing) -> StepResult:
        pair, c = inp.pair, inp.control
        ops = device_op(timing)
        forcing = [o.rule for o in inp.overrides]

        async def do(activity: DeviceOp[A], arg: A, **opts: object) -> StepResult:
            return await workflow.execute_activity_method(
                activity, arg, **(opts or ops), **on_site(arg)
            )

        if c in ("dsm-set-main", "dsm-set-backup"):
            mode: Literal["main", "backup"] = "main" if c == "dsm-set-main" else "backup"
            return await do(
                DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=needs_side(inp), mode=mode)
            )
        if c == "replication-start":
            return await do(
                DsmActivities.dsm_start_replication,
                SideInput(pair=pair, side=needs_side(inp), overrides=forcing),
            )
        if c == "replication-stop":
            return await do(
                DsmActivities.dsm_stop_replication, SideInput(pair=pair, side=needs_side(inp))
            )
        if c == "smartbins-set-main":
            return await do(
                SmartBinsActivities.smartbins_set_main, SideInput(pair=pair, side=needs_side(inp))
            )
        if c == "smartbins-set-backup":
            return await do(
                SmartBinsActivities.smartbins_set_backup, SideInput(pair=pair, side=needs_side(inp))
            )
        hosts = inp.hosts or None
        if c == "browse-stop":
            return await do(BrowseActivities.browse_stop, BrowseInput(pair=pair, hosts=hosts))
        if c == "browse-start":
            return await do(BrowseActivities.browse_start, BrowseInput(pair=pair, hosts=hosts))
        if c == "browse-switch":
            return await do(
                BrowseActivities.browse_switch,
                BrowseSwitchInput(pair=pair, to=needs_side(inp), hosts=hosts, overrides=forcing),
            )
        if c == "insync-set-main":
            return await do(
                SyncToolActivities.insync_set_main,
                SideInput(pair=pair, side=needs_side(inp), overrides=forcing),
            )
        if c in ("insync-start", "insync-stop"):
            return await do(
                SyncToolActivities.insync_run, RunInput(pair=pair, running=c == "insync-start")
            )
        if c in ("allsync-start", "allsync-stop"):
            return await do(
                SyncToolActivities.allsync_run,
                SideRunInput(pair=pair, side=needs_side(inp), running=c == "allsync-start"),
            )
        if c == "reboot":
            results = await asyncio.gather(
                *(
                    do(
                        ClientActivities.reboot_host,
                        HostInput(pair=pair, host=h),
                        **reboot_op(timing),
                    )
                    for h in inp.hosts
                )
            )
            return StepResult(message="; ".join(r.message for r in results))
        if c == "clients-switch":
            return await self._switch_clients(inp, timing)
        raise ApplicationError(f"unknown control {c}", type="BadInput", non_retryable=True)

    async def _switch_clients(self, inp: ControlInput, timing: Timing) -> StepResult:
        to = needs_side(inp)
        info = workflow.info()
        if workflow.patched(RANDOM_IDS_PATCH):
            tag = await new_tag(inp.pair)
        else:
            tag = info.run_id.replace("-", "")[-12:]
        results = await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    ClientSwitchWorkflow.run,
                    ClientSwitchInput(
                        pair=inp.pair,
                        host=h,
                        to=to,
                        timing=timing,
                        overrides=[o.rule for o in inp.overrides],
                    ),
                    id=f"amsm-{inp.pair}-control-{tag}-{h}",
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    cancellation_type=ChildWorkflowCancellationType.ABANDON,
                )
                for h in inp.hosts
            )
        )
        failed = [r for r in results if not r.ok]
        if failed:
            raise ApplicationError(
                "client switch failed: "
                + "; ".join(f"{r.host} {r.message}" for r in failed)
                + (
                    f" ({len(results) - len(failed)} others switched)"
                    if len(results) > len(failed)
                    else ""
                ),
                type="ControlFailed",
                non_retryable=True,
            )
        forced = [f for r in results for f in r.forced]
        return StepResult(
            message=f"{len(results)} client(s) switched to {to}",
            details=[r.message for r in results]
            + [f"{f.host}: rule '{f.rule}' overridden: {f.refusal}" for f in forced],
            forced=forced,
        )
