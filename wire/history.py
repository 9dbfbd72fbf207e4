"""A run's first event, as the server wrote it: the run id it was written for (another
than the run's own: the run is a reset of that one, `temporal workflow reset` or the Web
UI; no client can choose it, and a run's own continuation keeps its own) and the run's
parent. Read by the worker's reset check (workers/resets.py) and the fence lookup
(wire/fences.py)."""

from __future__ import annotations

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode


async def first_event(
    temporal: Client, workflow_id: str, run_id: str
) -> tuple[str, WorkflowExecution | None] | None:
    """The run id a run's start event was written for (another than its own: a reset) and
    its parent run, if any; None where the server keeps no history of the run."""
    req = GetWorkflowExecutionHistoryRequest(
        namespace=temporal.namespace,
        execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        maximum_page_size=1,
    )
    try:
        page = await temporal.workflow_service.get_workflow_execution_history(req)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    started = page.history.events[0].workflow_execution_started_event_attributes
    parent = (
        started.parent_workflow_execution if started.HasField("parent_workflow_execution") else None
    )
    return started.original_execution_run_id, parent
