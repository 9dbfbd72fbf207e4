"""Where a device activity runs: on the site of the side it acts on.

An activity whose input names a side (that side's DSM, SmartBins, NAS head) is
scheduled on that side's task queue, `<queue>-site-x`, served by that site's worker
(`amsm worker --site X`) or by a worker without `--site`, which serves every queue.
Everything else (the pair probe, the clients, Browse, the Control Point) stays on the
pair's queue. Runs started before the `site-queues` patch replay with every activity
on the pair's queue.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from inventory.models import site_queue

SITE_PATCH = "site-queues"


def side_of(arg: object) -> str | None:
    """The side an activity's input names, if any."""
    side = getattr(arg, "side", None)
    return side if side in ("X", "Y") else None


def on_site(arg: object) -> dict[str, Any]:
    """`task_queue=` for an activity with input `arg`: its side's queue, or nothing."""
    side = side_of(arg)
    if side is None or not workflow.patched(SITE_PATCH):
        return {}
    return {"task_queue": site_queue(workflow.info().task_queue, side)}  # type: ignore[arg-type]
