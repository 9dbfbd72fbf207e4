"""`amsm retry RUN STEP`, `amsm skip RUN STEP --reason` (a failed step, or one client of
it) and `amsm abort RUN --reason`: the run's `decide-step` update, answered once the run
has taken the decision."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from client.runs import fetch_checklist, resolve_run, send_update
from client.session import EXIT_OK, EXIT_USAGE, CliError, default_operator, emit
from inventory.models import Inventory
from workflows.base import PairWorkflow
from workflows.models import Decision


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
        s.add_argument("--operator", default=default_operator())
        s.add_argument("--json", action="store_true")
        s.set_defaults(handler=run)
    s = sub.add_parser("abort", help="stop the run at the next safe point, with a reason")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--reason", required=True)
    s.add_argument("--operator", default=default_operator())
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run, notice=False)


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """retry / skip a failed step or client, or abort the run: the `decide` signal."""
    action = args.command
    handle = await resolve_run(client, inv, args.run)
    before = await fetch_checklist(handle)
    if before.state not in ("running", "awaiting-operator"):
        raise CliError(f"run {before.run_id} is {before.state}; nothing to {action}")
    step_id = getattr(args, "step", "") or ""
    client_host = getattr(args, "client", None)
    if action != "abort":
        try:
            step = before.step(step_id)
        except KeyError:
            ids = ", ".join(s.id for s in before.steps)
            raise CliError(
                f"run {before.run_id} has no step {step_id!r}; steps: {ids}", EXIT_USAGE
            ) from None
        failed = [c.host for c in step.failed_clients]
        if client_host and client_host.lower() not in {h.lower() for h in failed}:
            raise CliError(
                f"{client_host} is not a failed client of {step.id} "
                f"(failed: {', '.join(failed) or 'none'})"
            )
        can_skip_waiting = action == "skip" and step.status in (
            "awaiting-confirmation",
            "awaiting-approval",
        )
        if step.status != "failed" and not failed and not can_skip_waiting:
            raise CliError(
                f"step {step.id} is {step.status}; only a failed step "
                + ("or one awaiting the operator " if action == "skip" else "")
                + f"can be {'retried' if action == 'retry' else 'skipped'}"
            )
        if client_host:
            client_host = next(h for h in failed if h.lower() == client_host.lower())
    d = Decision(
        step=step_id,
        action=action,  # type: ignore[arg-type]
        operator=args.operator,
        reason=args.reason,
        client=client_host,
    )
    if action == "abort" and any(x.action == "abort" for x in before.decisions):
        run_id = before.run_id  # already aborting: the run refuses a second abort
    else:
        run_id = (await send_update(client, handle, PairWorkflow.decide_step, d)).run_id
    target = f"{step_id} {client_host}" if client_host else step_id
    text = {
        "retry": f"retrying {target} on run {run_id}",
        "skip": f"skipped {target} on run {run_id}: {args.reason}",
        "abort": f"aborting run {run_id}: in-flight client switches finish first; "
        f"see `amsm show {run_id}`",
    }[action]
    emit(
        args,
        {"run_id": run_id, "action": action, "step": step_id, "client": client_host},
        text,
    )
    return EXIT_OK
