"""The pair's worker of a test, in process: the pair's queue and both site queues."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from temporalio.client import Client

from tests.support.lab import Lab


@contextlib.asynccontextmanager
async def running_worker(temporal: Client, lab: Lab) -> AsyncIterator[None]:
    from workers.worker import build_workers

    # The pair's queue and both site queues, as `amsm worker` without --site.
    main, x, y = build_workers(temporal, lab.inventory, lab.inventory_path)
    async with main, x, y:
        yield
