"""pair-status: read every device once, for `amsm status` (the CLI never touches a device)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import PairRef
    from activities.probe import ProbeActivities
    from inventory.status import PairStatus
    from workflows.activity_options import BOOTSTRAP
    from workflows.models import StatusInput


@workflow.defn(name="pair-status")
class PairStatusWorkflow:
    @workflow.run
    async def run(self, inp: StatusInput) -> PairStatus:
        return await workflow.execute_activity_method(
            ProbeActivities.probe_pair, PairRef(pair=inp.pair), **BOOTSTRAP
        )
