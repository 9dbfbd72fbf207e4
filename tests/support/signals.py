"""Sending signals as anyone who reaches the Temporal frontend would, and reading what the
server kept of each run (docs/reference/limits.md: the server refuses a run's signals past its
limits, workflows/server.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import Header, Payload, Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import Input, Meta, Request, WaitPolicy
from temporalio.api.workflowservice.v1 import (
    SignalWorkflowExecutionRequest,
    UpdateWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

# What the server answers a signal or an update past a limit (Temporal's own texts).
SIGNALS_LIMIT = "exceeded workflow execution limit for signal events"
IN_FLIGHT_LIMIT = "limit on number of concurrent in-flight updates has been reached"
PAYLOADS_LIMIT = "limit on total payload size of in-flight updates has been reached"
BLOB_LIMIT = "Blob data size exceeds limit"


@dataclass
class Sent:
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # the server's reason: count

    def add(self, other: Sent) -> None:
        self.accepted += other.accepted
        self.refused.update(other.refused)


async def _one(send: Any) -> Sent:
    try:
        await send()
        return Sent(accepted=1)
    except RPCError as e:
        return Sent(refused=Counter([e.message]))


async def send_signals(
    handle: WorkflowHandle[Any, Any], name: str, arg: object, count: int, at_once: int = 1
) -> Sent:
    """`count` signals `name` to the handle's workflow, `at_once` at a time (a burst as fast
    as the frontend takes them); what the server accepted and why it refused the others."""
    sent = Sent()
    for i in range(0, count, at_once):
        n = min(at_once, count - i)
        for r in await asyncio.gather(*(_one(lambda: handle.signal(name, arg)) for _ in range(n))):
            sent.add(r)
    return sent


async def send_with_header(
    temporal: Client, workflow_id: str, name: str, arg: bytes, header_bytes: int
) -> Sent:
    """One signal whose header holds `header_bytes`: the server checks the blob size limit
    against a signal's input only, and stores its header with it."""
    req = SignalWorkflowExecutionRequest(
        namespace=temporal.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        signal_name=name,
        identity="someone@frontend",
        request_id=str(uuid.uuid4()),
        input=Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=arg)]),
        header=Header(fields={"x": Payload(data=b"h" * header_bytes)}),
    )
    return await _one(lambda: temporal.workflow_service.signal_workflow_execution(req))


async def update_with_header(
    temporal: Client, workflow_id: str, name: str, arg: bytes, header_bytes: int
) -> str:
    """One update whose header holds `header_bytes`, as anyone who reaches the frontend can
    send it (the server limits neither its header nor its identity); what came of it: the
    run's answer ("success"/"failure": taken or refused by its validator) or the server's
    refusal."""
    req = UpdateWorkflowExecutionRequest(
        namespace=temporal.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        wait_policy=WaitPolicy(
            lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
        ),
        request=Request(
            meta=Meta(update_id=str(uuid.uuid4()), identity="someone@frontend"),
            input=Input(
                name=name,
                args=Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=arg)]),
                header=Header(fields={"x": Payload(data=b"h" * header_bytes)}),
            ),
        ),
    )
    try:
        r = await temporal.workflow_service.update_workflow_execution(req)
    except RPCError as e:
        return e.message
    return r.outcome.WhichOneof("value") or "no outcome"


async def signal_until_accepted(
    handle: WorkflowHandle[Any, Any], name: str, arg: object, timeout: float = 60
) -> None:
    """A signal sent again while the server refuses it for the run's signal count (the run
    continues as new, and the next one takes it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await _one(lambda: handle.signal(name, arg))
        if r.accepted:
            return
        # (or it reached a run the moment that one continued as new)
        assert all(SIGNALS_LIMIT in m or "complet" in m or "clos" in m for m in r.refused), r
        assert asyncio.get_running_loop().time() < deadline, "the run never took it"
        await asyncio.sleep(0.2)


@dataclass
class RunKept:
    run_id: str
    status: WorkflowExecutionStatus | None
    events: int
    size: int  # bytes
    signals: int  # signals the server stored in it


async def runs_kept(temporal: Client, workflow_id: str) -> list[RunKept]:
    """Every run under `workflow_id`, newest first, with what the server keeps of it."""
    out = []
    async for w in temporal.list_workflows(f"WorkflowId = '{workflow_id}'"):
        handle = temporal.get_workflow_handle(workflow_id, run_id=w.run_id)
        info = (await handle.describe()).raw_description.workflow_execution_info
        signals = 0
        async for e in handle.fetch_history_events():
            signals += e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        out.append(
            RunKept(w.run_id, w.status, info.history_length, info.history_size_bytes, signals)
        )
    return out
