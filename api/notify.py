"""`amsm notify test`: one test message through the worker's Apprise config (the short
`notify-test` workflow on the pair's queue, its own id beside any run), as `amsm check`
reaches the devices: the CLI never reads the config, whose URLs hold secrets."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client

from activities.models import NoticeResult
from api.refusal import Refused
from api.runs import cause
from inventory.models import AUDIENCES, Inventory
from workflows.notify import NotifyTestInput, NotifyTestWorkflow

# Apprise's own tag for every service of the config, whatever its tags.
EVERY = "all"
TAGS = (EVERY, *AUDIENCES)
# A delivery's own limit (workflows/notify.py DELIVERY: two tries of 30 s) and a spare.
TEST_SECONDS = 120


async def notify_test(temporal: Client, inv: Inventory, operator: str, tag: str) -> NoticeResult:
    """Send the test message to `tag`; delivered, or the error (the run is the proof)."""
    if tag not in TAGS:
        raise Refused(f"--tag {tag!r} is not an audience; allowed: {', '.join(TAGS)}", "usage")
    if not inv.may_act(operator):
        raise Refused(f"{operator} is not an operator of pair {inv.pair}")
    if inv.notify is None:
        raise Refused(
            f"the inventory of pair {inv.pair} has no `notify` section; "
            "see docs/operators/notifications.md"
        )
    try:
        return await temporal.execute_workflow(
            NotifyTestWorkflow.run,
            NotifyTestInput(pair=inv.pair, tag=tag, initiator=operator),
            id=f"{inv.workflow_id}-notify-test-{uuid.uuid4().hex[:12]}",
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=TEST_SECONDS),
        )
    except Exception as e:
        raise Refused(f"the test message of pair {inv.pair} was not sent: {cause(e)}") from None
