"""Work that a cancellation request must not cut short.

A cancel from the Web UI ("Request Cancellation") or `temporal workflow cancel` cancels
the workflow's main task, and with it every activity and child it awaits. A client
switch that has started is never cancelled half-way, and a run never ends without
saying where the devices are, so the work runs in a task of its own (which the request
does not reach) and the request is handed to `on_cancel` instead: the big workflows
treat it as an abort, the others note it and finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def despite_cancel(work: Awaitable[T], on_cancel: Callable[[], None]) -> T:
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            on_cancel()
