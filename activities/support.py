"""What every activity shares: the base of a device family's activities, error
translation, heartbeating, the interlocks forced."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.drivers.errors import (
    CommandFailed,
    ConfigurationError,
    DeviceError,
    DriverError,
    InterlockRefused,
    OwnRecordUnreadable,
)
from activities.drivers.interlocks import Overrides
from activities.models import ForcedRule

if TYPE_CHECKING:
    # Only the worker builds the context (with the SSH, WinRM and ODBC libraries):
    # workflows, and the CLI through them, import the activities without them.
    from activities.context import DeviceContext

P = ParamSpec("P")
R = TypeVar("R")


class FamilyActivities:
    """The activities of one device family, over the worker's one shared context."""

    def __init__(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self.inv = ctx.inv


def to_application_error(e: Exception) -> ApplicationError:
    if isinstance(e, DeviceError):
        details = {"host": e.host, "kind": e.kind}
        if isinstance(e, InterlockRefused):
            details["rule"] = e.rule
        return ApplicationError(str(e), details, type=e.kind, non_retryable=not e.retryable)
    if isinstance(e, ConfigurationError):
        return ApplicationError(str(e), type=e.kind, non_retryable=True)
    if isinstance(e, OwnRecordUnreadable):
        # Not the device's error: no device kind, and the same record would be read again.
        return ApplicationError(
            str(e), {"host": e.host, "kind": e.kind}, type=e.kind, non_retryable=True
        )
    if isinstance(e, UnicodeError):
        # Its text quotes the offending character and position: it may be a secret's.
        return ApplicationError(
            f"a text could not be encoded or decoded ({type(e).__name__})",
            type="ConfigurationError",
            non_retryable=True,
        )
    if isinstance(e, ValueError | KeyError):
        # The device answered something the driver does not understand.
        return ApplicationError(
            f"unexpected answer from the device: {e}", type=CommandFailed.kind, non_retryable=True
        )
    return ApplicationError(str(e), type=type(e).__name__, non_retryable=False)


def translate_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Translate driver errors into ApplicationErrors that say whether to retry."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (DriverError, ValueError, KeyError) as e:
            err = to_application_error(e)
            activity.logger.warning("%s failed: %s", activity.info().activity_type, err.message)
            raise err from None

    return wrapper


def device_activity(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """translate_errors, and heartbeat in the background while the operation runs."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        async with heartbeating():
            return await fn(*args, **kwargs)

    return translate_errors(wrapper)


@asynccontextmanager
async def heartbeating(*details: object) -> AsyncIterator[None]:
    """Heartbeat in the background so a dead worker is noticed within the heartbeat
    timeout; with `details`, the ones a retry must resume from (kept, not erased)."""
    info = activity.info()
    timeout = info.heartbeat_timeout.total_seconds() if info.heartbeat_timeout else 0
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat(*details)
            await asyncio.sleep(max(0.2, timeout / 3))

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


def forced(ov: Overrides) -> list[ForcedRule]:
    """The interlocks an operation forced, for its result (and so the history)."""
    for f in ov.forced:
        activity.logger.warning("%s: rule %s overridden: %s", f.host, f.rule, f.refusal)
    return [ForcedRule(rule=f.rule, host=f.host, refusal=f.refusal) for f in ov.forced]
