"""A control's break-glass approvals (workflows/control_approval.py): what the gate shows,
which every approval is bound to, and how a report reads the children that switch no
client (a signed act's nonce, a control's approvals run)."""

from __future__ import annotations

from pathlib import Path

import yaml
from temporalio.activity import _Definition

from activities.check import CheckActivities
from activities.dsm import DsmActivities
from activities.notify import NotifyActivities
from activities.pair import PairActivities
from activities.probe import ProbeActivities
from inventory import intent
from inventory.load import parse_inventory
from records.history import load_history_file, parse_history
from records.report import build_report
from records.report_render import render_markdown
from tests.support.approvals import KEYS
from workers.resets import READS, acting_once
from workflows.control import ControlInput, approval_input, what_it_does
from workflows.control_approval import gate_items
from workflows.kinds import KINDS
from workflows.overrides import Override

HISTORIES = Path(__file__).parents[1] / "histories"


def _control(hosts: list[str], side: str | None = None) -> ControlInput:
    return ControlInput(
        pair="studio-a",
        control="clients-switch",
        operator="ann",
        side=side,  # type: ignore[arg-type]
        hosts=hosts,
        overrides=[Override(rule="no-switch-in-blackout", reason="hung")],
    )


def test_the_gate_shows_every_host_and_each_override() -> None:
    items = gate_items(approval_input(_control(["ED-01", "ED-02"], "Y"), "proven by ann's key"))
    assert items == [
        "control: clients-switch Y",
        "host: ED-01",
        "host: ED-02",
        "no-switch-in-blackout: hung (by ann)",
    ]


def test_a_long_control_is_cut_in_its_title_but_every_host_is_bound() -> None:
    hosts = [f"EDITOR-{n:03}" for n in range(200)]
    inp = approval_input(_control(hosts, "X"), None)
    assert len(inp.what) == 1000 and inp.what.startswith("clients-switch X EDITOR-000")
    items = gate_items(inp)
    assert items[1:201] == [f"host: {h}" for h in hosts]
    # One host more or less is another digest: an approval of one is not of the other.
    fewer = gate_items(approval_input(_control(hosts[:-1], "X"), None))
    assert intent.shown(items) != intent.shown(fewer)


def test_what_a_control_does_in_its_summary() -> None:
    assert what_it_does(_control(["ED-01"])) == "clients-switch ED-01"
    assert what_it_does(_control([], "X")) == "clients-switch X"


def test_a_report_names_children_that_switch_no_client_as_what_they_are() -> None:
    for name, child in (
        ("control-signed-nonce.json", "signed-nonce"),
        ("control-break-glass-approved.json", "control-approval"),
    ):
        path = HISTORIES / name
        text = render_markdown(build_report(parse_history(load_history_file(path), name)))
        assert "client switch failed" not in text, name
        assert "**Errors:** none." in text, name
        assert f"| (run) | {child} amsm-" in text and " completed after " in text, name


def test_a_reset_acts_on_nothing_for_controls_and_under_require_signed_for_every_run() -> None:
    data = yaml.safe_load((Path(__file__).parent / "data" / "inventory.yaml").read_text())
    plain = parse_inventory(yaml.safe_dump(data), "inv.yaml")
    assert acting_once(plain) == {"control", "client-switch", "fence"}
    data.update(operators=[{"name": n, "key": k} for n, k in KEYS.items()])
    data.update(identity={"require_signed": True})
    signed = parse_inventory(yaml.safe_dump(data), "inv.yaml")
    assert acting_once(signed) == {"control", "client-switch", "client-batch", "fence", *KINDS}
    # What only reads is never refused: a reset run reaches its own checks.
    assert {"get_timing", "get_capabilities", "schedule_lineage"} <= READS
    assert not {"reboot_host", "dsm_set_mode", "client_prepare"} & READS


def test_every_read_is_an_activity_the_worker_has() -> None:
    names = {
        d.name
        for cls in (
            ProbeActivities,
            PairActivities,
            CheckActivities,
            NotifyActivities,
            DsmActivities,
        )  # fmt: skip
        for m in vars(cls).values()
        if callable(m) and (d := _Definition.from_callable(m)) is not None and d.name
    }
    assert READS <= names, READS - names
