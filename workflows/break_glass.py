"""Two people for a break-glass override (docs/operators/two-person.md): the inventory's
`approvals: {break-glass: {required: N}}`. A run started with an override that forced a
rule (workflows/overrides.py, the blackout's) waits, before its first step, at the gate
`break-glass` for N distinct proven operators; each approval is bound to the overrides
it names (the gate's items). Reached only where the inventory has it (patch
`two-person`, workflows/checklist.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from workflows.checklist import StepRunner

BREAK_GLASS = "break-glass"


def break_glass_first(
    runner: StepRunner, body: Callable[[], Awaitable[str]]
) -> Callable[[], Awaitable[str]]:
    """`body`, behind the break-glass gate when an override of the start forced a rule
    and the inventory asks for approvals of it; else `body` as it is (and old runs,
    which never reach the patch)."""
    used = [o for o in runner.checklist.overrides if o.used]
    if not used or runner.approval_rule(BREAK_GLASS) is None:
        return body
    rule = runner.approval_rules[BREAK_GLASS]
    runner.add_gate_first(
        BREAK_GLASS,
        f"Break-glass: {rule.required} operators approve the override of "
        + ", ".join(o.rule for o in used),
        [f"{o.rule}: {o.reason} (by {o.operator})" for o in used],
    )

    async def first() -> str:
        await runner.run(BREAK_GLASS)
        return await body()

    return first
