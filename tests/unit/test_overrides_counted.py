"""Break-glass overrides are counted as sent (issue 28): twelve copies of one rule are
twelve overrides, refused over the limit of 8, never folded into one that passes."""

from __future__ import annotations

import pytest

from api.controls import control_overrides
from api.refusal import Refused
from inventory.rules import RULE_NO_SWITCH_IN_BLACKOUT
from workflows.limits import MAX_OVERRIDES


def test_twelve_copies_of_one_override_are_refused_over_the_limit() -> None:
    with pytest.raises(Refused) as e:
        control_overrides([RULE_NO_SWITCH_IN_BLACKOUT] * 12, "the clock is wrong")
    assert e.value.kind == "usage"
    assert e.value.message == (
        f"12 overrides sent; at most {MAX_OVERRIDES} (one per rule, see `amsm rules`)"
    )


def test_repeats_within_the_limit_are_one_override() -> None:
    forced = control_overrides([RULE_NO_SWITCH_IN_BLACKOUT] * MAX_OVERRIDES, "the clock")
    assert [o.rule for o in forced] == [RULE_NO_SWITCH_IN_BLACKOUT]
