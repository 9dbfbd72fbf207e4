"""The console's typed confirmations (console/gates.py): what a gate asks to be typed."""

from __future__ import annotations

from console.gates import expected, overwritten, typed_ok
from inventory.status import AllSyncStatus, DsmStatus, InSyncStatus, PairStatus
from workflows.kinds import KINDS
from workflows.models import Checklist, StepState


def checklist(kind: str, side: str) -> Checklist:
    steps = [StepState(id=d.id, kind=d.kind, title=d.title) for d in KINDS[kind].steps(side)]  # type: ignore[arg-type]
    return Checklist(workflow=kind, pair="p", title="t", steps=steps)


def status(x_assets: int, y_assets: int) -> PairStatus:
    return PairStatus(
        pair="p",
        read_at="2026-12-01T00:00:00+00:00",
        dsm={
            "X": DsmStatus(host="dsm-x", side="X", mode="backup", asset_count=x_assets),
            "Y": DsmStatus(host="dsm-y", side="Y", mode="main", asset_count=y_assets),
        },
        smartbins=[],
        browse=[],
        clients=[],
        insync=InSyncStatus(host="cp"),
        allsync=AllSyncStatus(),
    )


def test_the_overwritten_side_comes_from_the_runs_kind_and_direction() -> None:
    assert overwritten(checklist("switch", "Y")) == "X"  # the old main
    assert overwritten(checklist("switch", "X")) == "Y"
    assert overwritten(checklist("restore", "X")) == "Y"  # the side that is not main
    assert overwritten(checklist("restore", "Y")) == "X"
    assert overwritten(None) is None


def test_approve_overwrite_asks_for_the_overwritten_dsms_asset_count() -> None:
    c = checklist("switch", "Y")
    gate = c.step("approve-overwrite")
    want, what = expected(gate, status(118, 120), c)
    assert want == "118" and what.startswith("type 118: the assets of dsm-x (X)")
    assert typed_ok(gate, status(118, 120), " 118 ", c) == (True, "")
    ok, why = typed_ok(gate, status(118, 120), "120", c)
    assert not ok and "type 118" in why and "'120'" in why
    # Counts not read: a word, never a pass without typing.
    assert expected(gate, None, c)[0] == "overwrite"
    assert not typed_ok(gate, None, "", c)[0]


def test_approve_purge_asks_for_the_number_of_clips() -> None:
    c = checklist("restore", "X")
    gate = c.step("approve-purge")
    gate.items = ["bin\\a.vmf", "bin\\b.vmf", "bin\\c.vmf"]
    assert expected(gate, None, c) == ("3", "type 3: the number of clips to delete")
    assert typed_ok(gate, None, "3", c)[0] and not typed_ok(gate, None, "2", c)[0]


def test_an_overwrite_gate_asks_nothing_while_its_counts_are_read_again() -> None:
    c = checklist("switch", "Y")
    gate = c.step("approve-overwrite")
    want, what = expected(gate, status(118, 120), c, reading=True)
    assert want == "" and "reading the asset counts" in what
    ok, why = typed_ok(gate, status(118, 120), "118", c, reading=True)
    assert not ok and "approve again when it shows the counts" in why
    # The purge gate's count is its own list: nothing to read again.
    purge = StepState(id="approve-purge", kind="gate", title="t", items=["a"])
    assert expected(purge, None, c, reading=True)[0] == "1"
