"""A reset as anyone who reaches Temporal could ask for one (`temporal workflow reset`):
the run goes on, as a new run, from the workflow task after a given event."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client


async def reset_after(
    temporal: Client, workflow_id: str, run_id: str, event_id: int, reason: str
) -> str:
    """Reset the run to the first workflow task completed after event `event_id` (0: its
    first task); the new run's id."""
    events = (await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events
    task = next(
        e.event_id
        for e in events
        if e.event_id > event_id and e.HasField("workflow_task_completed_event_attributes")
    )
    reset = await temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            reason=reason,
            workflow_task_finish_event_id=task,
            request_id=str(uuid.uuid4()),
        )
    )
    return reset.run_id


async def child_completed(temporal: Client, workflow_id: str, run_id: str, child_type: str) -> int:
    """The event at which the run's child of type `child_type` completed."""
    events = (await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events
    return next(
        e.event_id
        for e in events
        if e.HasField("child_workflow_execution_completed_event_attributes")
        and e.child_workflow_execution_completed_event_attributes.workflow_type.name == child_type
    )


async def activity_ended(
    temporal: Client, workflow_id: str, run_id: str, which: Callable[[str], bool]
) -> int:
    """The event at which the run's first activity of a type `which` accepts ended
    (completed, failed or timed out)."""
    events = (await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events
    scheduled = next(
        e.event_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and which(e.activity_task_scheduled_event_attributes.activity_type.name)
    )
    ends = (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
    )
    return next(
        e.event_id
        for e in events
        if (kind := e.WhichOneof("attributes")) in ends
        and getattr(e, str(kind)).scheduled_event_id == scheduled
    )
