"""Worker interceptors: every activity knows its step and host, for logs and metrics.

The step comes from the activity's type and input (the step table read backwards,
`workflows.steps.steps_for_activity`); a client's own switch names its stage. The
host is the input's host, or the side's name for an activity that acts on a side.
Each activity also counts into `amsm_activities` (by activity type and outcome) and
records its duration in `amsm_activity_seconds` on the worker's metrics endpoint.

A run of a kind that counts a time to serve (its row's `serving`, workflows/kind.py: the
steps that must be done) records it, when it ends, in `amsm_time_to_serve_seconds{pair,
kind}`: from the run's start until the last of those steps was done, as the run report
measures it (records/report.py `serving_time`), to the second the checklist keeps.
A run that ends without serving records nothing. The workflow's own meter records
nothing while a history is replayed, so a run a second worker picks up is counted once.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.common import MetricCounter, MetricHistogramFloat, RawValue
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from workers.logs import CURRENT_HOST, CURRENT_STEP
from workflows.kinds import KINDS
from workflows.models import Checklist
from workflows.steps import steps_for_activity

TIME_TO_SERVE = "amsm_time_to_serve_seconds"
# Seconds: a switch serves in minutes (objectives.time_to_serve is typically 10 to 30 min),
# past the SDK's default buckets, which are made for milliseconds.
TIME_TO_SERVE_BUCKETS = [30.0, 60, 120, 300, 600, 900, 1200, 1500, 1800, 2700, 3600, 7200]

CLIENT_STAGES = {
    "client_prepare": "client-switch: reconfigure",
    "client_reboot": "client-switch: restart {round}/2",
    "client_verify": "client-switch: verify",
    "client_prepare_restart": "client-switch: reconfigure, restart 1/2",
    "client_restart_verify": "client-switch: restart 2/2, verify",
}


def step_and_host(activity_type: str, arg: Any) -> tuple[str | None, str | None]:
    data: dict[str, Any] = {}
    if hasattr(arg, "model_dump"):
        data = arg.model_dump(mode="json")
    elif isinstance(arg, dict):
        data = arg
    host = data.get("host")
    if host is None and data.get("side"):
        host = f"side {data['side']}"
    if activity_type in CLIENT_STAGES:
        return CLIENT_STAGES[activity_type].format(round=data.get("round", "?")), host
    steps = steps_for_activity(activity_type, data)
    return ("|".join(steps) or None), host


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor) -> None:
        super().__init__(next)
        self._metrics: tuple[MetricCounter, MetricHistogramFloat] | None = None

    def _instruments(self) -> tuple[MetricCounter, MetricHistogramFloat]:
        """Created once, on the first activity (the meter is the worker's runtime's)."""
        if self._metrics is None:
            meter = activity.metric_meter()
            self._metrics = (
                meter.create_counter(
                    "amsm_activities", "activities run by this worker, by type and outcome"
                ),
                meter.create_histogram_float(
                    "amsm_activity_seconds", "how long each activity ran", "s"
                ),
            )
        return self._metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        step, host = step_and_host(info.activity_type, input.args[0] if input.args else None)
        tokens = (CURRENT_STEP.set(step), CURRENT_HOST.set(host))
        counter, seconds = self._instruments()
        attrs = {"activity": info.activity_type}
        started = time.monotonic()
        outcome = "failed"
        try:
            result = await super().execute_activity(input)
            outcome = "completed"
            return result
        finally:
            counter.add(1, {**attrs, "outcome": outcome})
            seconds.record(time.monotonic() - started, attrs)
            CURRENT_STEP.reset(tokens[0])
            CURRENT_HOST.reset(tokens[1])


def time_to_serve(workflow_type: str, inp: Any, c: Checklist, started: datetime) -> float | None:
    """Seconds from the run's start until the steps its kind counts were all done; None
    for a kind that counts none, or a run that did not get there. `started`: the run's
    start (a run that continued as new: its first checklist's, to the second)."""
    kind = KINDS.get(workflow_type)
    served = kind.served_by(inp) if kind is not None else None
    if served is None:
        return None
    ended = {s.id: s.ended_at for s in c.steps if s.status == "done"}
    if any(not ended.get(step) for step in served[0]):
        return None
    reached = max(datetime.fromisoformat(ended[step] or "") for step in served[0])
    return (reached - started).total_seconds()


class _WorkflowInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        result = await super().execute_workflow(input)
        if isinstance(result, Checklist) and input.args and isinstance(input.args[0], RawValue):
            info = workflow.info()
            inp = workflow.payload_converter().from_payload(input.args[0].payload)
            started = info.workflow_start_time  # the start event, as the report counts
            if result.continued and result.started_at:
                started = datetime.fromisoformat(result.started_at)
            secs = time_to_serve(info.workflow_type, inp, result, started)
            if secs is not None:
                workflow.metric_meter().create_histogram_float(
                    TIME_TO_SERVE,
                    "from a run's start until its new main side served (DSM main, clients moved)",
                    "s",
                ).record(max(secs, 0.0), {"pair": result.pair, "kind": info.workflow_type})
        return result


class RunContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _WorkflowInbound
