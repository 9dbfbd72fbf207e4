"""The console's starts (console/views.py): every workflow of the pair with its
precondition read from the status the console holds, worded by workflows/preconditions.py."""

from __future__ import annotations

from console.views import Start, starts
from inventory.status import AllSyncStatus, ClientStatus, DsmStatus, InSyncStatus, PairStatus


def dsm(side: str, mode: str | None, replication: str = "stopped", role: str = "none") -> DsmStatus:
    if mode is None:
        return DsmStatus(host=f"dsm-{side.lower()}", side=side, reachable=False, error="no answer")  # type: ignore[arg-type]
    return DsmStatus(
        host=f"dsm-{side.lower()}",
        side=side,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        replication=replication,  # type: ignore[arg-type]
        role=role,  # type: ignore[arg-type]
    )


def pair(x: DsmStatus, y: DsmStatus, clients: tuple[str, ...] = ("ed-1",)) -> PairStatus:
    return PairStatus(
        pair="p",
        read_at="2026-12-01T00:00:00+00:00",
        dsm={"X": x, "Y": y},
        smartbins=[],
        browse=[],
        clients=[ClientStatus(host=h, kind="editor", side="X", status="online") for h in clients],
        insync=InSyncStatus(host="cp"),
        allsync=AllSyncStatus(),
    )


def mirrored_x(clients: tuple[str, ...] = ("ed-1",)) -> PairStatus:
    return pair(
        dsm("X", "main", "running", "master"), dsm("Y", "backup", "running", "backup"), clients
    )


def by_label(ss: list[Start]) -> dict[str, Start]:
    return {s.label: s for s in ss}


def buttons(ss: list[Start]) -> list[str]:
    return [s.label for s in ss if s.offered]


def test_mirrored_x_main_offers_the_switch_split_and_split_switch_and_says_why_not_the_rest() -> (
    None
):
    ss = starts(mirrored_x(), busy=False)
    assert buttons(ss) == [
        "Start switch to Y",
        "Start split with X main",
        "Start split-switch to Y",
    ]
    got = by_label(ss)
    assert all(got[b].refused is None for b in buttons(ss))
    assert got["Start split-switch to Y"].form and not got["Start switch to Y"].form
    # Listed, not offered, each with its precondition's own sentence.
    assert got["Start switch to X"].refused == "X is already main (mirrored, X main)"
    assert got["Start split with Y main"].refused == "X is main, not Y (mirrored, X main)"
    restore = got["Start restore with X main"]
    assert not restore.offered and restore.what == "restore with X main"
    assert restore.refused is not None and restore.refused.startswith("the pair must be split")
    assert not got["Start restore with Y main"].offered


def test_split_offers_the_restore_with_either_side_main() -> None:
    ss = starts(pair(dsm("X", "main"), dsm("Y", "main")), busy=False)
    assert buttons(ss) == ["Start restore with X main", "Start restore with Y main"]
    assert all(s.refused is None for s in ss if s.offered)
    got = by_label(ss)
    assert got["Start switch to Y"].refused is not None
    assert "found split" in str(got["Start switch to Y"].refused)


def test_a_start_the_mode_allows_whose_precondition_fails_is_refused_in_its_own_words() -> None:
    # A split-switch with no client on the side being left: no pilot can be named.
    ss = by_label(starts(mirrored_x(clients=()), busy=False))
    s = ss["Start split-switch to Y"]
    assert s.offered and s.refused == "name at least one pilot (no client on X is known)"
    # X lost, and Y answers without a mode: the unplanned switch's own refusal.
    y = DsmStatus(host="dsm-y", side="Y", reachable=True, mode=None)
    u = by_label(starts(pair(dsm("X", None), y), busy=False))["Start switch to Y"]
    assert u.offered and u.unplanned and u.form
    assert u.refused == "Y must answer, and DSM dsm-y does not: None"


def test_the_unplanned_switch_is_offered_toward_the_side_that_answers() -> None:
    ss = starts(pair(dsm("X", None), dsm("Y", "backup")), busy=False)
    assert buttons(ss) == ["Start switch to Y"]
    s = by_label(ss)["Start switch to Y"]
    assert s.unplanned and s.form and s.refused is None  # the reason is the form's


def test_the_fenced_pair_is_offered_its_restore_as_the_workflow_accepts_it() -> None:
    ss = starts(pair(dsm("X", "backup"), dsm("Y", "main")), busy=False)
    assert buttons(ss) == ["Start restore with Y main"]


def test_no_start_while_a_run_holds_the_pair_or_before_a_reading() -> None:
    assert starts(mirrored_x(), busy=True) == []
    assert starts(None, busy=False) == []


def test_the_pilots_note_is_only_on_the_offered_split_switch() -> None:
    got = by_label(starts(mirrored_x(clients=()), busy=False))
    assert got["Start split-switch to X"].refused == "X is main, not Y (mirrored, X main)"


def test_a_run_that_would_make_a_fenced_side_main_is_refused_with_the_fences_words() -> None:
    # A fence waits to put X in backup: the restore with Y main is still offered; one with
    # X main, or a split (it makes both main), would be undone the moment X answers.
    ss = by_label(starts(pair(dsm("X", "backup"), dsm("Y", "main")), busy=False, fences=["X"]))
    assert (
        ss["Start restore with Y main"].offered and ss["Start restore with Y main"].refused is None
    )
    fenced = ss["Start restore with X main"].refused
    assert fenced is not None and fenced.startswith("the fence on X still waits")
    mirrored = by_label(starts(mirrored_x(), busy=False, fences=["X"]))
    assert mirrored["Start switch to Y"].refused is None  # makes Y main: not fenced
    split = mirrored["Start split with X main"]
    assert split.offered and split.refused is not None and "the fence on X" in split.refused
    # A fence that cannot be read counts as waiting on both sides: nothing is offered as
    # safe (the buttons the mode allows stay, disabled, with the fence's words).
    unread = starts(mirrored_x(), busy=False, fences=["X", "Y"])
    assert all(s.refused for s in unread)
    pilots = by_label(unread)["Start split-switch to Y"].refused
    assert pilots is not None and "no client" not in pilots  # the fence's words only
