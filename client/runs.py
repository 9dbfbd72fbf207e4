"""Reaching Temporal for `amsm`: the connection, the pair's status, and finding a run and
its checklist (following a run that continued as new)."""

from __future__ import annotations

import argparse
import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from client.session import EXIT_USAGE, CliError, default_operator
from inventory.models import Inventory
from inventory.status import PairStatus
from wire.connection import Connection, ConnectionConfigError
from workflows.models import Checklist, StatusInput
from workflows.watch import WatchView, watch_workflow_id

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- connecting -------------------------------------------------------------------------------
def connection(args: argparse.Namespace) -> Connection:
    return Connection(
        address=args.address,
        namespace=args.namespace,
        tls=args.tls,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_server_name=args.tls_server_name,
        codec_key_file=args.codec_key_file,
    )


async def connect(conn: Connection) -> Client:
    from wire.connection import connect as _connect

    try:
        return await asyncio.wait_for(_connect(conn), timeout=10)
    except ConnectionConfigError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except (RuntimeError, TimeoutError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else "timeout"
        raise CliError(
            f"cannot reach Temporal at {conn.address} ({first}); "
            "is `make run` (or your Temporal server) running? Use --address or TEMPORAL_ADDRESS"
            + ("; check the TLS options" if conn.tls_config() else "")
            + "."
        ) from None


async def read_status(client: Client, inv: Inventory) -> PairStatus:
    try:
        return await client.execute_workflow(
            "pair-status",
            StatusInput(pair=inv.pair),
            id=f"{inv.workflow_id}-status-{uuid.uuid4().hex[:12]}",
            task_queue=inv.queue,
            result_type=PairStatus,
            execution_timeout=timedelta(seconds=60),
        )
    except Exception as e:  # WorkflowFailureError, timeouts: say what happened
        raise CliError(f"status of pair {inv.pair} could not be read: {cause(e)}") from None


async def read_watched_status(client: Client, inv: Inventory) -> tuple[PairStatus, str]:
    """The pair's status as its watch last read it (a query: no right to start a workflow
    needed), and a line saying when."""
    handle = client.get_workflow_handle(watch_workflow_id(inv.workflow_id))
    try:
        view = await asyncio.wait_for(handle.query("status", result_type=WatchView), 20)
    except Exception as e:
        raise CliError(
            f"status of pair {inv.pair} could not be read from its watch "
            f"({watch_workflow_id(inv.workflow_id)}; the pair's worker starts it): {cause(e)}"
        ) from None
    if view.status is None:
        raise CliError(
            f"the watch of pair {inv.pair} has not read the devices yet"
            + (f": {view.error}" if view.error else "; try again in a moment")
        )
    when = f"as the pair's watch read it at {view.read_at}"
    if view.error:
        when += f"; its latest read, at {view.error_at}, failed: {view.error}"
    return view.status, when


async def current_status(
    client: Client, inv: Inventory, args: argparse.Namespace
) -> tuple[PairStatus, str | None]:
    """Whoever may act reads the devices now (a short workflow); a viewer, who may not
    start workflows, reads what the pair's watch last read (a query), and is told when."""
    if getattr(args, "cached", False) or not inv.may_act(default_operator()):
        return await read_watched_status(client, inv)
    return await read_status(client, inv), None


def cause(e: BaseException) -> str:
    while getattr(e, "cause", None) is not None or e.__cause__ is not None:
        e = getattr(e, "cause", None) or e.__cause__  # type: ignore[assignment]
    return getattr(e, "message", None) or str(e)


async def resolve_run(
    client: Client, inv: Inventory, run: str, controls: bool = False
) -> WorkflowHandle[Any, Any]:
    """RUN as a handle; a run that continued as new leads to the run it continued as."""
    handle = await _resolve_run(client, inv, run, controls)
    return await follow_continuation(client, handle)


async def follow_continuation(
    client: Client, handle: WorkflowHandle[Any, Any]
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
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id, run_id=handle.run_id),
            maximum_page_size=1,
        )
        page = await client.workflow_service.get_workflow_execution_history_reverse(req)
        last = page.history.events[0] if page.history.events else None
        if last is None or not last.HasField(
            "workflow_execution_continued_as_new_event_attributes"
        ):
            return handle
        new_run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        handle = client.get_workflow_handle(handle.id, run_id=new_run)
    return handle


async def _resolve_run(
    client: Client, inv: Inventory, run: str, controls: bool = False
) -> WorkflowHandle[Any, Any]:
    """RUN is a run id, a unique prefix of one, or 'current' (the pair's latest run).

    `controls`: a console control's run (workflow id amsm-<pair>-control) counts too,
    for the commands that read any run's history (report, history export).
    """
    wid = inv.workflow_id
    wids = [wid, f"{wid}-control"] if controls else [wid]
    if run in ("current", "latest", "-"):
        return client.get_workflow_handle(wid)
    if UUID_RE.fullmatch(run):
        if controls and not await _has_run(client, wid, run):
            if await _has_run(client, wids[1], run):
                return client.get_workflow_handle(wids[1], run_id=run)
        return client.get_workflow_handle(wid, run_id=run)
    if not re.fullmatch(r"[0-9a-f-]{4,36}", run):
        raise CliError(
            f"RUN {run!r} is not a run id: give the id printed by `amsm start`, "
            "a unique prefix of at least 4 characters, or 'current'",
            EXIT_USAGE,
        )
    matches: list[tuple[str, str]] = []
    query = " OR ".join(f"WorkflowId = '{w}'" for w in wids)
    async for w in client.list_workflows(query):
        if w.run_id.startswith(run):
            matches.append((w.id, w.run_id))
    if not matches:
        raise CliError(f"no run of pair {inv.pair} starts with {run!r}", EXIT_USAGE)
    if len(matches) > 1:
        raise CliError(f"{run!r} matches {len(matches)} runs; give more characters", EXIT_USAGE)
    return client.get_workflow_handle(matches[0][0], run_id=matches[0][1])


async def _has_run(client: Client, wid: str, run_id: str) -> bool:
    try:
        await client.get_workflow_handle(wid, run_id=run_id).describe()
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
        raise CliError(
            f"no such run: {handle.run_id or handle.id} ({e.message})", EXIT_USAGE
        ) from None
    checklist: Checklist | None = None
    why = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHECKLIST_WAIT_SECONDS
    while True:
        try:
            checklist = await asyncio.wait_for(
                handle.query("progress", result_type=Checklist),
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
        raise CliError(
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
