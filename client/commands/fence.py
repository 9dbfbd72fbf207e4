"""`amsm fence`: the fence an unplanned switch left on the lost side, and
`amsm fence end --reason`: end it by hand (its `end` update), then show where it ended."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.fence import end_fence, fence_and_squatters
from client.commands.keys import acting, add_key_option
from client.render import render_fence, render_squatters
from client.session import EXIT_OK, emit
from inventory.models import Inventory


def add(sub: Any) -> None:
    s = sub.add_parser(
        "fence", help="the fence an unplanned switch left on the lost side: show or end it"
    )
    s.set_defaults(fence_action=None, handler=run)
    s.add_argument("--json", action="store_true")
    f = s.add_subparsers(dest="fence_action", metavar="ACTION")
    e = f.add_parser("end", help="end the fence by hand (the lost side stays as it is)")
    e.add_argument("--reason", required=True)
    e.add_argument(
        "--operator", default=None, help="who ends it (default: AMSM_OPERATOR, the login)"
    )
    add_key_option(e)
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=end)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    view, squatters = await fence_and_squatters(temporal, inv)
    text = render_fence(view) if view else f"no fence has run on pair {inv.pair}"
    if squatters:
        text += "\n\n" + render_squatters(squatters)
    data = {
        "fence": view.model_dump(mode="json") if view else None,
        "squatters": [s.model_dump(mode="json") for s in squatters],
    }
    emit(args, data, text)
    return EXIT_OK


async def end(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    # With a key (--key, AMSM_KEY) the end is signed and made as the key's operator.
    operator, key = acting(args, inv)
    view = await end_fence(temporal, inv, operator, args.reason, key=key)
    emit(args, {"fence": view.model_dump(mode="json")}, render_fence(view))
    return EXIT_OK
