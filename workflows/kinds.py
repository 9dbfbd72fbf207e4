"""The workflows an operator starts on a pair, one row each: the name Temporal knows it by,
its input, the input field that names the side, its step table and the words it is
described in. The workflows title their checklists from it, the CLI builds `amsm start`
from it and the reports read a run's steps and direction from it; a ninth workflow is a
new row here and its module (and its registration in workflows/registry.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from inventory.models import Side, other
from workflows.models import RestoreInput, SplitInput, SplitSwitchInput, StepDef, SwitchInput
from workflows.steps import restore_steps, split_steps, split_switch_steps, switch_steps


@dataclass(frozen=True)
class Kind:
    name: str  # the workflow type, the `amsm start` word and the AmsmKind search attribute
    input: type[BaseModel]
    # "to": the side that becomes main (tables take old main, new main); "main": the side
    # that is main throughout (tables take main, other).
    side: Literal["to", "main"]
    table: Callable[[Side, Side], list[StepDef]]
    help: str  # `amsm start KIND --help`
    side_help: str  # the help of --to / --main
    # The checklist's title: f(main before or main, the other side, the input).
    title: Callable[[Side, Side, Any], str]
    # The run in the manual's words, as reports and `amsm runs` show it: f(a, b).
    direction: Callable[[Side, Side], str]

    def sides(self, side: Side) -> tuple[Side, Side]:
        """(a, b) for the input's side: the old and new main of a switch, the main and the
        other side of a split or restore."""
        return (other(side), side) if self.side == "to" else (side, other(side))

    def steps(self, side: Side) -> list[StepDef]:
        return self.table(*self.sides(side))


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            name="switch",
            input=SwitchInput,
            side="to",
            table=switch_steps,
            help="switch the pair: the other side becomes main",
            side_help="new main side",
            title=lambda a, b, inp: f"Switch {a} -> {b} ({inp.pair})",
            direction=lambda a, b: f"{a} -> {b}",
        ),
        Kind(
            name="split",
            input=SplitInput,
            side="main",
            table=split_steps,
            help="split the pair: --main stays main, the other runs alone",
            side_help="the side that stays main",
            title=lambda a, b, inp: f"Split: {a} stays main, {b} independent ({inp.pair})",
            direction=lambda a, b: f"{a} stays main, {b} independent",
        ),
        Kind(
            name="split-switch",
            input=SplitSwitchInput,
            side="to",
            table=split_switch_steps,
            help="switch in stages, pilot clients first",
            side_help="new main side",
            title=lambda a, b, inp: (
                f"Split and switch {a} -> {b}, pilots {', '.join(inp.pilots)} ({inp.pair})"
            ),
            direction=lambda a, b: f"{a} -> {b}",
        ),
        Kind(
            name="restore",
            input=RestoreInput,
            side="main",
            table=restore_steps,
            help="restore mirroring after a split, --main as main",
            side_help="the side whose material wins",
            title=lambda a, b, inp: f"Restore mirroring with {a} main ({inp.pair})",
            direction=lambda a, b: f"{a} main (rejoin {b})",
        ),
    )
}
# What else runs on a pair under its own kind (`amsm runs --kind`).
OTHER_KINDS = ("control", "fence")
