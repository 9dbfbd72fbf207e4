"""Timeouts and retries for device activities, sized from the inventory's timing; and the
type of a device activity called by reference."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeAlias, TypeVar

from temporalio.common import RetryPolicy
from temporalio.types import MethodAsyncSingleParam

from activities.models import StepResult
from inventory.models import Timing

A = TypeVar("A")
# A device activity by reference (DsmActivities.dsm_set_mode): its input `A`, its
# StepResult. A caller passing another input, or a renamed activity, fails the type check.
DeviceOp: TypeAlias = MethodAsyncSingleParam[Any, A, StepResult]

# Retrying cannot help these: the device refused, or said no.
NON_RETRYABLE = [
    "AuthenticationFailed",
    "InterlockRefused",
    "CommandFailed",
    "ConfigurationError",
    # Raised non-retryable already (activities/support.py); named here too so the policy
    # says so whatever raises it: the retry would read the same record.
    "OwnRecordUnreadable",
]


def retry(timing: Timing) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=timing.max_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def device_op(timing: Timing) -> dict[str, Any]:
    return {
        "start_to_close_timeout": timedelta(
            seconds=timing.operation_timeout + timing.replication_timeout
        ),
        "heartbeat_timeout": timedelta(seconds=timing.heartbeat_timeout),
        "retry_policy": retry(timing),
    }


def reboot_op(timing: Timing) -> dict[str, Any]:
    return {
        "start_to_close_timeout": timedelta(
            seconds=timing.reboot_timeout + timing.operation_timeout
        ),
        "heartbeat_timeout": timedelta(seconds=timing.heartbeat_timeout),
        "retry_policy": retry(timing),
    }


def client_op(timing: Timing) -> dict[str, Any]:
    """A client's restart with a device operation before or after it, and the wait for
    its session and V: after the restart (activities/clients.py _await_mount)."""
    return {
        "start_to_close_timeout": timedelta(
            seconds=timing.reboot_timeout + timing.mount_timeout + 2 * timing.operation_timeout
        ),
        "heartbeat_timeout": timedelta(seconds=timing.heartbeat_timeout),
        "retry_policy": retry(timing),
    }


def batch_wait(timing: Timing) -> dict[str, Any]:
    """Waiting for a client batch an earlier run started: as long as its clients' two
    activities can take with every retry, heartbeating while it waits."""
    one = timing.reboot_timeout + timing.mount_timeout + 2 * timing.operation_timeout
    return {
        "start_to_close_timeout": timedelta(seconds=2 * timing.max_attempts * one + 600),
        "heartbeat_timeout": timedelta(seconds=timing.heartbeat_timeout),
        "retry_policy": retry(timing),
    }


BOOTSTRAP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_attempts=3),
}


def lost_side_try(timing: Timing) -> dict[str, Any]:
    """An unplanned switch's one try at a device of the lost side: one attempt, and a
    time limit that also covers waiting for a worker (a site worker may be lost too)."""
    limit = timedelta(seconds=timing.lost_side_timeout)
    return {
        "start_to_close_timeout": limit,
        "schedule_to_close_timeout": limit * 2,
        "retry_policy": RetryPolicy(maximum_attempts=1),
    }


def fence_tries(timing: Timing) -> dict[str, Any]:
    """The fence's tries at the lost side: unlimited, with backoff up to
    `fence_max_interval`. The server retries; the history holds one activity whatever
    the number of tries."""
    return {
        "start_to_close_timeout": timedelta(seconds=timing.operation_timeout),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=max(1.0, timing.fence_max_interval)),
            maximum_attempts=0,
        ),
    }
