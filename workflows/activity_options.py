"""Timeouts and retries for device activities, sized from the inventory's timing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from inventory.models import Timing

# Retrying cannot help these: the device refused, or said no.
NON_RETRYABLE = ["AuthenticationFailed", "InterlockRefused", "CommandFailed", "ConfigurationError"]


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


BOOTSTRAP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_attempts=3),
}
