"""Activities about the pair's runs, not its devices, over the worker's own connection to
Temporal (`temporal`, the Temporal client it is given at construction): is a big workflow running and is it
waiting on a failed step (the console controls' interlock), is a fence waiting, a random
tag for a child's id, the result of a client batch an earlier run started, and which run
came after the one a signed start follows. The fence
lookup (`fences_of`) serves `amsm fence` too."""

from __future__ import annotations

import asyncio
import secrets

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import (
    BatchRef,
    ClientBatchResult,
    FenceState,
    PairRef,
    PairRunState,
    RunsSince,
    ScheduleLineage,
)
from inventory.intent import NO_RUN
from inventory.models import SCHEDULE_TYPE, Inventory, control_workflow_id
from wire.fences import FenceLookupError, fences_of, squatter_of


class ClientSeen(BaseModel):
    host: str
    status: str


class StepSeen(BaseModel):
    id: str
    status: str
    clients: list[ClientSeen] | None = None

    @property
    def failed_clients(self) -> list[str]:
        return [c.host for c in self.clients or [] if c.status == "failed"]


class RunProgress(BaseModel):
    """What `pair_run_state` reads of a run's checklist (its query `progress`, the
    Checklist of workflows/models.py): activities stand below workflows, so they read
    the few fields they need and ignore the rest."""

    steps: list[StepSeen] = []


class PairActivities:
    def __init__(self, temporal: Client, inventory: Inventory) -> None:
        self.temporal = temporal
        self.inv = inventory

    @activity.defn(name="new_tag")
    async def new_tag(self, inp: PairRef) -> str:
        """16 random hex digits for a child workflow id, so that no one can take the id
        before the workflow starts the child."""
        return secrets.token_hex(8)

    @activity.defn(name="runs_since")
    async def runs_since(self, inp: RunsSince) -> str | None:
        """Why a signed start (or control) that follows the run `inp.after` does not
        start the run after it, or None: the run it follows is not a run under its id,
        or (`inp.listed`) another run there (not `inp.own`, the run that asks) started
        after it. The run it follows is described (consistent); the runs after it come
        from the server's list of workflows, which may miss a run started less than a
        moment ago (docs/operators/signed-acts.md)."""
        if inp.pair != self.inv.pair:
            raise ApplicationError(
                f"this worker serves pair {self.inv.pair}, not {inp.pair}", non_retryable=True
            )
        wid = inp.workflow_id or self.inv.workflow_id
        if wid not in (self.inv.workflow_id, control_workflow_id(self.inv.pair)):
            raise ApplicationError(
                f"{wid} is neither pair {self.inv.pair}'s workflow id nor its control id",
                non_retryable=True,
            )
        query = f"WorkflowId = '{wid}'"
        if inp.after != NO_RUN:
            try:
                desc = await self.temporal.get_workflow_handle(wid, run_id=inp.after).describe()
            except RPCError as e:
                if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                    return f"the run it follows, {inp.after}, is not a run of {wid}"
                raise
            query += f" AND StartTime >= '{desc.start_time.isoformat()}'"
        if not inp.listed:
            return None
        async for w in self.temporal.list_workflows(query, page_size=10):
            if w.run_id not in (inp.own, inp.after):
                return f"run {w.run_id} has started under {wid} since"
        return None

    @activity.defn(name="schedule_lineage")
    async def schedule_lineage(self, inp: ScheduleLineage) -> str | None:
        """Why a scheduled run (the workflow asking) cannot be the one run its signed
        filing starts, or None: it is a reset of another run (its start event was written
        for another run id), or the run that started it (`inp`) is not amsm's own
        schedule on the pair's queue as first started (someone else's code, or a reset).
        Read from the server's records of each run (consistent, not its list); asked here
        and not in the workflow, so that a replay of the history gives the same answer."""
        if inp.pair != self.inv.pair:
            raise ApplicationError(
                f"this worker serves pair {self.inv.pair}, not {inp.pair}", non_retryable=True
            )
        if not inp.workflow_id.startswith(f"{self.inv.workflow_id}-schedule-"):
            raise ApplicationError(
                f"{inp.workflow_id} is not a schedule of pair {inp.pair}", non_retryable=True
            )
        me = activity.info()
        own = await self._first_run_id(me.workflow_id or "", me.workflow_run_id or "")
        if own != me.workflow_run_id:
            return f"this run is a reset of run {own}"
        parent = self.temporal.get_workflow_handle(inp.workflow_id, run_id=inp.run_id)
        desc = await parent.describe()
        first = await self._first_run_id(inp.workflow_id, inp.run_id)
        if (desc.workflow_type, desc.task_queue, first) != (
            SCHEDULE_TYPE,
            self.inv.queue,
            inp.run_id,
        ):
            return (
                f"the run of {inp.workflow_id} that started this one ({inp.run_id}) is not "
                f"amsm's own {SCHEDULE_TYPE} on the pair's queue as first started (a "
                f"{desc.workflow_type} on {desc.task_queue}, started as run {first})"
            )
        return None

    async def _first_run_id(self, workflow_id: str, run_id: str) -> str:
        """The run id a run's start event was written for (another than its own: a reset)."""
        handle = self.temporal.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        return started.original_execution_run_id

    @activity.defn(name="client_batch_result")
    async def client_batch_result(self, inp: BatchRef) -> ClientBatchResult:
        """Wait for a client batch that an earlier run of the pair's workflow started (the
        run continued as new while its clients switched) and return its result. Only a
        `client-batch` whose parent is the pair's run counts: what else holds the id is
        not trusted."""
        if inp.pair != self.inv.pair:
            raise ApplicationError(f"this worker serves pair {self.inv.pair}, not {inp.pair}")
        handle = self.temporal.get_workflow_handle(inp.workflow_id)
        desc = await handle.describe()
        if desc.workflow_type != "client-batch" or desc.parent_id != self.inv.workflow_id:
            raise ApplicationError(
                f"{inp.workflow_id} is not a client batch of pair {self.inv.pair}'s run "
                f"({desc.workflow_type}, started by {desc.parent_id or 'no workflow'})",
                non_retryable=True,
            )
        # Pinned to the run described: what ran under the id before or after is not it.
        pinned = self.temporal.get_workflow_handle(
            inp.workflow_id, run_id=desc.run_id, result_type=ClientBatchResult
        )
        waiting = asyncio.ensure_future(pinned.result(follow_runs=False))
        hb = activity.info().heartbeat_timeout
        every = max(0.5, (hb.total_seconds() if hb else 30) / 3)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=every)
                if done:
                    return waiting.result()
                activity.heartbeat()
        finally:
            waiting.cancel()

    @activity.defn(name="fences_waiting")
    async def fences_waiting(self, inp: PairRef) -> list[str]:
        """The sides that a running fence of the pair still waits to put in backup (the
        fence's own state). A fence that cannot be read counts as waiting on both sides:
        making a side main under a fence that fences it the moment it answers would
        undo the run. Only a fence on the pair's task queue counts (wire/fences.py): a
        squatter under the fence's id blocks nothing; the worker's log names it and how
        to remove it."""
        try:
            found = await fences_of(self.temporal, self.inv.pair, self.inv.queue, running=True)
        except FenceLookupError as e:
            raise ApplicationError(str(e)) from None
        for sq in found.squatters:
            activity.logger.warning(
                "%s (run %s) ignored, %s; remove it: %s",
                sq.workflow_id, sq.run_id, sq.why, sq.remedy,
            )  # fmt: skip
        sides: set[str] = set()
        for f in found.fences:
            try:
                handle = self.temporal.get_workflow_handle(f.workflow_id, run_id=f.run_id)
                st = await handle.query("state", result_type=FenceState)
            except Exception:  # noqa: BLE001
                return ["X", "Y"]
            if st.status == "waiting":
                sides.add(st.side)
        return sorted(sides)

    @activity.defn(name="pair_run_state")
    async def pair_run_state(self, inp: PairRef) -> PairRunState:
        """The pair's big workflow, if one runs, and which of its steps wait on a failure."""
        handle = self.temporal.get_workflow_handle(self.inv.workflow_id)
        try:
            desc = await handle.describe()
        except RPCError as e:
            # Only "not found" means none runs; any other error (the server busy, a
            # permission) leaves it unknown, and the interlock must not take that for none.
            if e.status == RPCStatusCode.NOT_FOUND:
                return PairRunState(running=False)
            raise ApplicationError(
                f"cannot tell whether a workflow runs on pair {self.inv.pair}: {e.message}",
                type="Unreachable",
            ) from None
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return PairRunState(running=False)
        if desc.task_queue != self.inv.queue:
            # Not a run of the pair: the pair's worker does not run it, so it changes no
            # device (wire/fences.py: a squatter). It holds the id; it is not a run going on.
            sq = squatter_of(desc, self.inv.queue, f"the run of pair {self.inv.pair}", None)
            activity.logger.warning(
                "%s (run %s) ignored, %s; remove it: %s",
                sq.workflow_id, sq.run_id, sq.why, sq.remedy,
            )  # fmt: skip
            return PairRunState(running=False)
        state = PairRunState(running=True, run_id=desc.run_id, workflow=desc.workflow_type)
        try:
            c = await handle.query("progress", result_type=RunProgress)
        except Exception:  # noqa: BLE001
            return state  # it runs; what it waits for is unknown, so nothing counts as mending
        if c is not None:
            state.failed_steps = [s.id for s in c.steps if s.status == "failed" or s.failed_clients]
            state.failed_clients = [h for s in c.steps for h in s.failed_clients]
            active = [s.id for s in c.steps if s.status not in ("pending", "done", "skipped")]
            state.current_step = active[0] if active else None
        return state
