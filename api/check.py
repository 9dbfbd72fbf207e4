"""The read-only site check (`amsm check`, and the readiness watch's each check): the
short `pair-check` workflow, its own id beside any run."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle

from api.refusal import Refused
from api.runs import cause
from inventory.models import Inventory
from workflows.check import READS_PER_HOST, CheckResult, PairCheckWorkflow
from workflows.models import CheckInput

R = TypeVar("R")


def read_time_limit(inv: Inventory, reads_per_host: int, spare: float = 120) -> float:
    """How long a read-only workflow of the pair (the check, the survey, a dry run) may
    take: each host read `reads_per_host` times, one more for its connection, and a spare."""
    t = inv.timing
    return (reads_per_host + 1) * t.operation_timeout + t.connect_timeout + spare


def time_limit(inv: Inventory) -> float:
    """The site check's time limit (the readiness watch waits as long for each check)."""
    return read_time_limit(inv, READS_PER_HOST)


async def start_read(
    temporal: Client,
    inv: Inventory,
    run: Callable[[Any, CheckInput], Awaitable[R]],
    operator: str,
    name: str,
    reads_per_host: int,
) -> WorkflowHandle[Any, R]:
    """Start a read-only workflow of the pair (`name`: check, survey) under an id of its
    own, never the pair's one-workflow id, so it runs beside a switch; its handle (the
    caller follows its progress)."""
    try:
        return await temporal.start_workflow(
            run,
            CheckInput(pair=inv.pair, initiator=operator),
            id=f"{inv.workflow_id}-{name}-{uuid.uuid4().hex[:12]}",
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=read_time_limit(inv, reads_per_host)),
        )
    except Exception as e:
        raise Refused(f"the {name} of pair {inv.pair} could not start: {cause(e)}") from None


async def start_check(
    temporal: Client, inv: Inventory, operator: str
) -> WorkflowHandle[Any, CheckResult]:
    """Start the site check of the pair; its handle (the caller follows its progress)."""
    return await start_read(temporal, inv, PairCheckWorkflow.run, operator, "check", READS_PER_HOST)
