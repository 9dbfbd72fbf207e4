"""Interlocks and the operator's break-glass overrides of them.

A driver states each interlock through `Overrides.refuse`: it raises InterlockRefused,
unless the operator overrode that rule AND the rule may be overridden
(inventory/rules.py). An absolute rule refuses even when the caller names it: the
control workflow refuses such an override first, and this is the second check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from activities.drivers.errors import InterlockRefused
from inventory.rules import is_overridable


@dataclass(frozen=True)
class Forced:
    """An interlock that refused and was forced: the rule, the host, what it said."""

    rule: str
    host: str
    refusal: str


@dataclass
class Overrides:
    """The rules forced for one operation, and what was forced (in order)."""

    rules: frozenset[str] = frozenset()
    forced: list[Forced] = field(default_factory=list)

    @classmethod
    def of(cls, rules: Iterable[str] | None) -> Overrides:
        return cls(frozenset(rules or ()))

    def refuse(self, host: str, rule: str, refusal: str, forced: str) -> str:
        """Refuse by `rule` (InterlockRefused with `refusal`), unless it is overridden.

        Overridden: records it and returns the sentence for the operation's message,
        e.g. "rule 'browse-switch-only-stopped' overridden: Browse mdi-k2 was running".
        """
        if rule in self.rules and is_overridable(rule):
            self.forced.append(Forced(rule=rule, host=host, refusal=refusal))
            return f"rule '{rule}' overridden: {forced}"
        raise InterlockRefused(host, rule, refusal)


def with_forced(message: str, forced: str | None) -> str:
    return f"{message}; {forced}" if forced else message
