"""The shape of a workflow kind's row: everything the rest of the house asks of a kind.

Each kind's module (workflows/switch.py, split.py, split_switch.py, restore.py) fills one
`Kind` beside its step table and its workflow class, and workflows/kinds.py lists them.
The CLI's `amsm start` options, the console's start forms, the preconditions, the dry run
and the reports read the row; none of them compares a kind's name
(tests/unit/test_rooms.py pins it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from inventory.models import Side, other
from inventory.status import PairStatus
from workflows.models import StepDef


class StartError(ValueError):
    """A start's options do not make an input (the CLI's usage error, the console's
    refusal), with the sentence that says why."""


@dataclass(frozen=True)
class StartOption:
    """One option of `amsm start KIND` besides its side, and the same field of the
    console's start form."""

    name: str  # the CLI's --NAME and its value's key
    help: str
    type: Literal["flag", "text", "int", "hosts"]
    required: bool = False
    default: Any = None
    form: str = ""  # the console form's field, when it is not `name`
    # The console's refusal when a required option is missing (the CLI's parser says its own).
    missing: str = ""
    # For "hosts": the form's legend, and the candidates it offers (the side being left).
    legend: str = ""

    @property
    def field(self) -> str:
        return self.form or self.name


@dataclass(frozen=True)
class Asked:
    """What a precondition is asked besides the pair and the side: an unplanned switch's
    reason, a split-switch's pilots, whether a fenced pair may be restored."""

    unplanned: bool = False
    reason: str | None = None
    pilots: Sequence[str] = ()
    fenced_allowed: Callable[[], bool] = lambda: True


def no_serving(a: Side, b: Side) -> tuple[list[str], str] | None:
    return None


def serving_when_main_and_clients_moved(a: Side, b: Side) -> tuple[list[str], str]:
    """ "Time to serve" of a run that moves the clients to `b`: until b's DSM was main
    and the clients had moved (a switch, a split-switch)."""
    lb = b.lower()
    return [f"dsm-{lb}-main", "switch-clients"], (
        f"until {b}'s DSM was main (dsm-{lb}-main done) and the clients had moved "
        "(switch-clients done)"
    )


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
    # The run as its refusal names it: f(side, unplanned) -> 'switch to Y', 'split with X main'.
    what: Callable[[Side, bool], str]
    # Why a run with this side would be refused on the pair as read, or None
    # (workflows/preconditions.py holds the pure checks).
    precondition: Callable[[PairStatus, Side, Asked], str | None]
    # The input from the start's side and options, and a one-line description of the run.
    start: Callable[[str, Side, str, Mapping[str, Any]], tuple[BaseModel, str]]
    # Whether the pair's mode (mode, main side) offers this start with `side` (the console's
    # buttons; the others are listed with why).
    offered: Callable[[str, Side | None, Side], bool]
    options: tuple[StartOption, ...] = ()
    # The sides the run makes main (a running fence refuses a run that would make main a
    # side it waits to put in backup); None: the input's side.
    makes_main_sides: tuple[Side, ...] | None = None
    # "Time to serve" (records/report.py): f(a, b) -> (the steps that must be done, the
    # basis in words), or None when the run does not change the main side.
    serving: Callable[[Side, Side], tuple[list[str], str] | None] = no_serving
    # The gates whose skip is allowed, and the steps a skip passes over with them.
    gates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # It may switch without the other side when that side is lost (--unplanned).
    unplanned: bool = False
    # Its dry run reads the orphans on the other side (find-orphans).
    reads_orphans: bool = False
    # The console's start needs a form (more than its side) before it starts.
    form: bool = False

    def sides(self, side: Side) -> tuple[Side, Side]:
        """(a, b) for the input's side: the old and new main of a switch, the main and the
        other side of a split or restore."""
        return (other(side), side) if self.side == "to" else (side, other(side))

    def steps(self, side: Side) -> list[StepDef]:
        return self.table(*self.sides(side))

    def served_by(self, inp: object) -> tuple[list[str], str] | None:
        """The steps a run with input `inp` (as its history holds it) must finish to serve
        on its new main side, and the basis in words; None when it changes no main side
        or its input names no side (the report and the worker's meter both ask this)."""
        side = inp.get(self.side) if isinstance(inp, dict) else None
        if side not in ("X", "Y"):
            return None
        return self.serving(*self.sides(side))

    def makes_main(self, side: Side) -> tuple[Side, ...]:
        return self.makes_main_sides if self.makes_main_sides is not None else (side,)

    def refusal(
        self,
        status: PairStatus,
        side: Side,
        unplanned: bool = False,
        reason: str | None = None,
        pilots: Sequence[str] = (),
        fenced_allowed: Callable[[], bool] = lambda: True,
    ) -> str | None:
        """The precondition of this run with SIDE: why it would be refused, or None."""
        return self.precondition(status, side, Asked(unplanned, reason, pilots, fenced_allowed))

    @property
    def hosts_option(self) -> StartOption | None:
        """The option that names hosts (a split-switch's pilots), if any."""
        return next((o for o in self.options if o.type == "hosts"), None)
