"""Changing a Temporal Schedule in place (`amsm readiness on` on a watch already on): only
the fields asked, only when they differ, and without losing a change made beside it.

Every update, trigger or pause is a signal to the schedule's scheduler, and the server's
limit on signals (workflows/server.py: MAX_SIGNALS in one run) counts them, so nothing is
sent when nothing would change. The SDK's `ScheduleHandle.update` sends no conflict token
(its own comment says the retry loop is missing): here each change goes with the token of
the description it was made on and is read back; one the server refused or dropped (an
older server drops a conflicting update without an error) is made again on the new
description."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.api.schedule.v1 import Schedule
from temporalio.api.workflowservice.v1 import DescribeScheduleRequest, UpdateScheduleRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

TRIES = 3
# After an update, how long to wait for the schedule to show it.
SHOW_POLLS, SHOW_POLL_SECONDS = 20, 0.1


class ScheduleGone(Exception):
    """The schedule does not exist (never made, or deleted)."""


async def describe(client: Client, schedule_id: str) -> tuple[Schedule, bytes]:
    try:
        resp = await client.workflow_service.describe_schedule(
            DescribeScheduleRequest(namespace=client.namespace, schedule_id=schedule_id)
        )
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleGone(schedule_id) from None
        raise
    return resp.schedule, resp.conflict_token


def changed(schedule: Schedule, change: Callable[[Schedule], None]) -> Schedule:
    new = Schedule()
    new.CopyFrom(schedule)
    change(new)
    return new


async def change_schedule(
    client: Client, schedule_id: str, change: Callable[[Schedule], None]
) -> bool:
    """Apply `change` (a function that edits the schedule's description in place, the
    same edit every time) to the schedule, and see it there. Returns False when there was
    nothing to change (nothing is sent: every update is a signal to the schedule, which
    the server's limit on signals counts). Raises ScheduleGone when the schedule does not
    exist, RuntimeError when the change did not hold in TRIES tries."""
    current, token = await describe(client, schedule_id)
    for _ in range(TRIES):
        new = changed(current, change)
        if new == current:
            return False
        try:
            await client.workflow_service.update_schedule(
                UpdateScheduleRequest(
                    namespace=client.namespace,
                    schedule_id=schedule_id,
                    schedule=new,
                    conflict_token=token,
                    identity=client.identity,
                    request_id=str(uuid.uuid4()),
                )
            )
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise ScheduleGone(schedule_id) from None
            if e.status != RPCStatusCode.FAILED_PRECONDITION:
                raise
            # A conflict (another change came first): read it again and redo ours.
        # The scheduler applies an update in its own next task: wait until it shows.
        for _ in range(SHOW_POLLS):
            current, seen = await describe(client, schedule_id)
            if seen != token:
                break
            await asyncio.sleep(SHOW_POLL_SECONDS)
        if changed(current, change) == current:
            return True
        token = seen
    raise RuntimeError(
        f"the schedule {schedule_id} changed under every one of {TRIES} tries to update it"
    )
