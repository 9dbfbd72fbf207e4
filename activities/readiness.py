"""The readiness watch's verdict, where it is kept, and its two activities: the verdict
before (for `since`) and the worker's gauge `amsm_readiness_problems`.

Where the truth lives: each check of the watch (workflows/readiness.py) is a run that the
pair's Temporal Schedule (`amsm-<pair>-readiness`) starts, and its verdict is that run's
result, kept by the server with its history. The schedule lists its last ten runs, so the
latest verdict is one DescribeSchedule and one result away (`latest_verdict`, read by
`amsm status` and by the next check). Nothing of it is in a worker: a worker that
restarts, or another one, reads the same. It is never written into the schedule: every
change of a schedule is a signal to it, which the server's limit on signals in one run
counts (workflows/server.py), and the ends of its checks use that up. The verdict holds counts, host and check names and times, never a
secret."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from temporalio import activity
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import MetricGauge
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import PairRef
from inventory.models import Inventory, readiness_schedule_id

# Problems named in the verdict (host, check, what was found); `amsm check` lists them all.
NAMED = 10
# How long reading one check's result may take.
RESULT_SECONDS = 5.0


# Bounds of a verdict (it also travels in the schedule's input, docs/reference/limits.md).
NAMED_TEXT = 600
ERROR_TEXT = 1000
Named = Annotated[str, StringConstraints(max_length=NAMED_TEXT)]


class Readiness(BaseModel):
    """One check's verdict. `since`: when `ready` last changed (the first check's time
    when none came before). A check that could not run is not ready, with one problem
    (itself) and its error."""

    ready: bool
    problems: int = Field(ge=0)
    warnings: int = Field(0, ge=0)
    hosts: int = Field(0, ge=0)
    # The first NAMED problems, "host: check: found".
    named: list[Named] = Field(default_factory=list, max_length=NAMED)
    error: Annotated[str, StringConstraints(max_length=ERROR_TEXT)] | None = None
    checked_at: datetime
    since: datetime
    # When the next on-air blackout window begins, as the check said (None without).
    next_blackout: Named | None = None


class ReadinessRecord(BaseModel):
    pair: str
    readiness: Readiness


def carry_since(last: Readiness | None, ready: bool, now: datetime) -> datetime:
    """When the verdict last changed: the check before's `since` while `ready` stays as
    it was, now when it turns (or on the first check)."""
    if last is not None and last.ready == ready:
        return last.since
    return now


async def latest_verdict(
    temporal: Client, pair: str, but: str | None = None
) -> tuple[ScheduleDescription | None, Readiness | None]:
    """The pair's readiness schedule (None when the watch is off) and the verdict of its
    newest check that has ended (None before the first), leaving out the run `but` (the
    check that asks, by its run id). One DescribeSchedule and, usually, one or two DescribeWorkflow and
    one result; a check that did
    not end with a verdict (failed, timed out, terminated) is passed over for the one
    before. Raises what else goes wrong (RPCError other than not found, a timeout, a
    result that does not decode: a codec key missing) for the caller to say."""
    try:
        desc = await temporal.get_schedule_handle(readiness_schedule_id(pair)).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None, None
        raise
    for done in reversed(desc.info.recent_actions):
        run = done.action
        if not isinstance(run, ScheduleActionExecutionStartWorkflow):
            continue
        if run.first_execution_run_id == but:
            # The check that asks, by its run: the schedule names its checks by the second
            # they start (`amsm-<pair>-readiness-<time>`), so two checks triggered within
            # one second share a workflow id.
            continue
        handle = temporal.get_workflow_handle(
            run.workflow_id, run_id=run.first_execution_run_id, result_type=Readiness
        )
        try:
            # Whether the check still runs is asked of the check itself, not of the
            # schedule's list of running actions: the schedule learns of a check's end
            # a moment later, and a check that has ended must not be passed over for an
            # older verdict (`since`, and the change the watch tells, go from it).
            ran = await asyncio.wait_for(handle.describe(), RESULT_SECONDS)
            if ran.status == WorkflowExecutionStatus.RUNNING:
                continue
            verdict = await asyncio.wait_for(handle.result(), RESULT_SECONDS)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                continue  # past the namespace's retention
            raise
        except WorkflowFailureError:
            continue  # failed, timed out, terminated: no verdict
        if isinstance(verdict, Readiness):
            return desc, verdict
    return desc, None


class ReadinessActivities:
    def __init__(self, temporal: Client, inventory: Inventory) -> None:
        self.temporal = temporal
        self.inv = inventory
        self._gauge: MetricGauge | None = None
        self._checked: MetricGauge | None = None

    def _mine(self, pair: str) -> None:
        if pair != self.inv.pair:
            raise ApplicationError(
                f"this worker serves pair {self.inv.pair!r}, not {pair!r}", non_retryable=True
            )

    @activity.defn(name="last_readiness")
    async def last_readiness(self, inp: PairRef) -> Readiness | None:
        """The verdict of the watch's check before this one (None for the first check of
        a schedule, or when the watch was turned off meanwhile). Reads Temporal only."""
        self._mine(inp.pair)
        _, last = await latest_verdict(self.temporal, inp.pair, but=activity.info().workflow_run_id)
        return last

    @activity.defn(name="record_readiness")
    async def record_readiness(self, inp: ReadinessRecord) -> None:
        """Set the worker's gauges `amsm_readiness_problems{pair=...}` to the check's count
        of problems (0: ready for a switch) and `amsm_readiness_checked_timestamp_seconds`
        to when it checked (a gauge cannot be taken back: after `readiness off` the count
        stays, and the time says how old it is). Refuses another pair's verdict."""
        self._mine(inp.pair)
        if self._gauge is None or self._checked is None:
            # Made on first use: the meter is the worker's runtime's (Prometheus with
            # `amsm worker --metrics`).
            meter = activity.metric_meter()
            self._gauge = meter.create_gauge(
                "amsm_readiness_problems",
                "problems the readiness watch's last site check found, by pair "
                "(0: ready for a switch)",
            )
            self._checked = meter.create_gauge(
                "amsm_readiness_checked_timestamp_seconds",
                "when the readiness watch's last site check ran, by pair (Unix time)",
            )
        self._gauge.set(inp.readiness.problems, {"pair": inp.pair})
        self._checked.set(int(inp.readiness.checked_at.timestamp()), {"pair": inp.pair})
