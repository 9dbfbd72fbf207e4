"""`amsm confirm RUN STEP` (a manual step) and `amsm approve RUN STEP` (a gate): the
run's `confirm-step` / `approve-step` update, answered once the run has taken it."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.act import tick
from client.commands.keys import acting, add_key_option
from client.session import EXIT_FAIL, EXIT_OK, emit
from inventory.models import Inventory
from workflows.models import OperatorSignal


def add(sub: Any) -> None:
    for verb, what in (("confirm", "tick a manual step"), ("approve", "pass a gate")):
        s = sub.add_parser(verb, help=what)
        s.add_argument("run", metavar="RUN")
        s.add_argument("step", metavar="STEP")
        s.add_argument("--note", default=None)
        s.add_argument(
            "--operator", default=None, help="who acts (default: AMSM_OPERATOR, the login)"
        )
        add_key_option(s)
        s.add_argument("--json", action="store_true")
        if verb == "confirm":
            s.add_argument(
                "--client",
                action="append",
                metavar="HOST",
                help="for move-editors: a client to move to the other side (repeat)",
            )
        s.set_defaults(handler=run)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    verb = args.command
    operator, key = acting(args, inv)
    sig = OperatorSignal(
        step=args.step,
        operator=operator,
        note=args.note,
        clients=getattr(args, "client", None),
    )
    taken = await tick(temporal, inv, args.run, verb, sig, key=key)
    past = {"confirm": "confirmed", "approve": "approved"}[verb]
    text = f"{past} {args.step} on run {taken.run_id} as {operator}"
    if key is not None:
        text += " (signed with their key)"
    data: dict[str, Any] = {"run_id": taken.run_id, "step": args.step, "status": taken.status}
    if taken.approvals is not None:
        # A gate that needs several people (docs/operators/two-person.md).
        text += f"\n{taken.approvals}" + "".join(f"\n{x}" for x in taken.lapsed)
        data |= {"approvals": taken.approvals, "lapsed": taken.lapsed, "counted": taken.counted}
    if taken.awaiting:
        text += f"\nnow waiting for: {taken.awaiting}"
    emit(args, data, text)
    # Taken, but lapsed at once (the gate read other counts): it does not count.
    return EXIT_OK if taken.counted else EXIT_FAIL
