"""Two people for what cannot be undone (docs/operators/two-person.md): the inventory's
`approvals`, the engine's record of each approval, its refusals and lapses, and the
words on the screen. The property over random approvals is in test_signal_rules.py."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import yaml

from console.gates import approvals
from inventory.load import InventoryError, parse_inventory
from inventory.models import APPROVAL_KEYS, Approval
from tests.support.approvals import KEYS, approve, gate_runner, judge
from workflows import notify
from workflows.kinds import KINDS
from workflows.models import OperatorSignal, StepState
from workflows.view import approvals_line, render_markdown, render_text

DATA = Path(__file__).parent / "data" / "inventory.yaml"
SIGNED = [{"name": n, "key": k} for n, k in KEYS.items()]


# -- the inventory ----------------------------------------------------------------------------
def _inv(**change: object) -> dict:
    data = yaml.safe_load(DATA.read_text())
    data.update(change)
    return data


def _problems(data: dict) -> str:
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    return "\n".join(e.value.problems)


def test_approvals_load_under_require_signed() -> None:
    data = _inv(
        operators=SIGNED,
        identity={"require_signed": True},
        approvals={
            "approve-overwrite": {"required": 2, "not_initiator": True},
            "approve-purge": {"required": 2},
            "break-glass": {"required": 2},
        },
    )
    inv = parse_inventory(yaml.safe_dump(data), "inv.yaml")
    assert inv.approvals["approve-overwrite"] == Approval(required=2, not_initiator=True)
    assert inv.approvals["break-glass"].required == 2


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            {"approvals": {"approve-everything": {"required": 2}}},
            "approvals: no gate 'approve-everything'; allowed: approve-overwrite, "
            "approve-purge, break-glass (docs/operators/two-person.md)",
        ),
        (
            {"operators": SIGNED, "approvals": {"approve-overwrite": {"required": 2}}},
            "approvals: an approval counts only when it is proven by a key, so two-person "
            "approvals need identity: {require_signed: true} (docs/operators/two-person.md)",
        ),
        (
            {
                "operators": SIGNED[:2],
                "identity": {"require_signed": True},
                "approvals": {"approve-overwrite": {"required": 2, "not_initiator": True}},
            },
            "approvals.approve-overwrite: 2 approvals required, but only 1 operator(s) could "
            "give them (the initiator is not one; docs/operators/two-person.md)",
        ),
        (
            {
                "operators": SIGNED,
                "identity": {"require_signed": True},
                "approvals": {"approve-purge": {"required": 0}},
            },
            "approvals.approve-purge.required",
        ),
    ],
)
def test_bad_approvals_are_refused_with_what_is_allowed(change: dict, why: str) -> None:
    assert why in _problems(_inv(**change))


def test_every_gate_of_every_kind_may_be_named() -> None:
    gates = {
        d.id for kind in KINDS.values() for side in ("X", "Y") for d in kind.steps(side)
        if d.kind == "gate"
    }  # fmt: skip
    assert gates and gates <= set(APPROVAL_KEYS)


# -- the engine (workflows/checklist.py), without a server ------------------------------------
def test_the_initiator_the_same_person_twice_a_viewer_and_the_unsigned_are_refused() -> None:
    r = gate_runner(Approval(required=2, not_initiator=True))
    assert approve(r, "ann") == (
        "ann started this run: approve-overwrite needs 2 approvals from other operators "
        "(approvals.approve-overwrite.not_initiator; docs/operators/two-person.md)"
    )
    assert approve(r, "bob") is None
    assert judge(r) is False  # one of two
    assert approve(r, "bob", nonce="bob-again") == (
        "bob has approved approve-overwrite already: it needs 2 different people "
        "(docs/operators/two-person.md)"
    )
    assert approve(r, "vic", signer="cat") == "vic is not an operator of this pair"
    assert "this pair takes only signed acts" in str(approve(r, "dan"))
    assert approve(r, "cat", signer="bob") is not None  # bob's key cannot approve as cat
    gate = r.checklist.step("approve-overwrite")
    assert [a.operator for a in gate.counted] == ["bob"]
    assert approvals_line(gate) == "1 of 2 approvals: bob at 02:13"
    assert r.taken(OperatorSignal(step=gate.id)) is True
    assert approve(r, "cat") is None
    assert r.taken(OperatorSignal(step=gate.id)) is False  # judged first
    assert r.check_signal("approve", OperatorSignal(step=gate.id, operator="dan")) == (
        "approve-overwrite is taking another approval now (it reads the devices again); "
        "approve again in a moment (docs/operators/two-person.md)"
    )
    assert judge(r) is True
    assert gate.operator == "bob and cat"
    assert gate.proof == "proven by bob's key; proven by cat's key"


def test_an_approval_lapses_when_the_gate_reads_other_counts() -> None:
    r = gate_runner(Approval(required=2))
    counts = iter([["dsm-x 120", "dsm-y 118"], ["dsm-x 121", "dsm-y 118"]])

    async def read_again(step: StepState) -> str:
        step.items = next(counts)
        return "asset counts now: " + ", ".join(step.items)

    r.rereads["approve-overwrite"] = read_again
    assert approve(r, "ann") is None
    assert judge(r) is False  # the same counts: ann's approval stands
    assert approve(r, "bob") is None
    assert judge(r) is False  # the counts changed: both lapse, the gate stays shut
    gate = r.checklist.step("approve-overwrite")
    assert gate.counted == []
    why = "the gate read the devices again and they changed (now: asset counts now: dsm-x 121"
    assert all(str(a.lapsed).startswith(why) for a in gate.approvals or [])
    assert approvals_line(gate) == "0 of 2 approvals"
    c = r.checklist
    md, text = render_markdown(c, "2030-01-01T02:14:00+00:00"), render_text(c)
    assert "ann's approval at 02:13 lapsed: the gate read the devices again" in md
    assert "bob's approval at 02:13 lapsed: the gate read the devices again" in text
    # Each may approve again, bound to the counts shown now.
    r.rereads.clear()
    assert approve(r, "ann", nonce="ann-again") is None
    assert judge(r) is False
    assert approve(r, "bob", nonce="bob-again") is None
    assert judge(r) is True


def test_the_others_are_told_one_more_approval_is_needed() -> None:
    r = gate_runner(Approval(required=2))
    approve(r, "bob")
    plan = mock.Mock(console_url="https://console:8080")
    subject, body = notify.approval_message(plan, r.checklist, r.checklist.steps[0])
    assert subject == "amsm demo: restore step approve-overwrite: one more approval is needed"
    assert "1 of 2 approvals: bob at 2030-01-01T02:13:00+00:00; one more approval is " in body
    assert "amsm approve run-1 approve-overwrite" in body


def test_the_consoles_gate_box_says_who_approved() -> None:
    r = gate_runner(Approval(required=2))
    gate = r.checklist.step("approve-overwrite")
    assert approvals(gate) == ["0 of 2 approvals"]
    approve(r, "ann")
    assert approvals(gate) == ["1 of 2 approvals: ann at 02:13"]
    assert approvals(StepState(id="stop-insync", kind="manual", title="t")) == []
