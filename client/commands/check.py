"""`amsm check`: the read-only site check. Starts the short `pair-check` workflow (its own
id, beside any run), shows the hosts read so far while it runs (its `progress` query),
then the findings grouped by the steps they would stop. Exit 0 when ready, 1 when not."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowHandle

from api.check import start_check, with_frontend, with_retention
from client.runs import result_with_progress
from client.session import EXIT_FAIL, EXIT_OK, default_operator, emit
from inventory.models import Inventory
from workflows.check import CheckFinding, CheckResult, PairCheckWorkflow
from workflows.checks import StepRef


def add(sub: Any) -> None:
    s = sub.add_parser(
        "check",
        help="read every host, change nothing: would the workflows go through?",
        description="Read every host of the pair (facts only) and name what would stop "
        "which step of which workflow. Exit 0 when nothing would, 1 otherwise.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(handler=run, reads=True)


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    handle = await start_check(temporal, inv, default_operator())
    result = await with_frontend(temporal, inv, await follow(handle, inv, quiet=args.json))
    result = await with_retention(temporal, inv, result)
    data = result.model_dump(mode="json")
    data.pop("pair", None)
    emit(args, data, render_check(result))
    return EXIT_OK if result.ready else EXIT_FAIL


async def follow(
    handle: WorkflowHandle[Any, CheckResult], inv: Inventory, quiet: bool
) -> CheckResult:
    """The result; meanwhile `hosts read / all` on stderr (rewritten in place on a
    terminal; elsewhere only the last count, once)."""
    result: CheckResult = await result_with_progress(
        handle,
        lambda: progress_line(handle, inv),
        lambda r: f"checking pair {inv.pair}: {r.hosts}/{r.hosts} hosts read",
        f"the check of pair {inv.pair}",
        quiet,
    )
    return result


async def progress_line(handle: WorkflowHandle[Any, Any], inv: Inventory) -> str | None:
    try:
        p = await handle.query(PairCheckWorkflow.progress)
    except Exception:
        return None  # not started yet, or just ended: the next poll says
    if not p.total:
        return f"checking pair {inv.pair}: listing its hosts"
    return f"checking pair {inv.pair}: {p.done}/{p.total} hosts read"


# -- the report ---------------------------------------------------------------------------
def steps_text(steps: list[StepRef]) -> str:
    if not steps:
        return "stops no step"
    by_kind: dict[str, list[str]] = {}
    for s in steps:
        by_kind.setdefault(s.kind, []).append(s.step)
    return "would stop " + "; ".join(f"{k}: {', '.join(ids)}" for k, ids in by_kind.items())


def finding_lines(f: CheckFinding) -> list[str]:
    return [
        f"    {f.host}  {f.check}",
        f"      expected: {f.expected}",
        f"      found:    {f.found}",
        f"      fix:      {f.fix}",
    ]


def render_check(r: CheckResult) -> str:
    def count(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    state = "ready" if r.ready else "not ready"
    head = (
        f"pair {r.pair}: {state}: {count(len(r.problems), 'problem')}, "
        f"{count(len(r.warnings), 'warning')} ({count(r.hosts, 'host')} read)"
    )
    lines = [head]
    if r.next_blackout:
        lines.append(r.next_blackout)
    if r.problems:
        lines += ["", "Problems"]
        groups: dict[str, list[CheckFinding]] = {}
        for f in r.problems:
            groups.setdefault(steps_text(f.steps), []).append(f)
        for header, found in groups.items():
            lines.append(f"  {header}")
            for f in found:
                lines += finding_lines(f)
    if r.warnings:
        lines += ["", "Warnings"]
        for f in r.warnings:
            lines += finding_lines(f)
    return "\n".join(lines)
