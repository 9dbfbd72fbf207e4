"""`amsm runs`: the pair's runs, newest first, from Temporal's visibility."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from client.runs import STATE_OF
from client.session import EXIT_OK, EXIT_USAGE, CliError
from inventory.models import Inventory
from workflows import search
from workflows.kinds import KINDS, OTHER_KINDS

SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.@ -]{1,64}$")


async def list_runs(
    client: Client,
    inv: Inventory,
    kind: str | None = None,
    state: str | None = None,
    operator: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The rows of `amsm runs --json` (the web console lists the same)."""
    query = [f"{search.PAIR.name} = '{inv.pair}'"]
    if kind:
        query.append(f"{search.KIND.name} = '{kind}'")
    if state:
        query.append(f"{search.STATE.name} = '{state}'")
    if operator:
        if not SAFE_VALUE.fullmatch(operator):
            raise CliError(
                f"--operator {operator!r}: letters, digits, _ . @ - and space", EXIT_USAGE
            )
        query.append(f"{search.INITIATOR.name} = '{operator}'")
    rows = []
    async for w in client.list_workflows(" AND ".join(query), limit=limit):
        if w.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            continue  # one run in the rows: the newest of a chain that continued as new
        sa = w.typed_search_attributes
        row_state = sa.get(search.STATE) or "running"
        if w.status in STATE_OF and row_state in ("running", "awaiting-operator"):
            row_state = STATE_OF[w.status]
        end = w.close_time
        rows.append(
            {
                "run_id": w.run_id,
                "workflow_id": w.id,
                "kind": sa.get(search.KIND) or w.workflow_type,
                "state": row_state,
                "initiator": sa.get(search.INITIATOR),
                "start": w.start_time.isoformat(timespec="seconds") if w.start_time else None,
                "end": end.isoformat(timespec="seconds") if end else None,
                "duration_s": round((end - w.start_time).total_seconds(), 1)
                if end and w.start_time
                else None,
            }
        )
    return rows


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


async def run(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """Runs of the pair from Temporal's visibility (search attributes), newest first."""
    rows = await list_runs(client, inv, args.kind, args.state, args.operator, args.limit)
    if args.json:
        print(json.dumps({"pair": inv.pair, "runs": rows}))
        return EXIT_OK
    if not rows:
        print(f"no runs of pair {inv.pair} match")
        return EXIT_OK
    print(f"{'run':36}  {'kind':12} {'state':17} {'initiator':12} {'start':25} duration")
    for r in rows:
        dur = f"{r['duration_s']:.0f} s" if r["duration_s"] is not None else "-"
        print(
            f"{r['run_id']:36}  {r['kind']:12} {r['state']:17} {r['initiator'] or '-':12} "
            f"{r['start'] or '-':25} {dur}"
        )
    return EXIT_OK
