"""The site check's table (workflows/checks.py): every step it names exists in a kind's
table, every check the activities report has a row, and a side's host names that side's
steps only."""

from __future__ import annotations

from pathlib import Path

from activities.models import ANSWERS
from inventory.models import SIDES
from workflows.checks import CHECK_STEPS, ITS_ROLE, StepRef, steps_stopped
from workflows.kinds import KINDS

ROOT = Path(__file__).resolve().parents[2]


def test_every_pattern_names_a_step_of_some_kind() -> None:
    ids = {s.id for k in KINDS.values() for side in SIDES for s in k.steps(side)}
    for check, patterns in CHECK_STEPS.items():
        if patterns == ITS_ROLE:
            continue
        for p in patterns:
            assert any(p.format(s=side.lower()) in ids for side in SIDES), (check, p)


def test_every_check_the_activities_report_has_a_row() -> None:
    files = [ROOT / "activities" / "check.py", *(ROOT / "activities" / "checks").glob("*.py")]
    source = "\n".join(f.read_text() for f in files)
    reported = set(ANSWERS.values())
    for check in CHECK_STEPS:
        if f'"{check}"' in source:
            reported.add(check)
    assert reported <= set(CHECK_STEPS)
    # ... and no row that nothing reports.
    assert set(CHECK_STEPS) - reported == set(), set(CHECK_STEPS) - reported


def test_a_sides_host_stops_that_sides_steps() -> None:
    x = steps_stopped("dsm-answers", "X")
    assert StepRef(kind="switch", step="dsm-x-backup") in x
    assert StepRef(kind="switch", step="dsm-x-main") in x
    assert not [s for s in x if "-y-" in s.step]
    shared = {(s.kind, s.step) for s in steps_stopped("browse-config", None)}
    assert {("restore", "browse-to-x"), ("restore", "browse-to-y")} <= shared
    assert ("split", "stop-browse") not in shared  # Browse stays on A in a split
    assert steps_stopped("clock", "X") == []
    # A host's own transport or shell stops what its role does.
    assert steps_stopped("host-key", "X", "smartbins") == steps_stopped("smartbins-answers", "X")
    assert steps_stopped("powershell", None, "client") == steps_stopped("client-answers", None)
    assert steps_stopped("certificate", "Y", "bridge") == []
    # Each step once, in the kinds' order.
    refs = steps_stopped("client-portal", None)
    assert len(refs) == len({(r.kind, r.step) for r in refs})
    assert [r.kind for r in refs] == sorted(
        (r.kind for r in refs), key=lambda k: list(KINDS).index(k)
    )
