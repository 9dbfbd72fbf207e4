"""`amsm lab ...` commands, for the main CLI to wire in.

`add_lab_commands(subparsers)` adds `lab init`, `lab serve` and `lab hands` to an
argparse sub-parser set; each command function takes the parsed Namespace, prints
a short sentence and returns the process exit status (0 ok, 1 refused). Expected
problems (an existing lab, a missing directory, a bad side) print one line on
stderr, never a traceback.

Namespace fields:
- init: dir, editors, ingest, smartbins, reboot_seconds, force
- serve: dir
- hands: dir, app ('insync' | 'allsync'), action ('start' | 'stop'), side (AllSync only)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lab import LabError

DEFAULT_DIR = "var/lab"


def _fail(command: str, message: str) -> int:
    print(f"amsm lab {command}: {message}", file=sys.stderr)
    return 1


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


def add_lab_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `lab` with `init`, `serve` and `hands` to the main CLI's sub-parsers.

    Each sub-command sets `func` to the command function; the caller runs
    `sys.exit(args.func(args))`.
    """
    lab = subparsers.add_parser("lab", help="the simulated pair (lab)")
    sub = lab.add_subparsers(dest="lab_command", required=True)

    p = sub.add_parser("init", help="create a lab directory (mirrored, X main)")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the lab directory (default {DEFAULT_DIR})")
    p.add_argument("--editors", type=int, default=2, help="Aurora Edit clients (ED-01..)")
    p.add_argument("--ingest", type=int, default=1, help="Aurora Ingest clients (IN-01..)")
    p.add_argument("--smartbins", type=int, default=1, help="SmartBins servers per side")
    p.add_argument("--reboot-seconds", type=float, default=5.0, help="how long a reboot takes")
    p.add_argument("--force", action="store_true", help="replace an existing lab")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="serve every lab host over SSH until Ctrl-C")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the lab directory (default {DEFAULT_DIR})")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("hands", help="do a manual step at a lab device")
    p.add_argument("app", choices=["insync", "allsync"])
    p.add_argument("action", choices=["start", "stop"])
    p.add_argument("--side", choices=["X", "Y", "x", "y"], help="AllSync's side")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the lab directory (default {DEFAULT_DIR})")
    p.set_defaults(func=cmd_hands)
    return lab
