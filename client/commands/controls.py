"""The console's Status and Control buttons: `amsm dsm`, `replication`, `smartbins`,
`browse`, `clients`, `insync`, `allsync` and `reboot`, each a short durable workflow
(workflows/control.py) whose sentence is printed. A control's `--override RULE --reason
TEXT` is checked before anything connects (the control workflow checks again, for starts
that do not come through `amsm`)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from api.control_approvals import Waiting
from api.controls import ControlRequest, control_overrides, run_control
from api.squatters import ended_said
from client.commands.keys import acting, add_key_option
from client.session import EXIT_OK, emit
from inventory.models import Inventory
from workflows.control_approval import APPROVAL_WAIT

APPROVAL_MINUTES = int(APPROVAL_WAIT.total_seconds() // 60)

SIDE_ARG = {"type": str.upper, "choices": ["X", "Y"], "metavar": "SIDE"}


def add(sub: Any) -> None:
    def control(parent: Any, name: str, help: str, control: str, side: str = "") -> Any:
        p = parent.add_parser(name, help=help)
        p.set_defaults(control=control, side=None, hosts=[], handler=run, check=check_overrides)
        if side == "positional":
            p.add_argument("side", **SIDE_ARG)
        elif side == "to":
            p.add_argument("--to", dest="side", required=True, **SIDE_ARG)
        p.add_argument(
            "--operator", default=None, help="who acts (default: AMSM_OPERATOR, the login)"
        )
        add_key_option(p)
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
        p.add_argument(
            "--end-squatter",
            metavar="RUN",
            help="first end run RUN, a workflow that holds the control's id and that amsm "
            "did not start (another task queue, or not a control), as the refusal names "
            "it: a squatter; refused for anything else",
        )
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


def check_overrides(args: argparse.Namespace) -> None:
    """The overrides of the command line, refused before anything connects."""
    control_overrides(args.overrides, args.reason)


def request_of(args: argparse.Namespace) -> ControlRequest:
    return ControlRequest(
        control=args.control,
        side=args.side,
        hosts=args.hosts,
        overrides=args.overrides,
        reason=args.reason,
    )


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """Run one console control as a short workflow and wait for its sentence."""
    # With a key (--key, AMSM_KEY) the control is signed and run as the key's operator.
    operator, key = acting(args, inv)
    done = await run_control(
        temporal, inv, request_of(args), operator, key=key, squatter=args.end_squatter
    )
    ended = done.ended_squatter
    if ended is not None and not args.json:
        print(ended_said(ended))
    squatter = {"ended_squatter": ended.model_dump()} if ended else {}
    if done.waiting is not None:
        return waiting(args, operator, done.run_id, done.waiting, squatter)
    result = done.result
    assert result is not None
    text = result.message + "".join(f"\n  {d}" for d in result.details)
    text += "".join(f"\n  {o.sentence()}" for o in result.overrides)
    if result.proof:
        text += f"\n  by {result.operator} ({result.proof})"
    if result.approved:
        text += f"\n  override {result.approved}"
    emit(args, {"run_id": done.run_id, **result.model_dump(mode="json"), **squatter}, text)
    return EXIT_OK


def waiting(
    args: argparse.Namespace,
    operator: str,
    run_id: str | None,
    w: Waiting,
    squatter: dict[str, Any] | None = None,
) -> int:
    """A control whose break-glass override waits for its approvals: nothing has acted
    yet; what the others type (docs/operators/two-person.md, "A control's override").
    `squatter`: the squatter it ended first, for `--json`."""
    rules = ", ".join(dict.fromkeys(args.overrides))
    message = (
        f"{args.control} waits for {w.required} operators to approve its break-glass "
        f"override of {rules} (approvals.break-glass): nothing has acted yet"
    )
    details = [
        f"approve: amsm approve {w.run_id} {w.step}",
        f"give it up: amsm abort {w.run_id} --reason TEXT",
        f"not approved within {APPROVAL_MINUTES} minutes, it is given up and does nothing",
    ]
    data = {
        "run_id": run_id,
        "control": args.control,
        "operator": operator,
        "message": message,
        "details": details,
        "overrides": [],
        "proof": None,
        "approved": None,
        "waiting": w.model_dump(mode="json"),
        **(squatter or {}),
    }
    emit(args, data, message + "".join(f"\n  {d}" for d in details))
    return EXIT_OK
