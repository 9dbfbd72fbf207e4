"""`amsm notify test [--tag TAG]`: a test message to an audience, sent by the worker
through its Apprise config (docs/operators/notifications.md). Exit 0 when delivered, 1
when not (with why)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.notify import EVERY, TAGS, notify_test
from client.session import EXIT_FAIL, EXIT_OK, default_operator, emit
from inventory.models import Inventory


def add(sub: Any) -> None:
    s = sub.add_parser(
        "notify",
        help="telling people: send a test message",
        description="What people are told, and when: docs/operators/notifications.md.",
    )
    verbs = s.add_subparsers(dest="verb", required=True, metavar="VERB")
    t = verbs.add_parser(
        "test",
        help="send a test message through the worker's Apprise config",
        description="The worker sends one message to the Apprise tag TAG (default: every "
        "service of its config). Exit 0 when delivered, 1 when not.",
    )
    t.add_argument("--tag", default=EVERY, choices=TAGS, help="the audience (default: all)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(handler=run)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    r = await notify_test(temporal, inv, default_operator(), args.tag)
    text = (
        f"test message to {args.tag!r} of pair {inv.pair}: delivered"
        if r.delivered
        else f"test message to {args.tag!r} of pair {inv.pair}: NOT delivered: {r.error}"
    )
    emit(args, {"tag": args.tag, "delivered": r.delivered, "error": r.error}, text)
    return EXIT_OK if r.delivered else EXIT_FAIL
