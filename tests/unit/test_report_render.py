"""The run report: its fields from the history, and the markdown and HTML a shift lead files."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

from records.report import Report, build_report, duration, hms, steps_for_show
from records.report_render import render_html, render_markdown
from tests.support.histories import (
    HISTORIES,
    committed,
    events_of,
    failed_replication,
    payload,
    run_of,
    signal,
    until,
)
from tests.support.history_cli import amsm


def report_of(name: str) -> Report:
    return build_report(committed(name))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_summary_of_a_switch() -> None:
    r = report_of("switch-with-client-decisions.json")
    events = events_of("switch-with-client-decisions.json")
    assert (r.workflow_type, r.direction, r.initiator) == ("switch", "X -> Y", "root")
    assert (r.pair, r.workflow_id) == ("t7bbd87fc", "amsm-t7bbd87fc")
    assert r.run_id == "01a21211-c6cb-7b8f-a958-3e030ca109e4"
    assert (r.status, r.state) == ("completed", "completed")
    assert r.result == "completed: switch complete: mirrored, Y main"
    # start and end are the history's own event times, not the checklist's seconds
    assert r.started_at == ts("2026-11-25T09:38:04.619759Z")
    assert r.ended_at == ts("2026-11-25T09:38:12.853472Z")
    assert events[0]["eventTime"].startswith("2026-11-25T09:38:04.619759")
    assert abs(r.seconds - 8.233713) < 1e-3
    assert r.from_checklist and r.consistency == [] and r.approximate == []


def test_each_step_with_its_times_outcome_and_who() -> None:
    r = report_of("switch-with-client-decisions.json")
    assert len(r.steps) == 18 and [s.n for s in r.steps] == list(range(1, 19))
    s = r.step("stop-insync")
    assert (s.kind, s.status, s.how, s.by) == ("manual", "done", "confirmed", "confirmed by tester")
    assert (s.note, s.message) == ("did stop-insync", "confirmed and verified")
    g = r.step("approve-overwrite")
    assert (g.how, g.operator, g.note) == ("approved", "tester", "did approve-overwrite")
    a = r.step("dsm-y-main")
    assert (a.how, a.by, a.message) == ("", "", "DSM dsm-y set to main")
    # the confirm of stop-insync arrived at 09:38:05.774; its check ended 09:38:05.836
    assert s.started_at and s.ended_at and s.seconds
    assert s.started_at < ts("2026-11-25T09:38:05.774521Z") < s.ended_at
    assert abs(s.seconds - (s.ended_at - s.started_at).total_seconds()) < 1e-9
    total = sum(x.seconds or 0 for x in r.steps)
    assert total < r.seconds  # the steps lie within the run
    c = r.step("switch-clients")
    assert c.retried_by == ["root at 09:38:10.1"]
    assert c.message == "2 client(s) switched (slowest 1.3 s); left behind on purpose: ED-03"


def test_each_client_with_its_outcome_and_switch_time() -> None:
    r = report_of("switch-with-client-decisions.json")
    assert [c.host for c in r.clients] == ["ED-01", "ED-02", "ED-03"]
    ed1, ed2, ed3 = (r.client(h) for h in ("ED-01", "ED-02", "ED-03"))
    assert (ed1.status, ed1.attempts, ed1.to) == ("done", 1, "Y")
    assert ed1.seconds is not None and abs(ed1.seconds - 1.339123) < 1e-6
    assert (ed2.status, ed2.attempts) == ("done", 2)
    assert ed2.earlier_errors == [
        "during rebooting 1/2: ED-02: did not come back within 3 s of restart 1/2"
    ]
    assert (ed3.status, ed3.message) == ("skipped", "skipped by jo: broken PSU")
    assert ed3.error == "during rebooting 1/2: ED-03: did not come back within 3 s of restart 1/2"
    assert ed3.earlier_errors == []


def test_decisions_errors_and_warnings() -> None:
    r = report_of("switch-with-client-decisions.json")
    assert [(d.action, d.step, d.client, d.operator, d.reason) for d in r.decisions] == [
        ("skip", "switch-clients", "ED-03", "jo", "broken PSU"),
        ("retry", "switch-clients", None, "root", None),
    ]
    assert [d.event_id for d in r.decisions] == [108, 112]
    assert r.rejected == []
    assert [(e.event_id, e.step) for e in r.errors] == [
        (100, "switch-clients"),
        (104, "switch-clients"),
    ]
    assert "ED-03: client switch failed after 3.3 s: during rebooting 1/2" in r.errors[0].text
    assert [w.text for w in r.warnings] == ["client ED-03 left behind: skipped by jo: broken PSU"]


def test_time_until_the_new_main_side_was_serving() -> None:
    r = report_of("switch-with-client-decisions.json")
    dsm, clients = r.step("dsm-y-main"), r.step("switch-clients")
    assert dsm.ended_at and clients.ended_at and clients.ended_at > dsm.ended_at
    want = (clients.ended_at - r.started_at).total_seconds()
    assert r.serving.seconds == want and r.serving.reached_at == clients.ended_at
    assert r.serving.hms == hms(want) == "0:00:07"
    assert "until Y's DSM was main (dsm-y-main done)" in r.serving.basis
    assert "switch-clients done" in r.serving.basis and "not on the new side: ED-03" in (
        r.serving.basis
    )


def test_serving_for_the_other_workflows_says_what_it_used() -> None:
    split = report_of("split-main-x.json")
    assert split.serving.seconds is not None
    assert "split has no switch-clients step" in split.serving.basis
    assert "move-editors" in split.serving.basis
    restore = report_of("restore-main-y.json")
    assert "restore keeps Y's DSM main throughout" in restore.serving.basis
    assert restore.serving.seconds is not None
    child = report_of("client-switch-ed-01.json")
    assert child.serving.seconds is None and child.serving.basis.startswith("not applicable")
    assert [(c.host, c.status, c.to) for c in child.clients] == [("ED-01", "done", "Y")]
    assert child.result == "completed, ok: ED-01 switched to Y in 1.4 s"
    staged = report_of("split-switch-x-to-y.json")
    assert staged.serving.seconds is not None and "dsm-y-main" in staged.serving.basis


def test_restore_passes_over_the_purge_when_there_are_no_orphans() -> None:
    r = report_of("restore-main-y.json")
    gate = r.step("approve-purge")
    assert (gate.status, gate.how, gate.note) == (
        "skipped",
        "passed over",
        "no orphans: nothing to approve",
    )
    assert r.warnings == []  # passing over is not something to warn about
    orphans = report_of("restore-with-orphans-main-x.json")
    purge = orphans.step("purge-orphans")
    assert purge.items and len(purge.items) == 12 and purge.message
    md = render_markdown(orphans)
    assert "Items of `purge-orphans` (12):" in md and "- Sports\\y-only-11.vmf" in md


def test_each_approval_of_a_two_person_gate_with_its_time_proof_and_lapse() -> None:
    """restore-two-person: bob and cat approved, the counts changed when the gate read
    the devices again, their approvals lapsed, and they approved again."""
    r = build_report(committed("../restore-two-person.json"))
    gate = r.step("approve-overwrite")
    assert gate.approvals is not None
    assert [(a.operator, a.lapsed is None) for a in gate.approvals] == [
        ("bob", False),
        ("cat", False),
        ("bob", True),
        ("cat", True),
    ]
    assert all(a.proof == f"proven by {a.operator}'s key" for a in gate.approvals)
    md = render_markdown(r)
    assert "Approvals of `approve-overwrite` (2 counted, 2 lapsed):" in md
    first = gate.approvals[0]
    assert f"- {first.at:%H:%M:%S} bob (proven by bob's key); lapsed: the gate read" in md
    assert "Approvals of <code>approve-overwrite</code> (2 counted, 2 lapsed)" in render_html(r)
    # Only a gate that took approvals has them, in the JSON too.
    assert "approvals" not in r.step("approve-purge").model_dump(mode="json")
    assert report_of("switch-x-to-y.json").model_dump_json().count("approvals") == 0


def test_a_run_that_did_not_complete_says_the_timeline_is_reconstructed() -> None:
    r = build_report(run_of(until(events_of("switch-with-client-decisions.json"), 107)))
    assert (r.status, r.state, r.ended_at) == ("running", "awaiting-operator", None)
    assert not r.from_checklist
    assert r.approximate[0].startswith("the run had not ended when the history was read")
    assert "mapped to steps by their type (approximate)" in r.approximate[0]
    assert r.serving.seconds is None
    assert r.serving.basis.startswith("not reached: switch-clients is running")
    assert {c.host: c.status for c in r.clients} == {
        "ED-01": "done",
        "ED-02": "failed",
        "ED-03": "failed",
    }
    assert [e.text.split(":")[0] for e in r.errors][-2:] == [
        "client ED-02 is failed",
        "client ED-03 is failed",
    ]
    assert "the run had not ended when this history was read" in [w.text for w in r.warnings]
    md = render_markdown(r)
    assert "not ended when the history was read" in md and "Approximate: the run had not" in md


def test_a_skipped_step_in_the_report() -> None:
    r = build_report(run_of(failed_replication(skip=True)))
    s = r.step("start-replication")
    assert (s.status, s.how, s.operator, s.reason) == (
        "skipped",
        "skipped",
        "lead",
        "started by hand from the console",
    )
    assert s.error and "replication failed" in s.error
    assert "step start-replication skipped by lead: started by hand from the console" in [
        w.text for w in r.warnings
    ]
    assert any("dsm_start_replication failed" in e.text for e in r.errors)
    md = render_markdown(r)
    row = next(line for line in md.splitlines() if line.startswith("| 16 | start-replication"))
    assert "skipped by lead | started by hand from the console |" in row
    assert "error: dsm-y: replication failed" in row


def test_markdown_has_every_section() -> None:
    md = render_markdown(report_of("switch-with-client-decisions.json"))
    heads = [line for line in md.splitlines() if line.startswith("#")]
    assert heads == [
        "# Run report: Switch X -> Y (t7bbd87fc)",
        "## Steps",
        "## Clients",
        "## Decisions",
        "## Rejected signals",
        "## Errors and warnings",
        "## Event timeline",
        "## How this report was made",
    ]
    assert "| New main side serving after | 6.7 s (0:00:07); from the run's start" in md
    assert "| Duration | 8.2 s (0:00:08) |" in md
    assert "| Started | 2026-11-25 09:38:04.619 UTC |" in md
    assert (
        "| 5 | stop-insync | manual | done | 09:38:05.5 | 09:38:05.8 | 0.31 s | "
        "confirmed by tester | did stop-insync | confirmed and verified |"
    ) in md
    assert "| ED-03 | switch-clients | Y | skipped | 1 | 3.2 s |" in md
    assert "| 09:38:10.0 | skip | switch-clients | ED-03 | jo | broken PSU | accepted |" in md
    # every table row has as many cells as its header
    for block in re.split(r"\n\n", md):
        rows = [x for x in block.splitlines() if x.startswith("|")]
        if rows:
            width = rows[0].count("|")
            assert all(x.replace("\\|", "").count("|") == width for x in rows), rows[0]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_one_self_contained_printable_file() -> None:
    page = render_html(report_of("switch-with-client-decisions.json"))
    p = _Tags()
    p.feed(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "script" not in p.tags and "link" not in p.tags and "img" not in p.tags
    assert not [a for a in p.attrs if a[0] in ("src", "href")]
    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert (
        "@media print" in page
        and "@page" in page
        and "thead { display: table-header-group" in (page)
    )
    text = " ".join(p.text)
    for section in ("Steps", "Clients", "Decisions", "Rejected signals", "Errors and warnings"):
        assert f"{section}" in text
    assert "skipped by jo: broken PSU" in text and "confirmed by tester" in text
    assert p.tags.count("table") == 5  # summary, steps, clients, decisions, events


def test_text_from_the_history_is_escaped() -> None:
    """Notes and reasons are whatever people typed: they never become markup."""
    events = events_of("switch-x-to-y.json")
    evil = '<script>alert("x")</script> | *bold* `code`'
    for e in events:
        attrs = e.get("workflowExecutionSignaledEventAttributes")
        if attrs and attrs["signalName"] == "confirm":
            value = json.loads(base64.b64decode(attrs["input"]["payloads"][0]["data"]))
            if value["step"] == "check-projects":
                value["note"] = evil
                attrs["input"]["payloads"][0] = payload(value)
        done = e.get("workflowExecutionCompletedEventAttributes")
        if done:
            value = json.loads(base64.b64decode(done["result"]["payloads"][0]["data"]))
            next(s for s in value["steps"] if s["id"] == "check-projects")["note"] = evil
            done["result"]["payloads"][0] = payload(value)
    r = build_report(run_of(events))
    assert r.step("check-projects").note == evil
    page = render_html(r)
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    md = render_markdown(r)
    assert "<script>" not in md
    row = next(x for x in md.splitlines() if x.startswith("| 12 | check-projects"))
    assert '&lt;script>alert("x")&lt;/script> \\| \\*bold\\* \\`code\\`' in row
    assert row.replace("\\|", "").count("|") == 11


def test_rejected_signals_are_listed_with_the_engines_reason() -> None:
    events = until(events_of("switch-with-client-decisions.json"), 107)
    events.append(
        signal(108, "2026-11-25T09:38:10Z", "approve", {"step": "stop-insync", "operator": "eve"})
    )
    r = build_report(run_of(events))
    assert [(x.signal, x.step, x.operator, x.reason, x.event_id) for x in r.rejected] == [
        ("approve", "stop-insync", "eve", "stop-insync is a manual step: use confirm", 108)
    ]
    assert [w.text for w in r.warnings if "REJECTED" in w.text] == [
        "approve stop-insync by eve -- REJECTED: stop-insync is a manual step: use confirm"
    ]
    md = render_markdown(r)
    assert "| 09:38:10.0 | approve | stop-insync | eve | stop-insync is a manual step" in md


async def test_report_of_an_exported_file_needs_no_server(tmp_path: Path) -> None:
    src = HISTORIES / "switch-with-client-decisions.json"
    out = tmp_path / "switch.html"
    rc, text = await amsm("report", str(src), "-o", str(out))
    assert rc == 0, text
    assert text.strip() == (
        f"wrote {out}: html report of switch run 01a21211-c6cb-7b8f-a958-3e030ca109e4 "
        "(completed; 2 error(s), 1 warning(s))"
    )
    assert out.read_text().startswith("<!DOCTYPE html>")
    rc, text = await amsm("report", str(src))
    assert rc == 0 and text.startswith("# Run report: Switch X -> Y (t7bbd87fc)")
    rc, text = await amsm("report", str(src), "--json")
    data = json.loads(text)
    assert data["serving"]["hms"] == "0:00:07" and len(data["steps"]) == 18
    rc, text = await amsm("report", str(tmp_path / "gone.json"))
    assert (rc, text.strip()) == (2, f"amsm: {tmp_path / 'gone.json'}: no such file")


def test_steps_for_show_has_the_shape_of_show_json() -> None:
    r = report_of("switch-with-client-decisions.json")
    steps = steps_for_show(r)
    assert set(steps[0]) == {
        "id",
        "kind",
        "status",
        "title",
        "operator",
        "note",
        "message",
        "error",
        "clients",
    }
    ed = next(s for s in steps if s["id"] == "switch-clients")["clients"]
    assert ed[1] == {"host": "ED-02", "status": "done", "attempts": 2}


def test_durations() -> None:
    assert [duration(x) for x in (None, 0.034, 4.71, 59.94, 61, 3725)] == [
        "",
        "0.03 s",
        "4.7 s",
        "59.9 s",
        "0:01:01",
        "1:02:05",
    ]
