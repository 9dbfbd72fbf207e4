"""`amsm rules`, and the checking of a control's `--override RULE --reason TEXT`.

Both run before anything connects to Temporal: a bad override is refused before a
control starts (the control workflow checks again, for starts that do not come
through `amsm`).
"""

from __future__ import annotations

import argparse
import json

from client.session import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError
from inventory.rules import BY_NAME, OVERRIDABLE, RULES
from workflows.overrides import Override


def control_overrides(args: argparse.Namespace) -> list[Override]:
    """The overrides of a control's command line; usage errors and absolute rules refused."""
    rules = list(dict.fromkeys(getattr(args, "overrides", None) or []))
    reason = (getattr(args, "reason", None) or "").strip()
    if not rules:
        if getattr(args, "reason", None) is not None:
            raise CliError(
                "--reason goes with --override RULE (the reason for forcing the rule)",
                EXIT_USAGE,
            )
        return []
    unknown = [r for r in rules if r not in BY_NAME]
    if unknown:
        raise CliError(
            f"--override {unknown[0]}: no such rule; rules that can be overridden: "
            f"{', '.join(OVERRIDABLE)} (see `amsm rules`)",
            EXIT_USAGE,
        )
    if not reason:
        raise CliError(
            f"--override {rules[0]} needs --reason TEXT (not blank): it is recorded with your "
            "name in the run's history and report",
            EXIT_USAGE,
        )
    for r in rules:
        rule = BY_NAME[r]
        if not rule.overridable:
            raise CliError(
                f"refused: rule '{r}' cannot be overridden; it protects absolutely: "
                f"{rule.protects}",
                EXIT_FAIL,
            )
    return [Override(rule=r, reason=reason) for r in rules]


def rules_command(args: argparse.Namespace) -> int:
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
