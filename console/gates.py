"""What an operator types to pass a gate in the console: proof of having read what the
gate will overwrite or delete, not a click. `approve-purge`: the number of clips to
delete; `approve-overwrite`: the asset count of the DSM about to be overwritten, as the
console last read the pair (it reads the devices again when a gate starts waiting, and
the gate takes no typed count until that reading is in: `reading`).
Which side is overwritten comes from the run's kind and its step table
(workflows/kinds.py), never from the page's words. Unknown: the word `overwrite`."""

from __future__ import annotations

from inventory.models import SIDES, Side, other
from inventory.status import PairStatus
from workflows.kinds import KINDS
from workflows.models import Checklist, StepState
from workflows.view import approvals_line, lapsed_lines

FALLBACK = "overwrite"
READING = ""  # nothing to type yet: the counts are being read again for this gate


def overwritten(c: Checklist | None) -> Side | None:
    """The side whose database the run's approve-overwrite gives up: the old main of a
    switch, the other side of a restore. Found by matching the run's steps against its
    kind's table for each side."""
    kind = KINDS.get(c.workflow) if c else None
    if c is None or kind is None:
        return None
    ids = [s.id for s in c.steps if s.id != "break-glass"]  # a gate no table has
    for side in SIDES:
        if [d.id for d in kind.steps(side)] == ids:
            a, b = kind.sides(side)
            return a if kind.side == "to" else b
    return None


def expected(
    step: StepState,
    status: PairStatus | None,
    c: Checklist | None = None,
    reading: bool = False,
    partial: bool = False,
) -> tuple[str, str]:
    """(the text to type, the sentence saying what it is); READING while the devices are
    read again for a gate whose count comes from them, or (`partial`) while the page
    shows the steps from the run's records and the whole checklist is still to come."""
    if partial:
        return READING, "reading the run's checklist for this gate; a moment"
    if step.id == "approve-purge":
        n = len(step.items or [])
        return str(n), f"type {n}: the number of clips to delete"
    if reading:
        return READING, "reading the asset counts from the DSMs for this gate; a moment"
    b = overwritten(c)
    if status is not None and b is not None and status.dsm[b].asset_count is not None:
        d, m = status.dsm[b], status.dsm[other(b)]
        theirs = "?" if m.asset_count is None else str(m.asset_count)
        return str(d.asset_count), (
            f"type {d.asset_count}: the assets of {d.host} ({b}), to be overwritten "
            f"from {m.host} ({other(b)}, {theirs} assets)"
        )
    return FALLBACK, f"type {FALLBACK}: the asset counts could not be read"


def typed_ok(
    step: StepState,
    status: PairStatus | None,
    typed: str | None,
    c: Checklist | None = None,
    reading: bool = False,
) -> tuple[bool, str]:
    want, what = expected(step, status, c, reading)
    if want == READING:
        return False, f"not approved: {step.id}: {what}; approve again when it shows the counts"
    if (typed or "").strip().lower() == want.lower():
        return True, ""
    return False, (
        f"not approved: {step.id} needs its typed confirmation ({what}); "
        f"you typed {(typed or '').strip()!r}"
    )


def approvals(step: StepState) -> list[str]:
    """A gate that needs several people (docs/operators/two-person.md): "1 of 2 approvals:
    ann at 02:13" and each approval that lapsed, with why; nothing for any other step.
    Each operator approves from their own login: the run refuses the same person twice."""
    line = approvals_line(step)
    return [] if line is None else [line, *lapsed_lines(step)]
