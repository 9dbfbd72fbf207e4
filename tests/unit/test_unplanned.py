"""The unplanned switch's pure parts: when a side counts as lost, when a restore accepts
a fenced pair, the CLI's usage rules, the lab's side fault, the fence's text."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from activities.models import FenceState
from api.fence import FenceView
from api.refusal import EXIT_USAGE, Refused
from client.commands.start import workflow_input
from client.render import render_fence
from inventory.load import load_inventory
from inventory.status import AllSyncStatus, DsmStatus, InSyncStatus, PairStatus
from lab import LabError
from lab.dsm import dsm_path
from lab.faults import set_side_fault
from lab.init import init_lab
from lab.state import NEVER, LabState
from workflows.preconditions import fenced, lost_side_advice


def pair(x: DsmStatus, y: DsmStatus) -> PairStatus:
    return PairStatus(
        pair="p",
        read_at="now",
        dsm={"X": x, "Y": y},
        smartbins=[],
        browse=[],
        clients=[],
        insync=InSyncStatus(host="cp"),
        allsync=AllSyncStatus(),
    )


def dsm(side: str, mode: str | None, replication: str | None = "stopped") -> DsmStatus:
    if mode is None:
        return DsmStatus(host=f"dsm-{side.lower()}", side=side, reachable=False, error="no answer")  # type: ignore[arg-type]
    return DsmStatus(host=f"dsm-{side.lower()}", side=side, mode=mode, replication=replication)  # type: ignore[arg-type]


def test_a_side_whose_dsm_does_not_answer_is_lost_and_the_advice_names_the_command() -> None:
    advice = lost_side_advice(pair(dsm("X", None), dsm("Y", "backup")), "X", "Y")
    assert advice is not None
    assert "X does not answer (DSM dsm-x: no answer)" in advice
    assert 'amsm start switch --to Y --unplanned --reason "..."' in advice
    assert lost_side_advice(pair(dsm("X", "main"), dsm("Y", "backup")), "X", "Y") is None


def test_restore_accepts_the_pair_the_fence_leaves_and_nothing_else() -> None:
    assert fenced(pair(dsm("X", "backup"), dsm("Y", "main")), "Y")
    assert fenced(pair(dsm("X", "backup", "failed"), dsm("Y", "main")), "Y")
    assert not fenced(pair(dsm("X", "backup"), dsm("Y", "main", "running")), "Y")
    assert not fenced(pair(dsm("X", "main"), dsm("Y", "main")), "Y")  # split: its own rule
    assert not fenced(pair(dsm("X", None), dsm("Y", "main")), "Y")  # X not back yet
    assert not fenced(pair(dsm("X", "backup"), dsm("Y", "main")), "X")


class _Inv:
    pair = "p"


def args(**kw: object) -> argparse.Namespace:
    base = {"kind": "switch", "to": "Y", "operator": "jo", "unplanned": False, "reason": None}
    return argparse.Namespace(**{**base, **kw})


def test_the_cli_wants_a_reason_with_unplanned_and_none_without() -> None:
    with pytest.raises(Refused) as e:
        workflow_input(_Inv(), args(unplanned=True))  # type: ignore[arg-type]
    assert e.value.code == EXIT_USAGE and "needs a reason" in str(e.value)
    with pytest.raises(Refused) as e:
        workflow_input(_Inv(), args(unplanned=True, reason="   "))  # type: ignore[arg-type]
    assert "needs a reason" in str(e.value)
    with pytest.raises(Refused) as e:
        workflow_input(_Inv(), args(reason="why"))  # type: ignore[arg-type]
    assert "--reason goes with --unplanned" in str(e.value)
    inp, what = workflow_input(_Inv(), args(unplanned=True, reason=" X burns "))  # type: ignore[arg-type]
    assert (inp.unplanned, inp.reason, what) == (True, "X burns", "unplanned switch X -> Y")  # type: ignore[attr-defined]


def test_a_lab_side_goes_down_and_comes_back(tmp_path: Path) -> None:
    inv = load_inventory(init_lab(tmp_path, editors=1, ingest=0))
    x = inv.sides["X"]
    x_hosts = [s.host for s in x.smartbins] + [x.nas.cifs.host, x.nas.ftp.host, x.bridge.host]
    out = set_side_fault(tmp_path, "x", "down")
    assert out.startswith("side X down: dsm-x, ") and "--side X up" in out
    assert not dsm_path(tmp_path, "X").exists() and dsm_path(tmp_path, "Y").exists()
    with LabState(tmp_path).transaction() as txn:
        for h in x_hosts:
            doc = txn.require_host(h)
            assert (doc["fault"]["kind"], doc["down_until"]) == ("unreachable", NEVER), h
        assert txn.require_host("ED-01").get("fault") is None  # clients are shared
        assert txn.require_host(inv.sides["Y"].bridge.host).get("fault") is None
    set_side_fault(tmp_path, "X", "down")  # twice: the same as once
    with LabState(tmp_path).transaction() as txn:
        assert all(txn.require_host(h)["fault"]["was_down"] is False for h in x_hosts)
    assert set_side_fault(tmp_path, "X", "up").startswith("side X up: dsm-x")
    assert dsm_path(tmp_path, "X").exists()
    with LabState(tmp_path).transaction() as txn:
        assert all(txn.require_host(h).get("fault") is None for h in x_hosts)
    with pytest.raises(LabError, match="down, up"):
        set_side_fault(tmp_path, "X", "sideways")
    with pytest.raises(LabError, match="X or Y"):
        set_side_fault(tmp_path, "Z", "down")


def test_the_fence_text_says_what_it_waits_for_and_how_to_end_it() -> None:
    st = FenceState(pair="p", side="X", reason="fire", started_by="jo", message="waiting for X")
    text = render_fence(FenceView(workflow_id="amsm-p-fence", run_id="r", state=st, tries=4,
                                  last_error="X not fenced yet: dsm-x: no answer"))  # fmt: skip
    assert "Fence on X (amsm-p-fence): waiting" in text
    assert "tries: 4; last answer: X not fenced yet: dsm-x: no answer" in text
    assert 'amsm fence end --reason "..."' in text and "by jo for: fire" in text
    st.status, st.details = "fenced", ["DSM dsm-x set to backup"]
    text = render_fence(FenceView(workflow_id="amsm-p-fence", run_id="r", state=st))
    assert "fenced" in text and "- DSM dsm-x set to backup" in text and "fence end" not in text
