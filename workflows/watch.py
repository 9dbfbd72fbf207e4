"""pair-watch: the pair's status, read from the devices every `timing.status_interval`
seconds and kept for the query `status`, so that reading the pair needs no right to
start a workflow (Temporal's authorizer counts QueryWorkflow as a read; starting
`pair-status` is a write). The worker starts it (`amsm-<pair>-watch`); it continues as
new before its history grows long, carrying the last reading on.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.models import PairRef
    from activities.probe import ProbeActivities
    from inventory.status import PairStatus
    from workflows.activity_options import BOOTSTRAP
    from workflows.checklist import describe_failure
    from workflows.inputs import read_input
    from workflows.limits import Bounded, Name, history_is_long


def watch_workflow_id(pair_workflow_id: str) -> str:
    return f"{pair_workflow_id}-watch"


class WatchView(BaseModel):
    """The last reading: the status, when it was read, and the error of the latest try
    when it failed (the status is then the one before)."""

    status: PairStatus | None = None
    read_at: str | None = None
    error: str | None = None
    error_at: str | None = None


class WatchInput(Bounded):
    pair: Name
    last: WatchView | None = None  # carried on when the watch continues as new


@workflow.defn(name="pair-watch")
class PairWatchWorkflow:
    def __init__(self) -> None:
        self._view = WatchView()

    @workflow.query(name="status")
    def status(self) -> WatchView:
        return self._view

    @workflow.signal(dynamic=True)
    def _any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        pass  # the watch takes no signal; a handler keeps the SDK from storing them all

    @workflow.run
    async def run(self, raw: RawValue) -> None:
        inp = read_input(WatchInput, raw, "pair-watch")
        if inp.last is not None:
            self._view = inp.last
        timing = await workflow.execute_activity_method(
            ProbeActivities.get_timing, PairRef(pair=inp.pair), **BOOTSTRAP
        )
        while True:
            now = workflow.now().isoformat(timespec="seconds")
            try:
                st = await workflow.execute_activity_method(
                    ProbeActivities.probe_pair, PairRef(pair=inp.pair), **BOOTSTRAP
                )
                self._view = WatchView(status=st, read_at=now)
            except ActivityError as e:
                self._view.error, self._view.error_at = describe_failure(e), now
            workflow.set_current_details(
                f"**{inp.pair}**: read {self._view.read_at}"
                + (f"; last try failed at {self._view.error_at}" if self._view.error else "")
            )
            if history_is_long(timing.continue_after_events):
                workflow.continue_as_new(WatchInput(pair=inp.pair, last=self._view))
            await workflow.sleep(timing.status_interval)
