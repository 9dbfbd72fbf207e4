"""`amsm inventory check FILE`: validate an inventory and explain every problem (no server
needed)."""

from __future__ import annotations

import argparse
from typing import Any

from client.session import EXIT_FAIL, EXIT_OK
from inventory.load import InventoryError, load_inventory


def add(sub: Any) -> None:
    s = sub.add_parser("inventory", help="inventory tools")
    inv = s.add_subparsers(dest="inv_command", metavar="ACTION")
    c = inv.add_parser("check", help="validate an inventory file and explain every problem")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(local=local)


async def local(args: argparse.Namespace) -> int:
    return check(args.file)


def check(path: str) -> int:
    try:
        inv = load_inventory(path)
    except InventoryError as e:
        print(e.explain())
        return EXIT_FAIL
    n_hosts = len({h.host.lower() for _, h in inv.all_hosts()})
    for w in inv.warnings():
        print(f"warning: {w}")
    print(
        f"{path}: ok: pair {inv.pair}, {n_hosts} hosts, {len(inv.clients)} switchable clients, "
        f"{len(inv.browse)} Browse components"
    )
    return EXIT_OK
