"""`amsm start KIND ... --dry-run`: the short `pair-dry-run` workflow (its own id, beside
any run, no lock), then the checklist as `amsm show` draws it, marked as a dry run, with
what each step would do and what would refuse it. Exit 0 when nothing would be
refused, 1 when something would."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from client.runs import cause
from client.session import EXIT_FAIL, EXIT_OK, CliError, default_operator, emit
from inventory.models import Inventory
from workflows.dry_run import READS, PairDryRunWorkflow
from workflows.models import DryRunInput
from workflows.preview import DryRunResult
from workflows.view import render_text


def dry_run_workflow_id(inv: Inventory) -> str:
    """Its own id: never the pair's one-workflow id, so it runs beside a switch."""
    return f"{inv.workflow_id}-dry-run-{uuid.uuid4().hex[:12]}"


def time_limit(inv: Inventory) -> float:
    t = inv.timing
    return (READS + 1) * t.operation_timeout + t.connect_timeout + 180


async def execute_dry_run(
    client: Client, inv: Inventory, kind: str, inp: BaseModel
) -> DryRunResult:
    """The pair-dry-run workflow of KIND with the start's input (its own id, beside any
    run), waited for; the web console's dry runs go here too."""
    try:
        return await client.execute_workflow(
            PairDryRunWorkflow.run,
            DryRunInput(pair=inv.pair, kind=kind, input=inp.model_dump(mode="json")),
            id=dry_run_workflow_id(inv),
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=time_limit(inv)),
        )
    except Exception as e:
        raise CliError(
            f"the dry run of {kind} on pair {inv.pair} did not finish: {cause(e)}; "
            "is the pair's worker running?"
        ) from None


async def run(client: Client, inv: Inventory, args: argparse.Namespace, inp: BaseModel) -> int:
    who = default_operator()
    if not inv.may_read(who):
        # It reads every device of the pair: for those who may read it (`amsm status`).
        raise CliError(
            f"{who} is neither an operator nor a viewer of pair {inv.pair} "
            "(inventory `operators:` / `viewers:`; set AMSM_OPERATOR to act as another name)"
        )
    result = await execute_dry_run(client, inv, args.kind, inp)
    emit(args, dry_run_json(result), render_dry_run(result))
    return EXIT_FAIL if result.would_refuse else EXIT_OK


def dry_run_json(r: DryRunResult) -> dict[str, Any]:
    """The object of `amsm show --json`, with `dry_run`, the run's `refused` and, per
    step, `would`, `refused` (rule and why, or null), `hosts`, `changes` (the drivers'
    plans: each change's `host` and the sentence its operation answers) and (a restore's
    orphans) `items`."""
    data = r.checklist.model_dump(mode="json")
    data["dry_run"] = True
    data["refused"] = r.refused
    by_id = {s.id: s for s in r.steps}
    for step in data["steps"]:
        d = by_id[step["id"]]
        step["would"] = d.would
        step["refused"] = d.refused.model_dump() if d.refused else None
        step["hosts"] = d.hosts
        step["changes"] = [c.model_dump() for c in d.changes]
        if d.items:
            step["items"] = d.items
    return data


def render_dry_run(r: DryRunResult) -> str:
    under: dict[str, list[str]] = {}
    passed = {s.id for s in r.checklist.steps if s.status == "skipped"}
    for s in r.steps:
        # A step passed over says why in its note already.
        lines = [] if s.id in passed else [s.would]
        if s.refused is not None and s.refused.rule != "precondition":
            lines.append(f"REFUSED by {s.refused.rule}: {s.refused.why}")
        under[s.id] = lines
    text = render_text(r.checklist, under, state="dry run, nothing changed")
    if r.refused:
        tail = f"DRY RUN: nothing was changed. The run would be refused: {r.refused}"
    else:
        n = sum(1 for s in r.steps if s.refused)
        tail = "DRY RUN: nothing was changed. " + (
            f"{n} step(s) would be refused." if n else "No step would be refused."
        )
    return f"{text}\n\n{tail}"
