"""`amsm fence`: the fence an unplanned switch left on the lost side, and
`amsm fence end --reason`: end it by hand (its `end` update), then show where it ended."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from client.fence import find_fence, read_fence
from client.render import render_fence
from client.runs import send_update
from client.session import EXIT_OK, CliError, default_operator, emit
from inventory.models import Inventory
from workflows.fence import FenceWorkflow
from workflows.models import FenceEnd


def add(sub: Any) -> None:
    s = sub.add_parser(
        "fence", help="the fence an unplanned switch left on the lost side: show or end it"
    )
    s.set_defaults(fence_action=None, handler=run)
    s.add_argument("--json", action="store_true")
    f = s.add_subparsers(dest="fence_action", metavar="ACTION")
    e = f.add_parser("end", help="end the fence by hand (the lost side stays as it is)")
    e.add_argument("--reason", required=True)
    e.add_argument("--operator", default=default_operator())
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=end)


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    view = await read_fence(client, inv.pair)
    if view is None:
        emit(args, {"fence": None}, f"no fence has run on pair {inv.pair}")
        return EXIT_OK
    emit(args, {"fence": view.model_dump(mode="json")}, render_fence(view))
    return EXIT_OK


async def end(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if not (args.reason or "").strip():
        raise CliError('ending a fence needs a reason: --reason "..."')
    if inv.operators and args.operator.lower() not in {o.lower() for o in inv.operators}:
        raise CliError(f"{args.operator} is not an operator of pair {inv.pair}")
    where = await find_fence(client, inv.pair)
    if where is None:
        raise CliError(f"no fence has run on pair {inv.pair}")
    handle = client.get_workflow_handle(where[0], run_id=where[1])
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        view = await read_fence(client, inv.pair)
        what = view.state.message if view else ""
        raise CliError(f"the fence on pair {inv.pair} is not running: {what}")
    request = FenceEnd(operator=args.operator, reason=args.reason)
    await send_update(client, handle, FenceWorkflow.end, request, who="the fence")
    await handle.result()
    view = await read_fence(client, inv.pair)
    assert view is not None
    emit(args, {"fence": view.model_dump(mode="json")}, render_fence(view))
    return EXIT_OK
