"""What the console's pages show, derived from the pair's status and checklist as the
workflows report them (no device read, no prose parsed back): the status strips, the
workflows with their preconditions read from the status the console holds, the pending operations per host, the rows of a
run. The templates (console/templates/) only lay these out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.models import SIDES, Inventory, Side, other
from inventory.rules import OVERRIDABLE
from inventory.status import PairStatus
from workflows import preconditions
from workflows.kind import StartOption
from workflows.kinds import KINDS
from workflows.models import Checklist
from workflows.overrides import START_OVERRIDABLE

LIVE_STATES = ("running", "awaiting-operator")


@dataclass(frozen=True)
class Strip:
    side: Side
    lit: bool  # green: main (both when split); gray: backup
    word: str


@dataclass(frozen=True)
class Start:
    label: str  # "Start switch to Y", named like the CLI command
    kind: str
    side: Side
    form: bool  # needs more (pilots, an unplanned reason) before it starts
    unplanned: bool = False
    refused: str | None = None  # the precondition's sentence, when it does not hold now
    offered: bool = True  # a button; False: listed with why (the mode allows it not)

    @property
    def hosts(self) -> StartOption | None:
        """The start option that names hosts (a split-switch's pilots): the form offers
        the clients on the side being left."""
        return KINDS[self.kind].hosts_option

    @property
    def what(self) -> str:
        """The run as its refusal names it: 'switch to Y', 'split with X main', ..."""
        return self.label.removeprefix("Start ")


FORM_REASON = "(the reason the form asks for)"


def strips(st: PairStatus | None) -> list[Strip]:
    if st is None:
        return [Strip(s, False, "NOT READ YET") for s in SIDES]
    mode, _, _ = st.derived
    out = []
    for s in SIDES:
        d = st.dsm[s]
        if not d.reachable:
            out.append(Strip(s, False, "NOT ANSWERING"))
        elif d.mode == "main":
            out.append(Strip(s, True, "MAIN (split)" if mode == "split" else "MAIN"))
        elif d.mode == "backup":
            out.append(Strip(s, False, "BACKUP"))
        else:
            out.append(Strip(s, False, "UNKNOWN"))
    return out


def precondition(st: PairStatus, kind: str, side: Side, unplanned: bool = False) -> str | None:
    """The workflow's own precondition (workflows/preconditions.py) on `st`, for what is
    known without its form: a split-switch's pilots may be any client on the side being
    left, an unplanned switch's reason is taken as given."""
    pilots = [c.host for c in st.clients if c.side == other(side)]
    return KINDS[kind].refusal(st, side, unplanned, FORM_REASON, pilots)


def by_mode(st: PairStatus) -> set[tuple[str, Side]]:
    """The starts the pair's mode allows, (kind, side)."""
    mode, main, _ = st.derived
    return {(k.name, s) for k in KINDS.values() for s in SIDES if k.offered(mode, main, s)}


def unplanned_to(st: PairStatus) -> set[Side]:
    """Inconsistent with a side that does not answer (it may be lost): the unplanned
    switch to the side that answers, which needs a reason."""
    if st.derived[0] != "inconsistent":
        return set()
    return {s for s in SIDES if st.dsm[s].reachable and not st.dsm[other(s)].reachable}


def starts(st: PairStatus | None, busy: bool, fences: Sequence[str] = ()) -> list[Start]:
    """Every workflow of the pair, its precondition read now from `st` (the status the
    console holds, no device read) and `fences` (the sides a running fence waits on);
    none while a run holds the pair. Offered (a button)
    when the pair's mode allows it or its precondition holds, first; the rest listed
    with why. The workflow reads the devices again when pressed, and refuses."""
    if st is None or busy:
        return []
    mode_allows, lost = by_mode(st), unplanned_to(st)
    out = []
    for k in KINDS.values():
        kind = k.name
        for side in SIDES:
            label = f"Start {k.what(side, False)}"
            # A run may not make main a side a running fence still waits to put in backup.
            fenced = preconditions.under_fence(k.makes_main(side), fences)
            if k.unplanned and side in lost:
                why = fenced or precondition(st, kind, side, unplanned=True)
                out.append(Start(label, kind, side, True, True, why))
                continue
            why = fenced or precondition(st, kind, side)
            offered = (kind, side) in mode_allows or why is None
            if offered and why and not fenced and k.hosts_option:  # the pilots refuse
                why = f"{why} (no client on {other(side)} is known)"
            out.append(Start(label, kind, side, k.form, False, why, offered))
    return sorted(out, key=lambda s: not s.offered)


def pending_by_host(c: Checklist | None) -> dict[str, int]:
    """The Pending Operations count of each client: its switches not yet done in the
    current run."""
    out: dict[str, int] = {}
    if c is None or c.state not in LIVE_STATES:
        return out
    for s in c.steps:
        for cp in s.clients or []:
            if cp.status in ("pending", "switching"):
                out[cp.host] = out.get(cp.host, 0) + 1
    return out


def stage(cp: Any) -> str:
    """A client's stage in words."""
    return {
        "pending": "waiting to start",
        "switching": f"switching to {cp.to}" if cp.to else "switching",
        "done": f"on {cp.to}" if cp.to else "done",
        "failed": "failed",
        "skipped": "skipped",
    }.get(cp.status, cp.status)


def overridable() -> list[str]:
    return list(OVERRIDABLE)


def start_overridable(inv: Inventory) -> list[str]:
    """The rules a start may force, offered on the start form where they can refuse it:
    no-switch-in-blackout where the inventory has on-air windows (docs/operators/blackout.md)."""
    return list(START_OVERRIDABLE) if inv.blackout else []
