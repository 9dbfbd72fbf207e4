"""`amsm start KIND ... --dry-run`: the short `pair-dry-run` workflow (its own id, beside
any run, no lock), then the checklist as `amsm show` draws it, marked as a dry run, with
what each step would do and what would refuse it. Exit 0 when nothing would be
refused, 1 when something would."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from api.start import dry_run
from client.session import EXIT_FAIL, EXIT_OK, default_operator, emit
from inventory.models import Inventory
from workflows.preview import DryRunResult
from workflows.view import render_text


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace, inp: BaseModel) -> int:
    result = await dry_run(temporal, inv, args.kind, inp, default_operator())
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
    data["next_blackout"] = r.next_blackout
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
    if r.next_blackout:
        text += f"\n\n{r.next_blackout}"
    if r.refused:
        tail = f"DRY RUN: nothing was changed. The run would be refused: {r.refused}"
    else:
        n = sum(1 for s in r.steps if s.refused)
        tail = "DRY RUN: nothing was changed. " + (
            f"{n} step(s) would be refused." if n else "No step would be refused."
        )
    return f"{text}\n\n{tail}"
