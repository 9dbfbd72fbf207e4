"""`amsm retry RUN STEP`, `amsm skip RUN STEP --reason` (a failed step, or one client of
it) and `amsm abort RUN --reason`: the run's `decide-step` update, answered once the run
has taken the decision."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.act import decide
from client.commands.keys import acting, add_key_option
from client.session import EXIT_OK, emit
from inventory.models import Inventory


def add(sub: Any) -> None:
    for verb, what in (
        ("retry", "try a failed step again (for switch-clients: only the failed clients)"),
        ("skip", "leave a failed or waiting step (or one client) behind, with a reason"),
    ):
        s = sub.add_parser(verb, help=what)
        s.add_argument("run", metavar="RUN")
        s.add_argument("step", metavar="STEP")
        s.add_argument("--client", metavar="HOST", help="only this client of the step")
        s.add_argument("--reason", required=(verb == "skip"), default=None)
        s.add_argument(
            "--operator", default=None, help="who acts (default: AMSM_OPERATOR, the login)"
        )
        add_key_option(s)
        s.add_argument("--json", action="store_true")
        s.set_defaults(handler=run)
    s = sub.add_parser("abort", help="stop the run at the next safe point, with a reason")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--reason", required=True)
    s.add_argument("--operator", default=None, help="who acts (default: AMSM_OPERATOR, the login)")
    add_key_option(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run, notice=False)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """retry / skip a failed step or client, or abort the run: the `decide` signal."""
    action = args.command
    step_id = getattr(args, "step", "") or ""
    operator, key = acting(args, inv)
    d = await decide(
        temporal,
        inv,
        args.run,
        action,
        step_id,
        operator,
        args.reason,
        getattr(args, "client", None),
        key=key,
    )
    target = f"{step_id} {d.client}" if d.client else step_id
    text = {
        "retry": f"retrying {target} on run {d.run_id}",
        "skip": f"skipped {target} on run {d.run_id}: {args.reason}",
        "abort": f"aborting run {d.run_id}: in-flight client switches finish first; "
        f"see `amsm show {d.run_id}`",
    }[action]
    emit(
        args,
        {"run_id": d.run_id, "action": action, "step": step_id, "client": d.client},
        text,
    )
    return EXIT_OK
