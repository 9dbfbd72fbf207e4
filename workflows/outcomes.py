"""What happened to a step, as data, and every sentence said about it.

The engine (workflows/checklist.py and the workflows) records a step's `outcome` (and a
skip's `reason`) as it walks; the sentences in the checklist's notes and messages are
made here, and only here, from that data. The history reader (records/history.py) and the
report (records/report.py) read the outcome, never the words: a sentence can be reworded
here without a report drifting.

Checklists recorded before outcomes were data (the committed histories) have none;
`outcome_of` reads theirs from the notes the engine wrote then, which is the one place
that still reads prose, and only for them.
"""

from __future__ import annotations

from typing import Literal, Protocol

from inventory.models import Side

Outcome = Literal[
    "done",  # an automatic step: the service did it
    "automatic",  # a manual step the service did itself (the inventory says how)
    "confirmed",  # a manual step the operator confirmed (nothing to check on a device)
    "verified",  # confirmed, and the device shows it done
    "approved",  # a gate the operator approved
    "skipped",  # the operator skipped it, with a reason
    "passed-over",  # nothing to do in this run (no orphans; not in an unplanned switch)
    "side-lost",  # an unplanned switch: the step acts on the lost side, which did not answer
    "aborted",  # the run was aborted before the step was done
]

AUTOMATIC = "amsm (automatic)"  # the operator of a manual step the service did itself

# Messages while a manual step is checked.
CHECKING = "confirmed; checking the device"
VERIFIED = "confirmed and verified"
NO_CLIENTS = "no clients to switch"
ABORTED_NOTE = "not done: run aborted"
# restore with no orphans (workflows/restore.py): the purge gate and the purge.
NO_ORPHANS = {
    "approve-purge": "no orphans: nothing to approve",
    "purge-orphans": "no orphans: nothing to delete",
}


def not_verified(seen: str) -> str:
    return f"confirmed but not verified: {seen}"


def tool_seen(tool: str, want_running: bool, running: bool, host: str) -> str | None:
    """What a verified InSync or AllSync step saw when it disagrees, else None."""
    if running == want_running:
        return None
    if tool == "InSync":
        return f"InSync is {'stopped' if not running else 'still running'} on {host}"
    return f"{tool} is {'still running' if running else 'not running'} on {host}"


def skipped_note(reason: str | None) -> str:
    return f"skipped: {reason}"


def side_lost_reason(error: str) -> str:
    return f"side lost: {error}"


def aborted_note(note: str | None) -> str:
    return (note + "; " if note else "") + ABORTED_NOTE


def guarded_note(gate: str, gate_note: str | None, operator: str | None) -> str:
    """A step a skipped gate guards (WORKFLOWS.md: only an approval opens a gate)."""
    return f"not done: {gate} was {gate_note} (by {operator})"


def not_unplanned_note(lost: Side, to: Side) -> str:
    """The steps an unplanned switch does not do."""
    return (
        f"not in an unplanned switch: {lost}'s database and media may hold changes {to} "
        f"never got. When {lost} is back: amsm start restore --main {to}"
    )


def aborted_message(operator: str, reason: str | None) -> str:
    return f"aborted by {operator}: {reason or ''}"


def client_skipped(operator: str, reason: str | None) -> str:
    return f"skipped by {operator}: {reason}"


def clients_switched(done_seconds: list[float], left_behind: list[str]) -> str:
    """A client step's message once every client has settled."""
    slowest = max(done_seconds) if done_seconds else 0
    msg = f"{len(done_seconds)} client(s) switched (slowest {slowest:.1f} s)"
    if left_behind:
        msg += f"; left behind on purpose: {', '.join(left_behind)}"
    return msg


class Step(Protocol):
    """A step as the engine's checklist or the history's reconstruction holds it."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def operator(self) -> str | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def outcome(self) -> Outcome | None: ...
    @property
    def reason(self) -> str | None: ...


def outcome_of(step: Step, passed_over: bool = False) -> Outcome | None:
    """The step's outcome: recorded, or (a checklist from before outcomes were recorded)
    read from the notes the engine wrote then."""
    if step.outcome is not None:
        return step.outcome
    note = step.note or ""
    if step.status == "skipped":
        if ABORTED_NOTE in note:
            return "aborted"
        if note.startswith("skipped: side lost: "):
            return "side-lost"
        if note.startswith("skipped: ") or (step.operator and not passed_over):
            return "skipped"
        return "passed-over"
    if step.status == "done":
        if step.operator == AUTOMATIC:
            return "automatic"
        return {"manual": "confirmed", "gate": "approved"}.get(step.kind, "done")  # type: ignore[return-value]
    return None


def skip_reason(step: Step) -> str | None:
    """Why the operator skipped it (or, for a lost side, why the side was taken as lost)."""
    if step.outcome is not None:
        return step.reason
    note = step.note or ""  # before outcomes were recorded
    return note[len("skipped: ") :] if note.startswith("skipped: ") else None


# How a report says each outcome (records/report.py, `StepRow.how`).
HOW = {
    "done": "",
    "automatic": "automatic",
    "confirmed": "confirmed",
    "verified": "confirmed",
    "approved": "approved",
    "skipped": "skipped",
    "side-lost": "skipped",
    "passed-over": "passed over",
    "aborted": "not done (aborted)",
}


def how(step: Step, passed_over: bool = False) -> tuple[str, str | None]:
    """(how, reason) for a report's step row."""
    outcome = outcome_of(step, passed_over)
    if outcome is not None and step.status in ("done", "skipped"):
        words = HOW[outcome]
        return words, skip_reason(step) if words == "skipped" else None
    if step.status == "failed":
        return "failed", None
    if step.status.startswith("awaiting"):
        return "waiting for " + step.status.split("-", 1)[1], None
    return "", None
