"""What the console's pages show, derived from the pair's status and checklist as the
workflows report them (no device read, no prose parsed back): the status strips, the
start buttons the pair's mode allows, the pending operations per host, the rows of a
run. The templates (console/templates/) only lay these out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inventory.models import SIDES, Side, other
from inventory.rules import OVERRIDABLE
from inventory.status import PairStatus
from workflows.models import Checklist

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


def starts(st: PairStatus | None, busy: bool) -> list[Start]:
    """One start per workflow the pair's mode allows (none while a run holds the pair).
    The workflow reads the devices again and refuses what does not hold."""
    if st is None or busy:
        return []
    mode, main, _ = st.derived
    if mode == "mirrored" and main is not None:
        b = other(main)
        return [
            Start(f"Start switch to {b}", "switch", b, False),
            Start(f"Start split with {main} main", "split", main, False),
            Start(f"Start split-switch to {b}", "split-switch", b, True),
        ]
    if mode == "split":
        return [Start(f"Start restore with {s} main", "restore", s, False) for s in SIDES]
    # Inconsistent: a side that does not answer may be lost; the unplanned switch to the
    # side that answers needs a reason.
    return [
        Start(f"Start switch to {s}", "switch", s, True, unplanned=True)
        for s in SIDES
        if st.dsm[s].reachable and not st.dsm[other(s)].reachable
    ]


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
