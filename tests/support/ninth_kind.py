"""A ninth workflow kind, written the way a real one is: its row, its step table and its
workflow class in one module (a copy of `split` under the name `split-copy`). Nothing
else in the house names it: tests add it to the list of kinds with
`workflows.kinds.added(KIND, SplitCopyWorkflow)` (the line a real kind adds to
workflows/kinds.py) and check that the CLI, the console, the dry run, the worker and the
report show it (tests/unit/test_ninth_kind.py, tests/integration/test_ninth_kind.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from inventory.models import Side
    from workflows import split
    from workflows.kind import Kind
    from workflows.models import Checklist, SplitInput, StepDef


def split_copy_steps(a: Side, b: Side) -> list[StepDef]:
    """The split's table, as a ninth kind's own table would be written."""
    lb = b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main: both DSMs main, the pair is split"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        (
            "move-editors",
            "manual",
            "Name the clients to move to the other side (or none); the service moves them",
        ),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


def _start(pair: str, main: Side, who: str, opts: Mapping[str, Any]) -> tuple[SplitInput, str]:
    return SplitInput(pair=pair, main=main, initiator=who), f"split-copy, {main} stays main"


KIND: Kind = dataclasses.replace(
    split.KIND,
    name="split-copy",
    table=split_copy_steps,
    help="a copy of split (a ninth kind)",
    title=lambda a, b, inp: f"Split copy: {a} stays main, {b} independent ({inp.pair})",
    what=lambda side, unplanned: f"split-copy with {side} main",
    start=_start,
)


@workflow.defn(name="split-copy")
class SplitCopyWorkflow(split.SplitWorkflow):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__(raw)

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        return await self.run_kind(KIND, raw)
