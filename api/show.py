"""A run as the operator asks for it (`amsm show`, the console's run page and its JSON):
its checklist and, after an unplanned switch, the fence it left."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from api.fence import FenceView, read_fence
from api.runs import fetch_checklist, resolve_run
from inventory.models import Inventory
from workflows.models import Checklist


class RunView(BaseModel):
    """A run's checklist and its fence's state (`fence_state`: None when the run left a
    fence that cannot be found any more)."""

    checklist: Checklist
    fence_state: FenceView | None = None

    def to_json(self) -> dict[str, Any]:
        """The object of `amsm show RUN --json` (the web console answers the same)."""
        data = self.checklist.model_dump(mode="json")
        if self.checklist.fence is not None:
            data["fence_state"] = (
                self.fence_state.model_dump(mode="json") if self.fence_state else None
            )
        return data


async def checklist_of(client: Client, inv: Inventory, run: str = "current") -> Checklist:
    """The checklist of RUN (an id, a unique prefix or 'current'), following a run that
    continued as new."""
    return await fetch_checklist(await resolve_run(client, inv, run))


async def show(client: Client, inv: Inventory, run: str = "current") -> RunView:
    """RUN's checklist, and the state of the fence it left, if any."""
    c = await checklist_of(client, inv, run)
    view = await read_fence(client, inv.pair, c.fence) if c.fence is not None else None
    return RunView(checklist=c, fence_state=view)
