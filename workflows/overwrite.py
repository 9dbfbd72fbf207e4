"""The overwrite gate (`approve-overwrite`) shows the asset counts of both DSMs, read just
before it waits. The count of the DSM it overwrites, what the approval gives up, is its
item, which a signed approval is bound to (inventory/intent.py `shown`); under
two-person approvals the gate reads it again after each approval, and an approval made
on another count lapses (docs/operators/two-person.md). The restore, the switch and the
split-switch share it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.dsm import DsmActivities
    from activities.models import PairRef
    from workflows.activity_options import device_op
    from workflows.checklist import describe_failure
    from workflows.models import StepState

if TYPE_CHECKING:
    from workflows.base import KindWorkflow

GATE = "approve-overwrite"
# Switches and split-switches started before their overwrite gate showed the counts
# replay without the read; restores started before it list both counts as items, only
# under two-person approvals (their gate always read them), and fail on a failed read.
PATCH = "overwrite-gate-shows-counts"


async def read_counts(wf: KindWorkflow, gate: StepState, host: str | None) -> str:
    """The asset counts of both DSMs, as the gate's message. Its items (what an approval
    is bound to): the count of `host`, the DSM it overwrites, whose loss the approval
    accepts (the other side is main and may take new material meanwhile, which must not
    make every approval lapse); `host` None: a restore started before the patch, both
    counts and only under two-person approvals."""
    counts = await workflow.execute_activity_method(
        DsmActivities.dsm_asset_counts,
        PairRef(pair=wf.pair),
        **device_op(wf.timing),
    )
    shown = {h: f"{h} {'not readable' if n is None else n}" for h, n in counts.counts.items()}
    if host is not None:
        gate.items = [shown[host]] if host in shown else list(shown.values())
    elif wf.steps.approval_rule(gate.id) is not None:
        gate.items = list(shown.values())
    return "asset counts now: " + ", ".join(shown.values())


async def show_counts(wf: KindWorkflow, host: str | None) -> None:
    """Read the counts for the gate about to wait; under two-person approvals, again
    after each approval. A first read that fails leaves the gate showing so (its item
    "not readable"; an approval is bound to that) instead of failing the run."""
    gate = wf.steps.checklist.step(GATE)
    try:
        gate.message = await read_counts(wf, gate, host)
    except ActivityError as e:
        if host is None:
            raise  # a restore started before the patch failed here
        gate.items = [f"{host} not readable"]
        gate.message = f"asset counts could not be read: {describe_failure(e)}"
    if wf.steps.approval_rule(GATE) is not None:

        async def again(step: StepState) -> str:
            return await read_counts(wf, step, host)

        wf.steps.rereads[GATE] = again


async def before_the_gate(wf: KindWorkflow, host: str) -> None:
    """A switch's or split-switch's gate, not yet passed: show the counts (new runs);
    `host`: the DSM it overwrites."""
    gate = wf.steps.checklist.step(GATE)
    if gate.status in ("pending", "awaiting-approval") and workflow.patched(PATCH):
        await show_counts(wf, host)
