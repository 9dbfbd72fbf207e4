"""`amsm lab ...`: the lab's own program (`amsm` hands it what follows `lab`).

`main(argv)` parses the command line; each command function here takes the parsed
Namespace, prints a short sentence and returns the process exit status (0 ok, 1
refused, 2 bad usage). Expected
problems (an existing lab, a missing directory, a bad side) print one line on
stderr, never a traceback.

Namespace fields:
- init: dir, editors, ingest, smartbins, reboot_seconds, force, redundant
- serve: dir
- hands: dir, app ('insync' | 'allsync'), action ('start' | 'stop'), side (AllSync only)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab import LabError

DEFAULT_DIR = "var/lab"


def _fail(command: str, message: str) -> int:
    print(f"amsm lab {command}: {message}", file=sys.stderr)
    return 1


def cmd_console_accounts(args: argparse.Namespace) -> int:
    """The web console's two lab accounts, with new passwords (a lab made before them)."""
    from lab.init import CONSOLE_ACCOUNTS, write_console_accounts

    d = Path(args.dir)
    if not (d / "inventory.yaml").exists():
        print(f"amsm: {d} holds no lab (amsm lab init --dir {d})", file=sys.stderr)
        return 2
    write_console_accounts(d)
    print(
        f"console accounts in {d / CONSOLE_ACCOUNTS}; passwords in "
        f"{d / 'secrets' / 'console-operator'} and {d / 'secrets' / 'console-viewer'}"
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Create a lab directory (mirrored, X main)."""
    from inventory.load import load_inventory
    from lab.init import init_lab

    directory = getattr(args, "dir", DEFAULT_DIR)
    try:
        path = init_lab(
            directory,
            editors=getattr(args, "editors", 2),
            ingest=getattr(args, "ingest", 1),
            smartbins=getattr(args, "smartbins", 1),
            reboot_seconds=getattr(args, "reboot_seconds", 5.0),
            force=getattr(args, "force", False),
            redundant=getattr(args, "redundant", False),
        )
    except LabError as e:
        return _fail("init", str(e))
    hosts = len({h.host.lower() for _, h in load_inventory(path).all_hosts()})
    print(
        f"lab: created a mirrored pair 'lab' (X main) with {hosts} hosts in {path.parent}; "
        f"inventory {path}. Start it with: amsm lab serve --dir {path.parent}"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the lab until Ctrl-C or SIGTERM."""
    from lab.serve import main_serve

    try:
        main_serve(getattr(args, "dir", DEFAULT_DIR))
    except LabError as e:
        return _fail("serve", str(e))
    return 0


def cmd_survey_compare(args: argparse.Namespace) -> int:
    """Each fact file of a survey folder (`amsm survey DIR`) read again on the lab's host
    of the same name, else of the same role, in a transaction rolled back (lab/survey.py):
    prints the JSON list of those the lab answers otherwise, {file, lab}. The CLI's
    `amsm survey verify DIR --lab LABDIR` runs this, the lab's own program, rather than
    importing the lab."""
    import asyncio
    import json

    from activities.surveys.replay import read_survey_inventory
    from lab.survey import LabModel

    folder, d = Path(args.survey), Path(args.dir)
    if not (d / "lab.db").is_file():
        return _fail("survey-compare", f"{d}: not a lab (no lab.db; amsm lab init makes one)")
    try:
        site = read_survey_inventory(folder)
    except (OSError, ValueError) as e:
        return _fail("survey-compare", f"{folder / 'inventory.json'}: cannot read it ({e})")
    model = LabModel(d)

    async def compare() -> list[dict[str, str]]:
        out = []
        for path in sorted((folder / "facts").glob("*/*.json")):
            try:
                differs = await model.disagreement(json.loads(path.read_text("utf-8")), site)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a fact file: `amsm survey verify` names it
            if differs is not None:
                out.append({"file": str(path.relative_to(folder)), "lab": differs})
        return out

    print(json.dumps(asyncio.run(compare())))
    return 0


def cmd_hands(args: argparse.Namespace) -> int:
    """Do a manual step at a lab device: start or stop InSync or AllSync."""
    from lab.hands import set_allsync, set_insync

    directory = getattr(args, "dir", DEFAULT_DIR)
    app = str(getattr(args, "app", "")).lower()
    action = str(getattr(args, "action", "")).lower()
    if action not in ("start", "stop"):
        return _fail("hands", f"unknown action {action!r}; use start or stop")
    running = action == "start"
    try:
        if app == "insync":
            sentence = set_insync(directory, running)
        elif app == "allsync":
            side = getattr(args, "side", None)
            if not side:
                return _fail("hands", "say which side's AllSync: --side X or --side Y")
            sentence = set_allsync(directory, side, running)
        else:
            return _fail("hands", f"unknown application {app!r}; use insync or allsync")
    except LabError as e:
        return _fail("hands", str(e))
    print(sentence)
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    """Set or clear a fault on a lab host or DSM (the running lab picks it up)."""
    from lab.faults import set_fault, set_side_fault

    side = getattr(args, "side", None)
    try:
        if side:
            if args.kind is not None or args.seconds is not None:
                return _fail("fault", "with --side, say only down or up: --side X down")
            print(set_side_fault(args.dir, side, args.target))
        elif args.kind is None:
            return _fail(
                "fault",
                f"say which fault for {args.target}: unreachable, no-reboot, "
                "slow-reboot S, flapping [S], clock-step S, shell-quota N, powershell V, "
                "uwf, fbwf, ewf, slow-mount S, slow-providers S, unrelated-disk, ingesting, unkillable, kill-denied, exiting, respawns, "
                "replication-fails, "
                "job-missing, restoring or clear",
            )
        else:
            print(set_fault(args.dir, args.target, args.kind, args.seconds))
    except LabError as e:
        return _fail("fault", str(e))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Record a clip on one side (its files on V:, an asset in that side's DSM)."""
    from lab.media import ingest

    try:
        print(ingest(args.dir, args.side, args.clip, args.bin))
    except LabError as e:
        return _fail("ingest", str(e))
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    """Make a junction or directory symbolic link on one side's V: (a reparse point)."""
    from lab.media import link

    try:
        print(link(args.dir, args.side, args.path, args.target, args.kind))
    except LabError as e:
        return _fail("link", str(e))
    return 0


FAULTS = [
    "unreachable",
    "no-reboot",
    "slow-reboot",
    "flapping",
    "clock-step",
    "shell-quota",
    "powershell",
    "uwf",
    "fbwf",
    "ewf",
    "slow-mount",
    "slow-providers",
    "unrelated-disk",
    "replication-fails",
    "job-missing",
    "restoring",
    "clear",
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amsm lab", description="the simulated pair")
    lab = p.add_subparsers(dest="lab_command", metavar="ACTION")
    c = lab.add_parser("init", help="create a lab: inventory, keys, devices (mirrored, X main)")
    c.add_argument("--dir", required=True)
    c.add_argument("--editors", type=int, default=2)
    c.add_argument("--ingest", type=int, default=1)
    c.add_argument("--smartbins", type=int, default=1, help="SmartBins servers per side")
    c.add_argument("--reboot-seconds", type=float, default=5.0)
    c.add_argument("--force", action="store_true", help="overwrite an existing lab")
    c.add_argument(
        "--redundant",
        action="store_true",
        help="redundant K2 SANs: media networks A and B per side, two TOEs on each, "
        "each client assigned its own TOE per side",
    )
    c.set_defaults(run=cmd_init)
    c = lab.add_parser(
        "console-accounts",
        help="(re)write the web console's accounts operator and viewer, new passwords",
    )
    c.add_argument("--dir", required=True)
    c.set_defaults(run=cmd_console_accounts)
    c = lab.add_parser("serve", help="serve the lab's devices (SSH per host, DSM files)")
    c.add_argument("--dir", required=True)
    c.set_defaults(run=cmd_serve)
    c = lab.add_parser(
        "fault",
        help="set or clear a fault on a lab host or DSM, or take a whole side down",
        usage="amsm lab fault HOST|DSM|PORTAL KIND [SECONDS] --dir DIR\n"
        "       amsm lab fault --side X|Y down|up --dir DIR",
    )
    c.add_argument(
        "target",
        metavar="HOST|DSM|PORTAL",
        help="the host, DSM or iSCSI portal address (unreachable, clear); with --side, "
        "the side fault: down or up",
    )
    c.add_argument("kind", nargs="?", choices=FAULTS)
    c.add_argument(
        "--side",
        type=str.upper,
        choices=["X", "Y"],
        help="the whole side: its DSM, SmartBins, NAS heads and bridge (down|up)",
    )
    c.add_argument(
        "seconds",
        type=float,
        nargs="?",
        help="slow-reboot: how long a restart takes; flapping: how long each boot lasts; "
        "clock-step: how far the host's clock jumps (negative: back); shell-quota: the "
        "host's MaxShellsPerUser; powershell: its PowerShell version (4.0); slow-mount: how "
        "long after each boot a client's iSCSI logins and V: come; slow-providers: how long "
        "after each boot WMI and the iSCSI cmdlets fail",
    )
    c.add_argument("--dir", required=True)
    c.set_defaults(run=cmd_fault)
    c = lab.add_parser("ingest", help="record a clip on one side (files on V:, an asset)")
    c.add_argument("--side", required=True, type=str.upper, choices=["X", "Y"])
    c.add_argument("--clip", required=True)
    c.add_argument("--bin", default="News", help="the SmartBin (default %(default)s)")
    c.add_argument("--dir", required=True)
    c.set_defaults(run=cmd_ingest)
    c = lab.add_parser("link", help="make a junction (or symbolic link) on a side's V:")
    c.add_argument("--side", required=True, type=str.upper, choices=["X", "Y"])
    c.add_argument("path", help="where the link is, e.g. V:\\VibrantAVIFiles\\News\\a.vmf\\j")
    c.add_argument("target", help="the folder it points at, on the same V:")
    c.add_argument("--kind", choices=["Junction", "SymbolicLink"], default="Junction")
    c.add_argument("--dir", required=True)
    c.set_defaults(run=cmd_link)
    c = lab.add_parser(
        "survey-compare",
        help="read a survey folder's facts again on the lab's hosts (rolled back); print "
        "the JSON list of those the lab answers otherwise",
    )
    c.add_argument("survey", metavar="SURVEYDIR", help="a folder `amsm survey DIR` wrote")
    c.add_argument("--dir", required=True)
    c.set_defaults(run=cmd_survey_compare)
    for tool in ("insync", "allsync"):
        c = lab.add_parser(tool, help=f"the operator's hands: start or stop {tool} in the lab")
        c.add_argument("action", choices=["start", "stop"])
        c.add_argument("--dir", required=True)
        if tool == "allsync":
            c.add_argument("--side", required=True, type=str.upper, choices=["X", "Y"])
        c.set_defaults(run=cmd_hands, app=tool)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.lab_command:
        print("amsm: amsm lab: choose init, serve, insync or allsync", file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
