"""The preconditions of the pair's workflows, pure: given the pair as read, why a run would
be refused, or None. Each kind's row (workflows/kind.py `precondition`) names the ones it
holds to; the workflows refuse with them at their start (PairWorkflow.refuse), and the dry
run (workflows/preview.py) and the console ask the same of the devices as they are now, so a
refusal is decided and worded once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from inventory.models import Side, other
from inventory.status import PairStatus


def not_mirrored(status: PairStatus, main: Side) -> str | None:
    """The pair must be mirrored with `main` main."""
    mode, current, reason = status.derived
    if mode == "mirrored" and current == main:
        return None
    if mode == "mirrored":
        return f"{current} is main, not {main} (mirrored, {current} main)"
    return f"the pair must be mirrored with {main} main; found {mode}: {reason}"


def lost_side_advice(status: PairStatus, side: Side, to: Side) -> str | None:
    """Why `side` counts as lost for a planned switch (its DSM does not answer), with
    the command for an unplanned switch; None when it answers."""
    d = status.dsm[side]
    if d.reachable and d.mode is not None:
        return None
    return (
        f"{side} does not answer (DSM {d.host}: {d.error or 'not responding'}). A planned "
        f"switch needs both sides. If {side} is lost, switch without it: "
        f'amsm start switch --to {to} --unplanned --reason "..."'
    )


def planned_switch(status: PairStatus, to: Side) -> str | None:
    if status.derived[:2] == ("mirrored", to):
        return f"{to} is already main (mirrored, {to} main)"
    return lost_side_advice(status, other(to), to) or not_mirrored(status, other(to))


def unplanned_switch(status: PairStatus, to: Side, reason: str | None) -> str | None:
    if not (reason or "").strip():
        return "an unplanned switch needs a reason (--reason)"
    d = status.dsm[to]
    if not d.reachable or d.mode is None:
        return f"{to} must answer, and DSM {d.host} does not: {d.error}"
    if status.derived[:2] == ("mirrored", to):
        return f"{to} is already main (mirrored, {to} main)"
    return None


def split_switch(status: PairStatus, to: Side, pilots: Sequence[str]) -> str | None:
    a = other(to)
    why = not_mirrored(status, a)
    if why:
        return why
    by_name = {c.host.lower(): c for c in status.clients}
    unknown = [p for p in pilots if p.lower() not in by_name]
    if not pilots or unknown:
        return (
            f"unknown pilot client(s): {', '.join(unknown)}"
            if unknown
            else "name at least one pilot"
        )
    not_on_a = [p for p in pilots if by_name[p.lower()].side != a]
    if not_on_a:
        return f"pilot(s) not on {a}: {', '.join(not_on_a)}"
    return None


def fenced(status: PairStatus, main: Side) -> bool:
    """After an unplanned switch to `main` and the fence: `main`'s DSM main, the other's
    backup, and no replication running on either (nothing copies over anything yet)."""
    m, o = status.dsm[main], status.dsm[other(main)]
    return (
        m.mode == "main" and o.mode == "backup" and "running" not in (m.replication, o.replication)
    )


def restore(status: PairStatus, main: Side, fenced_allowed: Callable[[], bool]) -> str | None:
    """`fenced_allowed` is asked only of a pair that is not split but fenced (a run
    recorded before a fenced pair could be restored says no)."""
    mode, _, reason = status.derived
    if mode != "split" and not (fenced(status, main) and fenced_allowed()):
        return (
            f"the pair must be split (or {main} main with {other(main)} fenced after an "
            f"unplanned switch); found {mode}: {reason}"
        )
    return None


def under_fence(makes_main: Sequence[Side], waiting: Sequence[str]) -> str | None:
    """A run that makes main a side that a running fence still waits to put in backup."""
    under = [s for s in makes_main if s in waiting]
    if not under:
        return None
    s = under[0]
    return (
        f"the fence on {s} still waits to put {s}'s DSM and SmartBins in backup; making "
        f"{s} main now would be undone the moment it answers. End the fence first: "
        'amsm fence end --reason "..."'
    )
