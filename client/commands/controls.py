"""The console's Status and Control buttons: `amsm dsm`, `replication`, `smartbins`,
`browse`, `clients`, `insync`, `allsync` and `reboot`, each a short durable workflow
(workflows/control.py) whose sentence is printed. A control's `--override RULE --reason
TEXT` is checked before anything connects (the control workflow checks again, for starts
that do not come through `amsm`)."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from client.runs import cause, index
from client.session import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError, default_operator, emit
from inventory.models import Inventory
from inventory.rules import BY_NAME, OVERRIDABLE
from workflows.control import ControlInput, ControlResult
from workflows.overrides import Override

SIDE_ARG = {"type": str.upper, "choices": ["X", "Y"], "metavar": "SIDE"}


def add(sub: Any) -> None:
    def control(parent: Any, name: str, help: str, control: str, side: str = "") -> Any:
        p = parent.add_parser(name, help=help)
        p.set_defaults(control=control, side=None, hosts=[], handler=run, check=control_overrides)
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


def control_overrides(args: argparse.Namespace) -> list[Override]:
    """The overrides of a control's command line; usage errors and absolute rules refused."""
    rules = list(dict.fromkeys(args.overrides or []))
    reason = (args.reason or "").strip()
    if not rules:
        if args.reason is not None:
            raise CliError(
                "--reason goes with --override RULE (the reason for forcing the rule)",
                EXIT_USAGE,
            )
        return []
    unknown = [r for r in rules if r not in BY_NAME]
    if unknown:
        raise CliError(
            f"--override {unknown[0]}: no such rule; rules that can be overridden: "
            f"{', '.join(OVERRIDABLE)} (see `amsm rules`)",
            EXIT_USAGE,
        )
    if not reason:
        raise CliError(
            f"--override {rules[0]} needs --reason TEXT (not blank): it is recorded with your "
            "name in the run's history and report",
            EXIT_USAGE,
        )
    for r in rules:
        rule = BY_NAME[r]
        if not rule.overridable:
            raise CliError(
                f"refused: rule '{r}' cannot be overridden; it protects absolutely: "
                f"{rule.protects}",
                EXIT_FAIL,
            )
    return [Override(rule=r, reason=reason) for r in rules]


def check_hosts(inv: Inventory, args: argparse.Namespace) -> list[str]:
    """The HOSTs of a control, as the inventory spells them; unknown ones are a usage error."""
    if args.control == "clients-switch":
        pool = {c.host.lower(): c.host for c in inv.clients}
        what = "switchable clients"
    elif args.control.startswith("browse-"):
        pool = {b.host.host.lower(): b.host.host for b in inv.browse}
        what = "Browse hosts"
    else:
        pool = {h.host.lower(): h.host for _, h in inv.all_hosts()}
        what = "hosts"
    unknown = [h for h in args.hosts if h.lower() not in pool]
    if unknown:
        raise CliError(
            f"not among the {what} of pair {inv.pair}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(pool.values()))})",
            EXIT_USAGE,
        )
    return list(dict.fromkeys(pool[h.lower()] for h in args.hosts))


async def start_control(
    client: Client, inv: Inventory, args: argparse.Namespace, operator: str, via: str = ""
) -> WorkflowHandle[Any, ControlResult]:
    """Start one console control (`args`: control, side, hosts, overrides, reason) as a
    short workflow for `operator`, its hosts and overrides checked; the web console starts
    its controls here too (`via`: said in the run's summary)."""
    overrides = control_overrides(args)
    inp = ControlInput(
        pair=inv.pair,
        control=args.control,
        operator=operator,
        side=args.side,
        hosts=check_hosts(inv, args),
        overrides=overrides,
    )
    try:
        return await client.start_workflow(
            "control",
            inp,
            id=f"{inv.workflow_id}-control",
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            result_type=ControlResult,
            search_attributes=index(inv, "control", operator),
            static_summary=f"{args.control} {args.side or ''} {' '.join(inp.hosts)} by {operator}"
            + (f" ({via})" if via else "")
            + "".join(f", overriding {o.rule}" for o in overrides),
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"refused: another control is running on pair {inv.pair}; one at a time"
        ) from None


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """Run one console control as a short workflow and wait for its sentence."""
    handle = await start_control(client, inv, args, args.operator)
    try:
        result = await handle.result()
    except Exception as e:
        raise CliError(cause(e)) from None
    text = result.message + "".join(f"\n  {d}" for d in result.details)
    text += "".join(f"\n  {o.sentence()}" for o in result.overrides)
    emit(args, {"run_id": handle.result_run_id, **result.model_dump(mode="json")}, text)
    return EXIT_OK
