"""`amsm rules`: every interlock the service keeps, what it protects, where it is enforced
and whether a console control may override it (no server needed)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from client.session import EXIT_OK
from inventory.rules import RULES


def add(sub: Any) -> None:
    s = sub.add_parser(
        "rules", help="every interlock: what it protects, whether it can be overridden"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(local=local)


async def local(args: argparse.Namespace) -> int:
    """Every rule, what it protects, whether it can be overridden, where it is enforced."""
    if args.json:
        print(json.dumps({"rules": [r.as_dict() for r in RULES]}))
        return EXIT_OK
    width = max(len(r.name) for r in RULES)
    for r in RULES:
        verdict = "overridable" if r.overridable else "absolute"
        print(f"{r.name:<{width}}  {verdict}")
        print(f"{'':<{width}}  protects: {r.protects}")
        print(f"{'':<{width}}  enforced: {r.enforced}")
    print(
        "\nForce an overridable rule on a console control with "
        '--override RULE --reason "..." (recorded with your name in the history and report).'
    )
    return EXIT_OK
