"""Step tables and checklist rendering."""

import re
from pathlib import Path

import pytest

from workflows.models import Checklist, ClientProgress, RejectedSignal, StepState
from workflows.switch import switch_steps
from workflows.view import render_markdown, render_text

SPEC = Path(__file__).resolve().parents[3] / "shared" / "WORKFLOWS.md"


def spec_table(title: str) -> list[tuple[str, str]]:
    """(id, kind) rows of one workflow table in shared/WORKFLOWS.md."""
    text = SPEC.read_text()
    section = text.split(f"### {title}", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \| (\w+) \|", section, re.M)
    return [(i.strip(), k.strip()) for _, i, k in rows]


@pytest.mark.skipif(not SPEC.exists(), reason="shared/WORKFLOWS.md is not beside the checkout")
@pytest.mark.parametrize(("a", "b"), [("X", "Y"), ("Y", "X")])
def test_switch_steps_match_the_specification(a: str, b: str) -> None:
    expected = [
        (i.replace("{a}", a.lower()).replace("{b}", b.lower()), k) for i, k in spec_table("switch")
    ]
    got = [(s.id, s.kind) for s in switch_steps(a, b)]  # type: ignore[arg-type]
    assert len(got) == 18
    assert got == expected


def sample() -> Checklist:
    steps = [StepState(id=s.id, kind=s.kind, title=s.title) for s in switch_steps("X", "Y")]
    steps[0].status = "done"
    steps[0].message = "replication stopped on DSM dsm-x"
    steps[4].status = "done"
    steps[4].operator = "jo"
    steps[4].note = "closed InSync"
    steps[10].status = "running"
    steps[10].clients = [
        ClientProgress(host="ED-01", status="done"),
        ClientProgress(host="ED-02", status="switching"),
        ClientProgress(host="IN-01", status="failed", error="IN-01: no answer"),
    ]
    steps[11].status = "awaiting-confirmation"
    return Checklist(
        workflow="switch",
        pair="lab",
        title="Switch X -> Y (lab)",
        run_id="abc-123",
        initiator="jo",
        steps=steps,
        state="awaiting-operator",
        rejected=[
            RejectedSignal(
                at="t", signal="confirm", step="nope", operator="al", reason="no step 'nope'"
            )
        ],
    )


def test_markdown_for_the_web_ui() -> None:
    md = render_markdown(sample())
    assert "| [x] | 1 | `stop-replication` | auto | done |" in md
    assert "| [x] | 5 | `stop-insync` | manual | done | jo | closed InSync |" in md
    assert "running (1/3 done, 1 pending, 1 failed)" in md
    # A failed client needs a decision first; its payload is a `decide` signal.
    assert "**Waiting for the operator:** `switch-clients`" in md
    assert '{"step": "switch-clients", "action": "retry", "operator": "NAME"}' in md
    assert "client **IN-01** failed: IN-01: no answer" in md
    assert "confirm `nope` by al: no step 'nope'" in md


def test_markdown_names_the_manual_step_and_how_long_it_waited() -> None:
    c = sample()
    c.steps[10].clients[2].status = "done"  # type: ignore[index]
    c.steps[10].status = "done"
    c.steps[11].waiting_since = "2026-11-23T10:00:00+00:00"
    md = render_markdown(c, now="2026-11-25T12:30:00+00:00")
    assert "**Waiting for the operator:** `check-projects`" in md
    assert "(waiting 2 d 2 h 30 min)" in md
    assert '{"step": "check-projects", "operator": "NAME"}' in md
    assert "amsm confirm abc-123 check-projects" in md


def test_terminal_checklist() -> None:
    text = render_text(sample())
    assert "[x]  5 stop-insync" in text and "by jo  note: closed InSync" in text
    assert "clients: 1 done, 1 pending, 1 failed, 3 in all" in text
    assert "IN-01: failed: IN-01: no answer" in text
    assert "next: amsm retry abc-123 switch-clients" in text
    assert "--client IN-01 --reason" in text


def test_the_web_ui_shows_an_operators_note_as_written_not_as_markup() -> None:
    # A note or a device's error with a pipe, a line break or markup stays in its cell:
    # the same escaping as the run report's tables (workflows/view.py md_table).
    c = sample()
    c.steps[4].note = "closed | InSync\n**now** `x`"
    c.rejected[0].step = "no`pe\nx"
    md = render_markdown(c)
    row = next(line for line in md.splitlines() if "`stop-insync`" in line)
    assert row.endswith("| jo | closed \\| InSync \\*\\*now\\*\\* \\`x\\` |"), row
    assert row.count(" | ") == 6  # seven cells, none split by the note
    assert "confirm `no'pe x` by al" in md
