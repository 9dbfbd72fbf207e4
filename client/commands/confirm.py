"""`amsm confirm RUN STEP` (a manual step) and `amsm approve RUN STEP` (a gate): the
run's `confirm-step` / `approve-step` update, answered once the run has taken it."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from client.runs import fetch_checklist, resolve_run, send_update
from client.session import EXIT_OK, EXIT_USAGE, CliError, default_operator, emit
from inventory.models import Inventory
from workflows.base import PairWorkflow
from workflows.models import OperatorSignal

UPDATES = {"confirm": PairWorkflow.confirm_step, "approve": PairWorkflow.approve_step}


def add(sub: Any) -> None:
    for verb, what in (("confirm", "tick a manual step"), ("approve", "pass a gate")):
        s = sub.add_parser(verb, help=what)
        s.add_argument("run", metavar="RUN")
        s.add_argument("step", metavar="STEP")
        s.add_argument("--note", default=None)
        s.add_argument("--operator", default=default_operator())
        s.add_argument("--json", action="store_true")
        if verb == "confirm":
            s.add_argument(
                "--client",
                action="append",
                metavar="HOST",
                help="for move-editors: a client to move to the other side (repeat)",
            )
        s.set_defaults(handler=run)


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    verb = args.command
    handle = await resolve_run(client, inv, args.run)
    before = await fetch_checklist(handle)
    want = "awaiting-approval" if verb == "approve" else "awaiting-confirmation"
    try:
        step = before.step(args.step)
    except KeyError:
        ids = ", ".join(s.id for s in before.steps)
        raise CliError(
            f"run {before.run_id} has no step {args.step!r}; steps: {ids}", EXIT_USAGE
        ) from None
    if before.state not in ("running", "awaiting-operator"):
        raise CliError(f"run {before.run_id} is {before.state}; nothing to {verb}")
    if step.status != want:
        hint = ""
        if step.kind == "gate" and verb == "confirm":
            hint = f" (it is a gate: amsm approve {before.run_id} {step.id})"
        elif step.kind == "manual" and verb == "approve":
            hint = f" (it is a manual step: amsm confirm {before.run_id} {step.id})"
        elif before.awaiting:
            hint = f"; the run waits for {before.awaiting[0].id}"
        raise CliError(f"step {step.id} is {step.status}, not {want}{hint}")
    sig = OperatorSignal(
        step=args.step,
        operator=args.operator,
        note=args.note,
        clients=getattr(args, "client", None),
    )
    taken = await send_update(client, handle, UPDATES[verb], sig)
    past = {"confirm": "confirmed", "approve": "approved"}[verb]
    text = f"{past} {args.step} on run {taken.run_id} as {args.operator}"
    if taken.awaiting:
        text += f"\nnow waiting for: {taken.awaiting}"
    emit(args, {"run_id": taken.run_id, "step": args.step, "status": taken.step_status}, text)
    return EXIT_OK
