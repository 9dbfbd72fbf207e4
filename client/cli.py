"""amsm: start, watch and signal the pair's workflows. Talks to Temporal only. The
worker, the lab and the codec server are programs of their own (amsm.py hands them their
command lines); `amsm --help` lists them too."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

from client.history_args import HISTORY_COMMANDS, add_history_commands, needs_server
from client.session import EXIT_USAGE, CliError, default_operator, load
from wire.options import add_options
from workflows.kinds import KINDS, OTHER_KINDS


def _switch_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--unplanned",
        action="store_true",
        help="the main side is lost (down or unreachable): switch without it (needs --reason)",
    )
    k.add_argument("--reason", help="why the switch is unplanned (recorded)")


def _split_switch_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--pilot", action="append", required=True, metavar="HOST", help="a pilot client (repeat)"
    )


def _restore_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--tolerance", type=int, default=0, help="asset counts may differ by this much (default 0)"
    )


# What `amsm start KIND` takes besides its side (workflows/kinds.py has the rest).
START_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "switch": _switch_options,
    "split-switch": _split_switch_options,
    "restore": _restore_options,
}


def build_parser(programs: Sequence[tuple[str, str]] = ()) -> argparse.ArgumentParser:
    """`programs`: (name, help) of the programs `amsm` also starts, for `amsm --help`."""
    p = argparse.ArgumentParser(
        prog="amsm",
        description="Aurora Mirrored System Manager: switch, split and restore a mirrored K2 pair.",
    )
    add_options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("status", help="show the pair like the manual's console")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    s.add_argument("--interval", type=float, default=5.0, help="seconds between reads (--watch)")
    s.add_argument(
        "--cached",
        action="store_true",
        help="what the pair's watch last read (a query; what viewers always get)",
    )

    s = sub.add_parser("start", help="start a workflow on the pair")
    kinds = s.add_subparsers(dest="kind", metavar="WORKFLOW")
    side = {"type": str.upper, "choices": ["X", "Y"]}
    for kind in KINDS.values():
        k = kinds.add_parser(kind.name, help=kind.help)
        k.add_argument(f"--{kind.side}", required=True, help=kind.side_help, **side)  # type: ignore[arg-type]
        START_OPTIONS.get(kind.name, lambda _: None)(k)
    for k in kinds.choices.values():
        k.add_argument("--operator", default=default_operator())
        k.add_argument("--json", action="store_true")
        k.add_argument(
            "--no-wait", action="store_true", help="do not wait for the precondition check"
        )

    s = sub.add_parser("runs", help="list the pair's runs (newest first)")
    s.add_argument("--kind", choices=[*KINDS, *OTHER_KINDS])
    s.add_argument(
        "--state", choices=["running", "awaiting-operator", "completed", "aborted", "failed"]
    )
    s.add_argument("--operator", help="who started them")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("watch", help="follow a run's checklist live")
    s.add_argument("run", metavar="RUN", nargs="?", default="current")
    s.add_argument(
        "--follow", action="store_true", help="keep going when the run waits for the operator"
    )
    s.add_argument("--interval", type=float, default=1.0)

    s = sub.add_parser("show", help="show a run's checklist")
    s.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'current')")
    s.add_argument("--json", action="store_true")

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
    s = sub.add_parser(
        "fence", help="the fence an unplanned switch left on the lost side: show or end it"
    )
    s.set_defaults(fence_action=None)
    s.add_argument("--json", action="store_true")
    f = s.add_subparsers(dest="fence_action", metavar="ACTION")
    e = f.add_parser("end", help="end the fence by hand (the lost side stays as it is)")
    e.add_argument("--reason", required=True)
    e.add_argument("--operator", default=default_operator())
    e.add_argument("--json", action="store_true")
    s = sub.add_parser("abort", help="stop the run at the next safe point, with a reason")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--reason", required=True)
    s.add_argument("--operator", default=default_operator())
    s.add_argument("--json", action="store_true")

    add_controls(sub)
    add_history_commands(sub)

    s = sub.add_parser(
        "rules", help="every interlock: what it protects, whether it can be overridden"
    )
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("inventory", help="inventory tools")
    inv = s.add_subparsers(dest="inv_command", metavar="ACTION")
    c = inv.add_parser("check", help="validate an inventory file and explain every problem")
    c.add_argument("file", metavar="FILE")
    for name, help in programs:
        sub.add_parser(name, help=help, add_help=False)
    return p


CONTROL_GROUPS = ("dsm", "replication", "smartbins", "browse", "clients", "insync", "allsync")
SIDE_ARG = {"type": str.upper, "choices": ["X", "Y"], "metavar": "SIDE"}


def add_controls(sub: Any) -> None:
    """The console's Status and Control buttons: each runs a short durable workflow."""

    def control(parent: Any, name: str, help: str, control: str, side: str = "") -> Any:
        p = parent.add_parser(name, help=help)
        p.set_defaults(control=control, side=None, hosts=[])
        if side == "positional":
            p.add_argument("side", **SIDE_ARG)
        elif side == "to":
            p.add_argument("--to", dest="side", required=True, **SIDE_ARG)
        p.add_argument("--operator", default=default_operator())
        p.add_argument("--json", action="store_true")
        p.add_argument(
            "--override",
            dest="overrides",
            action="append",
            default=[],
            metavar="RULE",
            help="break-glass: force this rule (repeat; `amsm rules` lists those allowed)",
        )
        p.add_argument("--reason", metavar="TEXT", help="why the rules are forced (required)")
        return p

    g = sub.add_parser("dsm", help="DSM: set main / set backup").add_subparsers(dest="action")
    control(g, "set-main", "set SIDE's DSM to main", "dsm-set-main", "positional")
    control(g, "set-backup", "set SIDE's DSM to backup", "dsm-set-backup", "positional")
    g = sub.add_parser("replication", help="start / stop replication").add_subparsers(dest="action")
    control(
        g, "start", "start replication from SIDE's (main) DSM", "replication-start", "positional"
    )
    control(g, "stop", "stop replication on SIDE's DSM", "replication-stop", "positional")
    g = sub.add_parser("smartbins", help="SmartBins main / backup").add_subparsers(dest="action")
    control(
        g,
        "set-main",
        "every SmartBins server of SIDE in normal mode",
        "smartbins-set-main",
        "positional",
    )
    control(
        g,
        "set-backup",
        "SIDE's SmartBins to backup (pseudo host)",
        "smartbins-set-backup",
        "positional",
    )
    g = sub.add_parser("browse", help="stop / start / switch Browse components").add_subparsers(
        dest="action"
    )
    for verb in ("stop", "start"):
        p = control(g, verb, f"{verb} Browse components (all, or those on HOSTs)", f"browse-{verb}")
        p.add_argument("hosts", nargs="*", metavar="HOST")
    p = control(g, "switch", "switch stopped Browse components to a side", "browse-switch", "to")
    p.add_argument("hosts", nargs="*", metavar="HOST")
    g = sub.add_parser("clients", help="switch clients").add_subparsers(dest="action")
    p = control(g, "switch", "switch these clients to a side, in parallel", "clients-switch", "to")
    p.add_argument("hosts", nargs="+", metavar="HOST")
    g = sub.add_parser("insync", help="InSync direction, start / stop").add_subparsers(
        dest="action"
    )
    control(
        g,
        "set-main",
        "InSync copies from SIDE (InSync must be stopped)",
        "insync-set-main",
        "positional",
    )
    control(g, "start", "start InSync (needs devices.insync_service)", "insync-start")
    control(g, "stop", "stop InSync (needs devices.insync_service)", "insync-stop")
    g = sub.add_parser("allsync", help="start / stop AllSync").add_subparsers(dest="action")
    control(g, "start", "start AllSync on SIDE's CIFS NAS head", "allsync-start", "positional")
    control(g, "stop", "stop AllSync on SIDE's CIFS NAS head", "allsync-stop", "positional")
    p = control(sub, "reboot", "force a reboot and wait until the host is back", "reboot")
    p.add_argument("hosts", nargs="+", metavar="HOST")


def main(argv: list[str] | None = None, programs: Sequence[tuple[str, str]] = ()) -> int:
    parser = build_parser(programs)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return dispatch(parser, args)
    except CliError as e:
        print(f"amsm: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130


def dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from client import commands

    if args.command == "inventory":
        if args.inv_command != "check":
            parser.parse_args(["inventory", "--help"])
        return commands.inventory_check(args.file)
    if args.command == "rules":
        from client.rules import rules_command

        return rules_command(args)
    if args.command == "start" and not args.kind:
        parser.parse_args(["start", "--help"])
    if args.command in CONTROL_GROUPS and not getattr(args, "control", None):
        parser.parse_args([args.command, "--help"])
    if getattr(args, "control", None):
        from client.rules import control_overrides

        control_overrides(args)  # a bad override is refused before anything connects
    if args.command in HISTORY_COMMANDS and not needs_server(args):
        from client.history_cli import run_history_command

        return asyncio.run(run_history_command(None, None, args))
    inv = load(args)
    return asyncio.run(commands.run_temporal_command(args, inv))
