"""`amsm start KIND`: start one of the pair's workflows (the table of kinds,
workflows/kinds.py) and wait until it has read the devices and said whether it goes."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from client.commands import dry_run
from client.runs import cause, index
from client.session import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError, default_operator, emit
from inventory.models import Inventory
from workflows.base import PairWorkflow
from workflows.kind import StartError, StartOption
from workflows.kinds import KINDS


def _add_option(k: argparse.ArgumentParser, o: StartOption) -> None:
    """One of the row's start options (workflows/kind.py) as an argument of the parser."""
    flag = f"--{o.name}"
    if o.type == "flag":
        k.add_argument(flag, action="store_true", help=o.help)
    elif o.type == "hosts":
        k.add_argument(flag, action="append", required=o.required, metavar="HOST", help=o.help)
    elif o.type == "int":
        k.add_argument(flag, type=int, default=o.default, required=o.required, help=o.help)
    else:
        k.add_argument(flag, default=o.default, required=o.required, help=o.help)


def add(sub: Any) -> None:
    s = sub.add_parser("start", help="start a workflow on the pair")
    kinds = s.add_subparsers(dest="kind", metavar="WORKFLOW")
    side = {"type": str.upper, "choices": ["X", "Y"]}
    for kind in KINDS.values():
        k = kinds.add_parser(kind.name, help=kind.help)
        k.add_argument(f"--{kind.side}", required=True, help=kind.side_help, **side)  # type: ignore[arg-type]
        for o in kind.options:
            _add_option(k, o)
    for k in kinds.choices.values():
        k.add_argument("--operator", default=default_operator())
        k.add_argument("--json", action="store_true")
        k.add_argument(
            "--no-wait", action="store_true", help="do not wait for the precondition check"
        )
        k.add_argument(
            "--dry-run",
            action="store_true",
            help="change nothing: walk the checklist against the devices as they are now and "
            "say what each step would do and what would refuse it (exit 0: nothing would be "
            "refused, 1: something would; it takes no lock and may run beside a run)",
        )
        k.set_defaults(handler=run)


async def running_run(client: Client, inv: Inventory) -> str:
    """One line about the run that holds the pair, for a refusal."""
    try:
        desc = await client.get_workflow_handle(inv.workflow_id).describe()
    except RPCError:
        return f"workflow {inv.workflow_id}"
    return (
        f"run {desc.run_id} ({desc.workflow_type}, started {desc.start_time:%Y-%m-%d %H:%M:%S} UTC)"
    )


def workflow_input(inv: Inventory, args: argparse.Namespace) -> tuple[BaseModel, str]:
    """The workflow's input and a one-line description of what it will do."""
    kind = KINDS.get(args.kind)
    if kind is None:
        raise CliError(
            f"unknown workflow {args.kind!r}; available: {', '.join(KINDS)}",
            EXIT_USAGE,
        )
    side = getattr(args, kind.side)
    opts = {o.name: getattr(args, o.name, o.default) for o in kind.options}
    try:
        return kind.start(inv.pair, side, args.operator, opts)
    except StartError as e:
        raise CliError(str(e), EXIT_USAGE) from None


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    inp, what = workflow_input(inv, args)
    if args.dry_run:
        return await dry_run.run(client, inv, args, inp)
    # A run that would make main a side a fence still waits on is refused by the run
    # itself (workflows/base.py bootstrap), whoever starts it.
    try:
        handle = await client.start_workflow(
            args.kind,
            inp,
            id=inv.workflow_id,
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            memo={"kind": args.kind, "what": what, "initiator": args.operator},
            search_attributes=index(inv, args.kind, args.operator),
            static_summary=f"{what} on pair {inv.pair}, by {args.operator}",
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"refused: only one workflow runs on pair {inv.pair} at a time, and "
            f"{await running_run(client, inv)} is running. See it with `amsm show current`."
        ) from None
    run_id = handle.result_run_id or ""
    if not args.no_wait:
        refused = await wait_for_precondition(client, inv, run_id)
        if refused:
            emit(args, {"run_id": run_id, "refused": refused}, f"amsm: {refused}")
            return EXIT_FAIL
    emit(
        args,
        {"run_id": run_id},
        f"started {what} on pair {inv.pair}\nrun: {run_id}\nfollow it: amsm show {run_id}",
    )
    return EXIT_OK


async def wait_for_precondition(
    client: Client, inv: Inventory, run_id: str, timeout: float = 60
) -> str | None:
    """Wait until the workflow has read the devices; return the refusal, if any."""
    handle = client.get_workflow_handle(inv.workflow_id, run_id=run_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.FAILED:
            try:
                await handle.result()
            except Exception as e:
                return cause(e)
        try:
            c = await handle.query(PairWorkflow.progress)
        except Exception:
            c = None
        if c is not None and (c.state == "failed" or any(s.status != "pending" for s in c.steps)):
            return c.message if c.state == "failed" else None
        await asyncio.sleep(0.3)
    return None
