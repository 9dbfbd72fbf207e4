"""Break-glass overrides of a console control: what the operator asked to force, and
the record of what was forced.

The rules and whether each may be overridden are in inventory/rules.py. The control
workflow checks every override again (a start from the Web UI or the temporal CLI
does not pass through `amsm`), and records each one in its result: the rule, the
operator, the reason, and whether it was used (the rule refused and was forced, with
the refusal it overrode) or not needed.
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.models import ForcedRule
from inventory.rules import (
    RULE_CONTROL_ALONGSIDE_RUN,
    RULE_NO_SWITCH_IN_BLACKOUT,
    override_refusal,
)
from workflows.limits import Bounded, Name, Text


class Override(Bounded):
    """One rule the operator forces for this control, and why."""

    rule: Name
    reason: Text


class OverrideRecord(BaseModel):
    rule: str
    operator: str
    reason: str
    used: bool = False
    # What the rule said when it refused and was forced ("mdi-k2: Browse ... running").
    overrode: list[str] = []
    outcome: str = ""  # the sentence: "used: forced ..." or "not needed: ..."

    def sentence(self) -> str:
        return f"override of {self.rule} by {self.operator} ({self.reason}): {self.outcome}"


def override_problem(overrides: list[Override]) -> str | None:
    """Why these overrides cannot be accepted (absolute or unknown rule, no reason)."""
    for o in overrides:
        problem = override_refusal(o.rule)
        if problem:
            return problem
        if not o.reason.strip():
            return f"the override of {o.rule} needs a reason (--reason TEXT)"
    return None


# The rules a start (amsm start --override) may force: those the run itself checks as
# it starts. The drivers' rules are forced on a console control, where they act.
START_OVERRIDABLE = (RULE_NO_SWITCH_IN_BLACKOUT,)


def start_override_problem(overrides: list[Override]) -> str | None:
    """Why a start cannot take these overrides (as override_problem, and only the rules a
    start checks)."""
    for o in overrides:
        if o.rule not in START_OVERRIDABLE and override_refusal(o.rule) is None:
            return (
                f"a start overrides only {', '.join(START_OVERRIDABLE)}; rule {o.rule!r} is "
                "overridden on the console control that acts (see `amsm rules`)"
            )
    return override_problem(overrides)


def records(
    overrides: list[Override], operator: str, forced: list[ForcedRule], alongside: str | None
) -> list[OverrideRecord]:
    """One record per override; `alongside`: the refusal control-alongside-run overrode."""
    out = []
    for o in overrides:
        hits = [f"{f.host}: {f.refusal}" for f in forced if f.rule == o.rule]
        if alongside is not None and o.rule == RULE_CONTROL_ALONGSIDE_RUN:
            hits.append(alongside)
        outcome = (
            "used: forced " + "; ".join(hits) if hits else "not needed: the rule did not refuse"
        )
        out.append(
            OverrideRecord(
                rule=o.rule,
                operator=operator,
                reason=o.reason,
                used=bool(hits),
                overrode=hits,
                outcome=outcome,
            )
        )
    return out
