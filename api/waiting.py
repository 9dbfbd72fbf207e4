"""How many steps wait on a person across pairs: a step that awaits a confirmation, an
approval or a decision (a failed step, a failed client) on a pair the person may act on
(an operator acts on any such step, a viewer on none). The console's header shows it on
every page, with a link to the first run that waits.

Each pair's current run is read (a describe, then the run's `progress` query) at most once
every READ_EVERY seconds, whoever asks and however many pages are drawn meanwhile: a page
does not cost a Temporal query per pair per request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus

from inventory.models import Inventory
from workflows.base import PairWorkflow

# Seconds. A count at most this old is shown: the header is a pointer, not the checklist
# (the run's page follows the run live), and twenty browsers on ten pairs then cost the
# server and the worker ten reads every 5 s, not one per pair per page drawn.
READ_EVERY = 5.0
# A read that takes longer is given up: the header then shows what was last read.
READ_TIMEOUT = 3.0


class WaitingRun(BaseModel):
    pair: str
    run_id: str
    workflow: str
    steps: list[str]  # the ids of the steps that wait, in the checklist's order


class WaitingCount(BaseModel):
    person: str
    count: int = 0
    runs: list[WaitingRun] = []

    @property
    def first(self) -> WaitingRun | None:
        return self.runs[0] if self.runs else None

    @property
    def sentence(self) -> str:
        """'1 step waits for you', '3 steps wait for you', or '' when none waits."""
        if not self.count:
            return ""
        return f"{self.count} step{' waits' if self.count == 1 else 's wait'} for you"


class WaitingReads:
    """The last read of each pair's waiting steps and when it was taken (one per console)."""

    def __init__(self, every: float = READ_EVERY) -> None:
        self.every = every
        self._reads: dict[str, tuple[float, asyncio.Task[WaitingRun | None]]] = {}

    def read(self, temporal: Client, inv: Inventory) -> asyncio.Task[WaitingRun | None]:
        """The pair's read now under way or taken less than `every` seconds ago, else a new
        one (callers at the same moment share it)."""
        now = asyncio.get_running_loop().time()
        held = self._reads.get(inv.workflow_id)
        if held is not None and now - held[0] < self.every:
            return held[1]
        task = asyncio.ensure_future(_read(temporal, inv))
        self._reads[inv.workflow_id] = (now, task)
        return task


async def _read(temporal: Client, inv: Inventory) -> WaitingRun | None:
    handle = temporal.get_workflow_handle(inv.workflow_id)
    try:
        desc = await asyncio.wait_for(handle.describe(), READ_TIMEOUT)
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return None
        c = await asyncio.wait_for(handle.query(PairWorkflow.progress), READ_TIMEOUT)
    except Exception:
        # No run yet, or no worker answering: nothing is known to wait (the pair's own
        # page says why it cannot read the run).
        return None
    if c is None or not c.awaiting:
        return None
    return WaitingRun(
        pair=inv.pair, run_id=desc.run_id, workflow=c.workflow, steps=[s.id for s in c.awaiting]
    )


async def waiting_for(
    temporal: Client, inventories: Sequence[Inventory], person: str, reads: WaitingReads
) -> WaitingCount:
    """The steps that wait on `person` across the pairs of `inventories` that they may act
    on (the console passes the pairs where the person's role is operator)."""
    mine = [inv for inv in inventories if inv.may_act(person)]
    found = await asyncio.gather(*(reads.read(temporal, inv) for inv in mine))
    runs = [r for r in found if r is not None]
    return WaitingCount(person=person, count=sum(len(r.steps) for r in runs), runs=runs)
