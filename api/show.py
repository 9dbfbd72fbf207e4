"""A run as the operator asks for it (`amsm show`, `amsm watch`, the console's run page and
its JSON): its checklist, after an unplanned switch the fence it left, and the stage of
each client it is switching."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle

from api.fence import FenceView, read_fence
from api.runs import fetch_checklist, resolve_run
from inventory.models import Inventory
from workflows.client_switch import ClientBatchWorkflow, ClientSwitchWorkflow
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


async def show(temporal: Client, inv: Inventory, run: str = "current") -> RunView:
    """RUN's checklist, and the state of the fence it left, if any."""
    return await view_of(temporal, inv, await resolve_run(temporal, inv, run))


async def view_of(temporal: Client, inv: Inventory, handle: WorkflowHandle[Any, Any]) -> RunView:
    """The run of HANDLE as `show` answers it (`amsm watch` asks it again at each read of
    the run it found once)."""
    c = await fetch_checklist(handle)
    view = await read_fence(temporal, inv, c.fence) if c.fence is not None else None
    return RunView(checklist=c, fence_state=view)


async def client_stages(temporal: Client, c: Checklist) -> dict[str, str]:
    """Each switching client's stage, asked of its child workflow (at most 50 at once).

    A `client-batch` child answers for all its clients at once (`client_stages`); a
    `client-switch` child of an older run for its one client (`current_stage`).
    """
    limit = asyncio.Semaphore(50)
    out: dict[str, str] = {}
    by_child: dict[str, list[str]] = {}
    for s in c.steps:
        for x in s.clients or []:
            if x.status == "switching" and x.workflow_id:
                by_child.setdefault(x.workflow_id, []).append(x.host)

    async def one(wid: str, hosts: list[str]) -> None:
        async with limit:
            handle = temporal.get_workflow_handle(wid)
            try:
                stages = await asyncio.wait_for(handle.query(ClientBatchWorkflow.client_stages), 5)
                for h in hosts:
                    out[h] = stages.get(h, "switching")
                return
            except Exception:
                pass
            try:
                stage = await asyncio.wait_for(handle.query(ClientSwitchWorkflow.current_stage), 5)
            except Exception:
                stage = "switching"
            for h in hosts:
                out[h] = stage

    await asyncio.gather(*(one(w, hs) for w, hs in by_child.items()))
    return out
