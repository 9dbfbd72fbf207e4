"""amsm, the operator's CLI: start, watch and signal the pair's workflows. Talks to
Temporal only. Each command is a module of client/commands/ (its arguments beside its
handler); this file builds the parser from their list and runs the one asked for. The
worker, the lab and the codec server are programs of their own (amsm.py hands them
their command lines); `amsm --help` lists them too."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from api.refusal import Refused
from api.runs import connect, waiting_note
from client.commands import (
    auth,
    check,
    confirm,
    controls,
    decide,
    fence,
    history,
    inventory,
    keys,
    notify,
    readiness,
    replay,
    report,
    rules,
    runs,
    schedule,
    show,
    start,
    status,
    survey,
    watch,
)
from client.session import (
    EXIT_USAGE,
    CliError,
    bad_arguments,
    default_operator,
    load,
    server_refused,
)
from inventory.models import Inventory
from wire.options import add_options, connection

# Every command, in the order `amsm --help` lists them.
COMMANDS = (
    status, check, survey, readiness, start, schedule, runs, watch, show, confirm, decide, fence, controls,
    report, history, replay, rules, inventory, notify, keys, auth,
)  # fmt: skip


def build_parser(programs: Sequence[tuple[str, str]] = ()) -> argparse.ArgumentParser:
    """`programs`: (name, help) of the programs `amsm` also starts, for `amsm --help`."""
    p = argparse.ArgumentParser(
        prog="amsm",
        description="Aurora Mirrored System Manager: switch, split and restore a mirrored K2 pair.",
    )
    add_options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    for name, help in programs:
        sub.add_parser(name, help=help, add_help=False)
    return p


def main(argv: list[str] | None = None, programs: Sequence[tuple[str, str]] = ()) -> int:
    parser = build_parser(programs)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return dispatch(parser, args)
    except Refused as e:  # the API's, and the CLI's own (CliError)
        print(f"amsm: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130


def dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not (getattr(args, "handler", None) or getattr(args, "local", None)):
        # A group without its action (`amsm start`, `amsm dsm`): its help.
        parser.parse_args([args.command, "--help"])
    if getattr(args, "check", None):
        args.check(args)  # what can be refused before anything connects
    if offline(args):
        return asyncio.run(args.local(args))
    inv = load(args)  # explain a bad inventory before connecting
    return asyncio.run(connected(args, inv))


async def connected(args: argparse.Namespace, inv: Inventory) -> int:
    temporal = await connect(connection(args))
    return await run_command(temporal, args, inv)


def offline(args: argparse.Namespace) -> bool:
    """The command needs neither the server nor the inventory (`rules`, `replay`, ...)."""
    local, given = getattr(args, "local", None), getattr(args, "offline", None)
    return local is not None and (given is None or given(args))


async def run_command(temporal: Client, args: argparse.Namespace, inv: Inventory) -> int:
    """Run a parsed command over `temporal` (the tests and the benchmark pass their own)."""
    try:
        if offline(args):
            return int(await args.local(args))
        if getattr(args, "reads", False):
            who = default_operator()
            if not inv.may_read(who):
                raise CliError(
                    f"{who} is neither an operator nor a viewer of pair {inv.pair} "
                    "(inventory `operators:` / `viewers:`; set AMSM_OPERATOR to act as another name)"
                )
        if getattr(args, "notice", True) and not getattr(args, "json", False):
            await notice_waiting_run(temporal, inv, args)
        handler: Any = args.handler
        return int(await handler(temporal, inv, args))
    except Refused as e:  # the API's refusal, with the exit code its kind maps to
        raise CliError.of(e) from None
    except ValidationError as e:
        # An argument outside the limits every workflow enforces (docs/reference/limits.md).
        raise CliError(bad_arguments(e), EXIT_USAGE) from None
    except RPCError as e:
        # A refusal no command explains itself (the server busy, the run closing as it was
        # asked): what the server said, never a traceback.
        raise CliError(server_refused(e)) from None


async def notice_waiting_run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> None:
    """One line on stderr when a run on the pair waits for the operator, unless this command
    acts on the very step that waits."""
    note = await waiting_note(temporal, inv)
    if note is not None and getattr(args, "step", None) != note[0]:
        print(note[1], file=sys.stderr)
