"""The pair's status as the operator asks for it (`amsm status`, the console's pair page
and its JSON): the devices read now by whoever may act, else what the pair's watch last
read; with the fence that still waits on a lost side and the readiness watch's verdict."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from api.fence import FenceView, fence_and_squatters
from api.readiness import ReadinessView, read_readiness
from api.refusal import Refused
from api.runs import read_status, read_watched_status
from api.schedule import scheduled
from inventory.models import Inventory
from inventory.status import PairStatus
from wire.fences import Squatter
from workflows.schedule import ScheduleState


class StatusView(BaseModel):
    """The pair's status (`when`: the watch's reading, and when; None when read now), the
    fence that still waits on a lost side (a side that answers again goes to backup at
    once), and the readiness watch."""

    status: PairStatus
    when: str | None = None
    fence: FenceView | None = None
    # Why the fence could not be read (None when it was): not the same as no fence, and
    # no start may make a side main until it is read (as the console's pair page says).
    fence_error: str | None = None
    readiness: ReadinessView
    # The scheduled runs that still wait (workflows/schedule.py), soonest first.
    scheduled: list[ScheduleState] = []
    # Running workflows that hold the fence's id or say they are the pair's fence, not
    # started by amsm (wire/fences.py): named with the command that removes them.
    squatters: list[Squatter] = []

    def to_json(self) -> dict[str, Any]:
        """The object of `amsm status --json` (the web console answers the same)."""
        data = self.status.to_json()
        if self.when:
            data["read"] = self.when
        data["fence"] = self.fence.model_dump(mode="json") if self.fence else None
        data["fence_error"] = self.fence_error
        data["readiness"] = self.readiness.to_json()
        data["scheduled"] = [s.model_dump(mode="json") for s in self.scheduled]
        data["squatters"] = [s.model_dump(mode="json") for s in self.squatters]
        return data


async def pair_status(
    temporal: Client, inv: Inventory, operator: str, cached: bool = False
) -> tuple[PairStatus, str | None]:
    """Whoever may act reads the devices now (a short workflow); a viewer, who may not
    start workflows, reads what the pair's watch last read (a query), and is told when;
    `cached`: the watch's reading, whoever asks."""
    if cached or not inv.may_act(operator):
        return await read_watched_status(temporal, inv)
    return await read_status(temporal, inv), None


async def status_view(
    temporal: Client, inv: Inventory, st: PairStatus, when: str | None
) -> StatusView:
    """A status read with the waiting fence, the readiness verdict and the scheduled runs
    beside it. None fails the status: a fence that cannot be read is said in
    `fence_error`, scheduled runs that cannot be read are left out, the readiness says
    its error (one DescribeSchedule and, usually, one result; 5 s at most)."""
    fence_error: str | None = None
    try:
        view, squatters = await fence_and_squatters(temporal, inv)
    except Refused as e:
        view, squatters, fence_error = None, [], str(e)
    waiting = view if view is not None and view.state.status == "waiting" else None
    ready = await read_readiness(temporal, inv)
    try:
        filed = await scheduled(temporal, inv)
    except Refused:
        filed = []
    return StatusView(
        status=st,
        when=when,
        fence=waiting,
        fence_error=fence_error,
        readiness=ready,
        scheduled=filed,
        squatters=squatters,
    )


async def status(
    temporal: Client, inv: Inventory, operator: str, cached: bool = False
) -> StatusView:
    """`amsm status`: the pair as `operator` may read it, with its fence and readiness."""
    st, when = await pair_status(temporal, inv, operator, cached)
    return await status_view(temporal, inv, st, when)
