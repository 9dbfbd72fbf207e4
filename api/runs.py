"""Reaching Temporal for the operator API: the connection, the pair's status, finding a run
and its checklist (following a run that continued as new), its updates, its history and
the pair's runs (the pair's fence: api/fence.py). Queries and updates are called by reference to the
workflow's own method."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.client import WorkflowExecution as ListedRun
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.converter import PayloadCodec
from temporalio.service import RPCError, RPCStatusCode

from api.refusal import Refused
from inventory.models import Inventory, control_approval_workflow_id, control_workflow_id
from inventory.status import PairStatus
from records.history import HistoryError, parse_history, readable
from records.report import build_report
from wire.connection import Connection, ConnectionConfigError
from wire.connection import connect as connect_to
from workflows import search
from workflows.base import PairWorkflow
from workflows.kinds import KINDS
from workflows.limits import STORM_ACT_BOUND_SECONDS
from workflows.models import STILL_STARTING, Checklist, StatusInput, UpdateResult
from workflows.signing import STARTED_BY
from workflows.status import PairStatusWorkflow
from workflows.view import next_action
from workflows.watch import PairWatchWorkflow, watch_workflow_id

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- connecting -------------------------------------------------------------------------------
async def connect(conn: Connection) -> Client:
    try:
        return await asyncio.wait_for(connect_to(conn), timeout=10)
    except ConnectionConfigError as e:
        raise Refused(str(e), "usage") from None
    except (RuntimeError, TimeoutError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else "timeout"
        raise Refused(
            f"cannot reach Temporal at {conn.address} ({first}); "
            "is `make run` (or your Temporal server) running? Use --address or TEMPORAL_ADDRESS"
            + ("; check the TLS options" if conn.tls_config() else "")
            + "."
        ) from None


async def read_status(temporal: Client, inv: Inventory) -> PairStatus:
    try:
        return await temporal.execute_workflow(
            PairStatusWorkflow.run,
            StatusInput(pair=inv.pair),
            id=f"{inv.workflow_id}-status-{uuid.uuid4().hex[:12]}",
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=60),
        )
    except Exception as e:  # WorkflowFailureError, timeouts: say what happened
        raise Refused(f"status of pair {inv.pair} could not be read: {cause(e)}") from None


async def read_watched_status(temporal: Client, inv: Inventory) -> tuple[PairStatus, str]:
    """The pair's status as its watch last read it (a query: no right to start a workflow
    needed), and a line saying when."""
    handle = temporal.get_workflow_handle(watch_workflow_id(inv.workflow_id))
    try:
        view = await asyncio.wait_for(handle.query(PairWatchWorkflow.status), 20)
    except Exception as e:
        raise Refused(
            f"status of pair {inv.pair} could not be read from its watch "
            f"({watch_workflow_id(inv.workflow_id)}; the pair's worker starts it): {cause(e)}"
        ) from None
    if view.status is None:
        raise Refused(
            f"the watch of pair {inv.pair} has not read the devices yet"
            + (f": {view.error}" if view.error else "; try again in a moment")
        )
    return view.status, watched_when(view.read_at, view.error, view.error_at)


def watched_when(read_at: str | None, error: str | None = None, error_at: str | None = None) -> str:
    """When the pair's watch read the status it holds (and how its latest try failed)."""
    when = f"as the pair's watch read it at {read_at}"
    if error:
        when += f"; its latest read, at {error_at}, failed: {error}"
    return when


def cause(e: BaseException) -> str:
    while getattr(e, "cause", None) is not None or e.__cause__ is not None:
        e = getattr(e, "cause", None) or e.__cause__  # type: ignore[assignment]
    return getattr(e, "message", None) or str(e)


async def resolve_run(
    temporal: Client, inv: Inventory, run: str, controls: bool = False
) -> WorkflowHandle[Any, Any]:
    """RUN as a handle; a run that continued as new leads to the run it continued as."""
    handle = await _resolve_run(temporal, inv, run, controls)
    return await follow_continuation(temporal, handle)


async def follow_continuation(
    temporal: Client, handle: WorkflowHandle[Any, Any]
) -> WorkflowHandle[Any, Any]:
    """A run that waited long continued as new (workflows/checklist.py): the checklist
    lives on in the run it continued as. Follows the chain to its last run."""
    for _ in range(1000):
        if not handle.run_id:
            return handle
        try:
            desc = await handle.describe()
        except RPCError:
            return handle  # fetch_checklist says what is wrong
        if desc.status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
            return handle
        req = GetWorkflowExecutionHistoryReverseRequest(
            namespace=temporal.namespace,
            execution=WorkflowExecution(workflow_id=handle.id, run_id=handle.run_id),
            maximum_page_size=1,
        )
        page = await temporal.workflow_service.get_workflow_execution_history_reverse(req)
        last = page.history.events[0] if page.history.events else None
        if last is None or not last.HasField(
            "workflow_execution_continued_as_new_event_attributes"
        ):
            return handle
        new_run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        handle = temporal.get_workflow_handle(handle.id, run_id=new_run)
    return handle


async def _resolve_run(
    temporal: Client, inv: Inventory, run: str, controls: bool = False
) -> WorkflowHandle[Any, Any]:
    """RUN is a run id, a unique prefix of one, or 'current' (the pair's latest run).

    `controls`: a console control's run (workflow id amsm-<pair>-control) counts too,
    for the commands that read any run's history (report, history export). A control's
    approvals run always counts.
    """
    wid = inv.workflow_id
    # A control's break-glass approvals (workflows/control_approval.py) are a run to
    # show, approve and abort like the pair's own.
    wids = [wid, *([control_workflow_id(inv.pair)] if controls else [])]
    wids.append(control_approval_workflow_id(inv.pair))
    if run in ("current", "latest", "-"):
        return temporal.get_workflow_handle(wid)
    if UUID_RE.fullmatch(run):
        if not await _has_run(temporal, wid, run):
            for other in wids[1:]:
                if await _has_run(temporal, other, run):
                    return temporal.get_workflow_handle(other, run_id=run)
        return temporal.get_workflow_handle(wid, run_id=run)
    if not re.fullmatch(r"[0-9a-f-]{4,36}", run):
        raise Refused(
            f"RUN {run!r} is not a run id: give the id printed by `amsm start`, "
            "a unique prefix of at least 4 characters, or 'current'",
            "usage",
        )
    matches: list[tuple[str, str]] = []
    query = " OR ".join(f"WorkflowId = '{w}'" for w in wids)
    async for w in temporal.list_workflows(query):
        if w.run_id.startswith(run):
            matches.append((w.id, w.run_id))
    if not matches:
        raise Refused(f"no run of pair {inv.pair} starts with {run!r}", "usage")
    if len(matches) > 1:
        raise Refused(f"{run!r} matches {len(matches)} runs; give more characters", "usage")
    return temporal.get_workflow_handle(matches[0][0], run_id=matches[0][1])


async def _has_run(temporal: Client, wid: str, run_id: str) -> bool:
    try:
        await temporal.get_workflow_handle(wid, run_id=run_id).describe()
    except RPCError:
        return False
    return True


STATE_OF = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.TERMINATED: "aborted",
    WorkflowExecutionStatus.CANCELED: "aborted",
}


# How long `show`, `confirm` and the others wait for a worker to answer the checklist.
CHECKLIST_WAIT_SECONDS = 20.0


async def fetch_checklist(handle: WorkflowHandle[Any, Any]) -> Checklist:
    try:
        desc = await handle.describe()
    except RPCError as e:
        raise Refused(
            f"no such run: {handle.run_id or handle.id} ({e.message})", "not-found"
        ) from None
    checklist: Checklist | None = None
    why = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHECKLIST_WAIT_SECONDS
    while True:
        try:
            checklist = await asyncio.wait_for(
                handle.query(PairWorkflow.progress),
                timeout=max(1.0, deadline - loop.time()),
            )
            break
        except Exception as e:
            why = str(e) or type(e).__name__
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                checklist = Checklist.model_validate(await handle.result())
                break
        # A worker killed or restarting fails a query at once, while the run is
        # running: its replacement answers a moment later.
        if desc.status != WorkflowExecutionStatus.RUNNING or loop.time() + 1 > deadline:
            break
        await asyncio.sleep(1)
    if checklist is None:
        raise Refused(
            f"run {desc.run_id} ({desc.workflow_type}) is {desc.status.name.lower() if desc.status else '?'}"
            " and its checklist cannot be read: is a worker running for the pair?"
            + (f" (last answer: {why})" if why else "")
        )
    checklist.run_id = desc.run_id
    if desc.status in STATE_OF:
        closed = STATE_OF[desc.status]
        if checklist.state in ("running", "awaiting-operator") or closed != "completed":
            checklist.state = closed  # type: ignore[assignment]
    return checklist


def index(inv: Inventory, kind: str, initiator: str) -> TypedSearchAttributes:
    """The search attributes of a run `amsm` starts (what `amsm runs` lists by)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(search.PAIR, inv.pair),
            SearchAttributePair(search.KIND, kind),
            SearchAttributePair(search.INITIATOR, initiator),
            SearchAttributePair(search.STATE, "running"),
        ]
    )


# -- updates ----------------------------------------------------------------------------------
UPDATE_WAIT_SECONDS = 30.0
# How long an update is asked again while the run is still starting, busy with another
# update, or closing as it continues as new. A run continues for its signal count at
# most every CONTINUE_SIGNALS_EVERY seconds (workflows/checklist.py, the pace), so an
# act meets one restart of the run at most: the run closing, then its continuation
# reading who may act (a second or two). This wait is the stated bound of an act during
# a storm (docs/reference/limits.md), which the storm tests and `python -m bench.storm`
# measure end to end; it is not a longer retry to hide a slow run.
STARTING_WAIT_SECONDS = STORM_ACT_BOUND_SECONDS


def busy(e: RPCError) -> bool:
    """The server refused an update because the run has its most in flight already, or
    aborted it before the run saw it: on any error under the run's lock (a signal or an
    update refused for a limit) the server clears its state of the run, and the updates
    it had not handed the run yet with it ("workflow update was aborted", retryable;
    docs/reference/limits.md, "Storms while the operator acts")."""
    if e.status == RPCStatusCode.UNAVAILABLE:
        return "workflow update was aborted" in str(e) and "closing" not in str(e)
    return e.status == RPCStatusCode.RESOURCE_EXHAUSTED and "in-flight updates" in str(e)


async def send_update(
    temporal: Client,
    handle: WorkflowHandle[Any, Any],
    update: Any,
    arg: BaseModel,
    who: str = "the workflow",
) -> UpdateResult:
    """Call one of the run's updates (by reference: `PairWorkflow.confirm_step`) and return
    its answer, given once the run has taken it. A refusal is a Refused saying `who`
    refused it and why: the validator's (nothing recorded) or the run's own (a
    non-operator, recorded under "Rejected signals"). A run that is still starting (just
    started, or just continued as new), busy with another update, or closing as it
    continues as new is asked again for a few seconds, and a run that continued as new
    since it was found is followed to the run it continued as."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTING_WAIT_SECONDS
    try:
        while True:
            try:
                result: UpdateResult = await asyncio.wait_for(
                    handle.execute_update(update, arg), timeout=UPDATE_WAIT_SECONDS
                )
                break
            except WorkflowUpdateFailedError as e:
                why = cause(e)
                if not why.endswith(STILL_STARTING) or loop.time() > deadline:
                    raise Refused(f"{who} refused it: {why}") from None
                await asyncio.sleep(0.2)
            except RPCError as e:
                if loop.time() > deadline:
                    raise
                if busy(e):
                    # The run has its most updates in flight, or their requests are
                    # as big as it takes together (workflows/server.py
                    # MAX_IN_FLIGHT_UPDATES, MAX_IN_FLIGHT_UPDATE_PAYLOADS); each is
                    # answered in milliseconds.
                    await asyncio.sleep(0.1)
                    continue
                # "workflow execution already completed": a burst of signals made the run
                # continue as new between finding it and asking it; ask the run it became.
                # "workflow is closing" (RESOURCE_EXHAUSTED): it is continuing as new right
                # now; the server refuses updates until the new run exists, so ask again
                # (once the new run exists the pair's id leads to it: resolve_run's handle
                # of `current` has no run id, and a run id is followed to its last run).
                closing = e.status == RPCStatusCode.RESOURCE_EXHAUSTED and "closing" in str(e)
                if not (closing or e.status == RPCStatusCode.NOT_FOUND):
                    raise
                followed = await follow_continuation(temporal, handle)
                if followed.run_id == handle.run_id:
                    if not closing:
                        raise
                    await asyncio.sleep(0.2)  # not continued yet: the same run again
                handle = followed
    except TimeoutError:
        raise Refused(
            "no answer within 30 s: is a worker running for the pair? (the request may still "
            "be delivered when one starts)"
        ) from None
    if not result.accepted:
        raise Refused(f"{who} refused it: {result.reason}")
    return result


async def waiting_note(temporal: Client, inv: Inventory) -> tuple[str, str] | None:
    """The step a run on the pair waits on for the operator, and a line saying so (as the
    2008 tool said on relaunch which workflow was unfinished); None when none waits or no
    worker answers in time."""
    handle = temporal.get_workflow_handle(inv.workflow_id)
    try:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return None
        c = await asyncio.wait_for(handle.query(PairWorkflow.progress), timeout=3)
    except Exception:
        return None  # no run, or no worker to answer: the command itself will say what matters
    if c is None or not c.awaiting:
        return None
    c.run_id = desc.run_id
    s = c.awaiting[0]
    return (
        s.id,
        f"note: the {c.workflow} run {desc.run_id} waits for you at {s.id}: {next_action(c)}",
    )


# -- histories --------------------------------------------------------------------------------
async def fetch_history(temporal: Client, inv: Inventory, run: str) -> WorkflowHistory:
    """The history of RUN (as `amsm show` takes it, a console control's run included)."""
    handle = await resolve_run(temporal, inv, run, controls=True)
    try:
        history = await handle.fetch_history()
    except RPCError as e:
        what = f"run {handle.run_id}" if handle.run_id else f"workflow {handle.id}"
        raise Refused(f"no such run: {what} ({e.message})", "not-found") from None
    if not history.events:
        raise Refused(f"run {run}: the server returned no events")
    return history


@contextmanager
def one_line_errors(command: str) -> Iterator[None]:
    """What reading or replaying a history raises, as one line: what, where; never a
    traceback (report, history export, replay)."""
    try:
        yield
    except HistoryError as e:
        raise Refused.with_code(str(e), e.code) from None
    except Refused:
        raise
    except RPCError as e:
        raise Refused(f"amsm {command}: Temporal refused: {e.message}") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise Refused(f"amsm {command}: {type(e).__name__}: {first}".rstrip(": ")) from None


SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.@ -]{1,64}$")


async def list_runs(
    temporal: Client,
    inv: Inventory,
    kind: str | None = None,
    state: str | None = None,
    operator: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The pair's runs from Temporal's visibility (search attributes), newest first: the
    rows of `amsm runs --json`, which the web console lists too."""
    query = [f"{search.PAIR.name} = '{inv.pair}'"]
    if kind:
        query.append(f"{search.KIND.name} = '{kind}'")
    if state:
        query.append(f"{search.STATE.name} = '{state}'")
    if operator:
        if not SAFE_VALUE.fullmatch(operator):
            raise Refused(f"--operator {operator!r}: letters, digits, _ . @ - and space", "usage")
        query.append(f"{search.INITIATOR.name} = '{operator}'")
    rows = []
    async for w in temporal.list_workflows(" AND ".join(query), limit=limit):
        if w.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            continue  # one run in the rows: the newest of a chain that continued as new
        sa = w.typed_search_attributes
        row_state = sa.get(search.STATE) or "running"
        if w.status in STATE_OF and row_state in ("running", "awaiting-operator"):
            row_state = STATE_OF[w.status]
        end = w.close_time
        rows.append(
            {
                "run_id": w.run_id,
                "workflow_id": w.id,
                "kind": sa.get(search.KIND) or w.workflow_type,
                "state": row_state,
                "initiator": sa.get(search.INITIATOR),
                "initiator_proof": await started_proof(w),
                "start": w.start_time.isoformat(timespec="seconds") if w.start_time else None,
                "end": end.isoformat(timespec="seconds") if end else None,
                "duration_s": round((end - w.start_time).total_seconds(), 1)
                if end and w.start_time
                else None,
            }
        )
    return rows


async def started_proof(w: ListedRun) -> str | None:
    """Who started a listed run is proven by whose key (the memo a signed start upserts,
    workflows/signing.py STARTED_BY), or "unproven"/None (nothing recorded)."""
    try:
        started = (await w.memo()).get(STARTED_BY)
    except Exception:  # a memo this client cannot decode says nothing of the proof
        return None
    return str(started["proof"]) if isinstance(started, dict) and started.get("proof") else None


# Histories read at once for the runs' times to serve (one per listed run of a kind that
# counts one): a list of 50 runs is 50 small reads, four at a time.
SERVED_READS = 4


def counts_serving(kind: str) -> bool:
    """Whether a run of `kind` has a time to serve (its row's `serving`, workflows/kind.py)."""
    k = KINDS.get(kind)
    return k is not None and k.serving(*k.sides("Y")) is not None


async def with_time_to_serve(
    temporal: Client, inv: Inventory, rows: list[dict[str, Any]], codec: PayloadCodec | None
) -> list[dict[str, Any]]:
    """`list_runs`' rows with each run's time to serve as its report measures it
    (records/report.py) and the inventory's objective: `time_to_serve_s` (None: not a kind
    that counts one, not reached, or its history could not be read), `objective_s`,
    `objective_met` (True, False, or None: no objective, or not decided yet) and
    `objective_text` (the report's line)."""
    objective = inv.objectives.time_to_serve_seconds
    gate = asyncio.Semaphore(SERVED_READS)

    async def one(row: dict[str, Any]) -> dict[str, Any]:
        out = {
            **row,
            "time_to_serve_s": None,
            "objective_s": objective,
            "objective_met": None,
            "objective_text": None,
        }
        if not counts_serving(row["kind"]):
            return out
        handle = temporal.get_workflow_handle(row["workflow_id"], run_id=row["run_id"])
        where = f"run {row['run_id']} of workflow {row['workflow_id']}"
        try:
            async with gate:
                history = await readable(await handle.fetch_history(), codec, where)
            serving = build_report(parse_history(history, where), objective=objective).serving
        except (HistoryError, RPCError):
            return out  # unreadable here (an encrypted history without the key): no time
        out["time_to_serve_s"] = None if serving.seconds is None else round(serving.seconds, 1)
        if serving.objective is not None:
            out["objective_met"] = serving.objective.met
            out["objective_text"] = serving.objective.text
        return out

    return list(await asyncio.gather(*(one(r) for r in rows)))
