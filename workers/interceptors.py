"""Worker interceptors: every activity knows its step and host, for logs and metrics.

The step comes from the activity's type and input (the step table read backwards,
`workflows.steps.steps_for_activity`); a client's own switch names its stage. The
host is the input's host, or the side's name for an activity that acts on a side.
Each activity also counts into `amsm_activities` (by activity type and outcome) and
records its duration in `amsm_activity_seconds` on the worker's metrics endpoint.
"""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity
from temporalio.common import MetricCounter, MetricHistogramFloat
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from workers.logs import CURRENT_HOST, CURRENT_STEP
from workflows.steps import steps_for_activity

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


class RunContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
