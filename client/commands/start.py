"""`amsm start KIND`: start one of the pair's workflows (the table of kinds,
workflows/kinds.py) and wait until it has read the devices and said whether it goes."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from api.squatters import ended_said
from api.start import start, start_input
from client.commands import dry_run
from client.commands.keys import acting, add_key_option
from client.session import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError, emit
from inventory.models import Inventory
from workflows.kind import Kind, StartOption
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


def add_kind(kinds: Any, kind: Kind, leave_out: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """KIND's parser under `kinds` with its side and its row's start options (`amsm
    start KIND` and `amsm schedule KIND` take the same, but those `leave_out` names)."""
    k: argparse.ArgumentParser = kinds.add_parser(kind.name, help=kind.help)
    side: Any = {"type": str.upper, "choices": ["X", "Y"]}
    k.add_argument(f"--{kind.side}", required=True, help=kind.side_help, **side)
    for o in kind.options:
        if o.name not in leave_out:
            _add_option(k, o)
    return k


def add(sub: Any) -> None:
    s = sub.add_parser("start", help="start a workflow on the pair")
    kinds = s.add_subparsers(dest="kind", metavar="WORKFLOW")
    for kind in KINDS.values():
        add_kind(kinds, kind)
    for k in kinds.choices.values():
        k.add_argument(
            "--operator", default=None, help="who starts it (default: AMSM_OPERATOR, the login)"
        )
        add_key_option(k)
        k.add_argument("--json", action="store_true")
        k.add_argument(
            "--override",
            dest="overrides",
            action="append",
            default=[],
            metavar="RULE",
            help="break-glass: force this rule at the start (no-switch-in-blackout: start "
            "on air; needs --override-reason; recorded in the run's checklist)",
        )
        k.add_argument(
            "--override-reason", metavar="TEXT", help="why the rule is forced (required with it)"
        )
        k.add_argument(
            "--no-wait", action="store_true", help="do not wait for the precondition check"
        )
        k.add_argument(
            "--end-squatter",
            metavar="RUN",
            help="first end run RUN, a workflow that holds the pair's run id and that amsm "
            "did not start (another task queue, or none of the pair's workflows), as the "
            "refusal names it: a squatter; refused for anything else",
        )
        k.add_argument(
            "--dry-run",
            action="store_true",
            help="change nothing: walk the checklist against the devices as they are now and "
            "say what each step would do and what would refuse it (exit 0: nothing would be "
            "refused, 1: something would; it takes no lock and may run beside a run)",
        )
        k.set_defaults(handler=run)


def workflow_input(inv: Inventory, args: argparse.Namespace) -> tuple[BaseModel, str]:
    """The workflow's input from the command line, and a one-line description of it."""
    row = KINDS.get(args.kind)
    side = getattr(args, row.side) if row else ""
    options = {o.name: getattr(args, o.name, o.default) for o in row.options} if row else {}
    return start_input(
        inv,
        args.kind,
        side,
        args.operator,
        options,
        getattr(args, "overrides", []),
        getattr(args, "override_reason", None),
    )


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    # With a key (--key, AMSM_KEY) the start is signed and made as the key's operator.
    args.operator, key = acting(args, inv)
    inp, what = workflow_input(inv, args)
    if args.dry_run:
        if args.end_squatter:
            raise CliError("--end-squatter goes with a start, not with --dry-run", EXIT_USAGE)
        return await dry_run.run(temporal, inv, args, inp)
    started = await start(
        temporal,
        inv,
        args.kind,
        inp,
        what,
        args.operator,
        wait=not args.no_wait,
        hint=". See it with `amsm show current`.",
        key=key,
        squatter=args.end_squatter,
    )
    ended = started.ended_squatter
    said = f"{ended_said(ended)}\n" if ended else ""
    squatter = {"ended_squatter": ended.model_dump()} if ended else {}
    if started.refused:
        data = {"run_id": started.run_id, "refused": started.refused, **squatter}
        emit(args, data, f"{said}amsm: {started.refused}")
        return EXIT_FAIL
    emit(
        args,
        {"run_id": started.run_id, **squatter},
        f"{said}started {what} on pair {inv.pair}\nrun: {started.run_id}\n"
        f"follow it: amsm show {started.run_id}",
    )
    return EXIT_OK
