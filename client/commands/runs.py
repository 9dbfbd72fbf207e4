"""`amsm runs`: the pair's runs, newest first, from Temporal's visibility, each with its
time to serve (from its history, as its report measures it) against the inventory's
`objectives.time_to_serve`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from temporalio.client import Client

from api.runs import list_runs, with_time_to_serve
from client.runs import codec_of
from client.session import EXIT_OK
from inventory.models import Inventory
from records.report import minutes, served_briefly
from workflows.kinds import KINDS, OTHER_KINDS


def add(sub: Any) -> None:
    s = sub.add_parser("runs", help="list the pair's runs (newest first)")
    s.add_argument("--kind", choices=[*KINDS, *OTHER_KINDS])
    s.add_argument(
        "--state", choices=["running", "awaiting-operator", "completed", "aborted", "failed"]
    )
    s.add_argument("--operator", help="who started them")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run, reads=True)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """Runs of the pair from Temporal's visibility (search attributes), newest first."""
    rows = await list_runs(temporal, inv, args.kind, args.state, args.operator, args.limit)
    rows = await with_time_to_serve(temporal, inv, rows, codec_of(args))
    objective = inv.objectives.time_to_serve_seconds
    if args.json:
        print(json.dumps({"pair": inv.pair, "runs": rows, "objective_s": objective}))
        return EXIT_OK
    if not rows:
        print(f"no runs of pair {inv.pair} match")
        return EXIT_OK
    if objective is not None:
        print(f"objective: time to serve at most {minutes(objective)}")
    print(
        f"{'run':36}  {'kind':12} {'state':17} {'initiator':12} {'start':25} {'duration':9}"
        " time to serve"
    )

    def served(r: dict[str, Any]) -> str:
        return served_briefly(r["time_to_serve_s"], r["objective_s"], r["objective_met"])

    for r in rows:
        dur = f"{r['duration_s']:.0f} s" if r["duration_s"] is not None else "-"
        print(
            f"{r['run_id']:36}  {r['kind']:12} {r['state']:17} {r['initiator'] or '-':12} "
            f"{r['start'] or '-':25} {dur:9} {served(r)}".rstrip()
        )
    return EXIT_OK
