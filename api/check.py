"""The read-only site check (`amsm check`, and the readiness watch's each check): the
short `pair-check` workflow, its own id beside any run."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from api.refusal import Refused
from api.runs import cause
from inventory.models import Inventory
from workflows.check import READS_PER_HOST, CheckResult, PairCheckWorkflow
from workflows.models import CheckInput


def check_workflow_id(inv: Inventory) -> str:
    """Its own id: never the pair's one-workflow id, so it runs beside a switch."""
    return f"{inv.workflow_id}-check-{uuid.uuid4().hex[:12]}"


def time_limit(inv: Inventory) -> float:
    t = inv.timing
    return (READS_PER_HOST + 1) * t.operation_timeout + t.connect_timeout + 120


async def start_check(
    temporal: Client, inv: Inventory, operator: str
) -> WorkflowHandle[Any, CheckResult]:
    """Start the site check of the pair; its handle (the caller follows its progress)."""
    try:
        return await temporal.start_workflow(
            PairCheckWorkflow.run,
            CheckInput(pair=inv.pair, initiator=operator),
            id=check_workflow_id(inv),
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=time_limit(inv)),
        )
    except Exception as e:
        raise Refused(f"the check of pair {inv.pair} could not start: {cause(e)}") from None
