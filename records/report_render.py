"""The run report drawn: markdown (`amsm report`), one self-contained HTML file
(`amsm report --html`, from the template records/templates/report.html) and the step timeline for a terminal (`amsm replay --timeline`),
all from the one `Report` that records/report.py builds; markdown tables through the
same `md_table` as the Web UI's checklist (workflows/view.py).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from records.reconstruct import TimelineEntry
from records.report import (
    ClientRow,
    Issue,
    Report,
    StepRow,
    clock,
    duration,
    hms,
    stamp,
)
from records.report_control import OVERRIDE_HEAD, OverrideRow, used_text
from workflows.view import md, md_table


# -- markdown --------------------------------------------------------------------------------
def summary_rows(r: Report) -> list[tuple[str, str]]:
    serving = (
        f"{r.serving.seconds:.1f} s ({r.serving.hms}); {r.serving.basis}"
        if r.serving.seconds is not None
        else r.serving.basis
    )
    end = stamp(r.ended_at) if r.ended_at else "not ended when the history was read"
    rows = [
        ("Workflow", f"{r.workflow_type}" + (f", {r.direction}" if r.direction else "")),
        ("Pair", f"{r.pair} (workflow id {r.workflow_id})" if r.pair else r.workflow_id),
        ("Run", r.run_id),
        ("Initiator", r.started_by),
        *([("Unplanned", f"yes: {r.unplanned_reason}")] if r.unplanned_reason else []),
        *([("Fence on the lost side", r.fence)] if r.fence else []),
        ("Started", stamp(r.started_at)),
        ("Ended", end),
        ("Duration", f"{duration(r.seconds)} ({hms(r.seconds)})"),
        ("Result", r.result),
        ("New main side serving after", serving),
        *([("Objective", r.serving.objective.text)] if r.serving.objective else []),
        ("Errors / warnings", f"{len(r.errors)} / {len(r.warnings)}"),
    ]
    if r.final_state:
        rows.append(("Devices at the end", "; ".join(r.final_state)))
    return rows


def _step_cells(r: Report, s: StepRow) -> list[Any]:
    note = s.note_or_reason
    result = s.error if s.status == "failed" else s.message
    if s.error and s.status != "failed" and s.error not in (result or ""):
        result = f"{result + '; ' if result else ''}error: {s.error}"
    if s.retried_by:
        result = f"{result + '; ' if result else ''}retried by {', '.join(s.retried_by)}"
    return [
        s.n,
        s.id,
        s.kind,
        s.status,
        clock(s.started_at, r.started_at),
        clock(s.ended_at, r.started_at),
        duration(s.seconds),
        s.by,
        note or "",
        result or "",
    ]


STEP_HEAD = ["#", "step", "kind", "outcome", "start", "end", "duration", "by", "note / reason"]
STEP_HEAD += ["result / error"]
CLIENT_HEAD = ["client", "step", "to", "outcome", "attempts", "switch time", "started", "ended"]
CLIENT_HEAD += ["message / error"]


def _client_cells(r: Report, c: ClientRow) -> list[Any]:
    text = (c.message if c.status == "done" else c.error or c.message) or ""
    if c.status == "skipped" and c.error:
        text = f"{c.message}; error: {c.error}"
    if c.earlier_errors:
        text += "; earlier attempt(s): " + "; ".join(c.earlier_errors)
    return [
        c.host,
        c.step,
        c.to or "",
        c.status,
        c.attempts,
        duration(c.seconds),
        clock(c.started_at, r.started_at),
        clock(c.ended_at, r.started_at),
        text,
    ]


def _event_cells(r: Report, e: TimelineEntry) -> list[Any]:
    return [
        clock(e.at, r.started_at),
        f"+{(e.at - r.started_at).total_seconds():.1f}",
        e.event_id,
        e.step,
        e.text,
    ]


def approvals_counted(s: StepRow) -> str:
    """`2 counted` or `1 counted, 1 lapsed`."""
    lapsed = len(s.approvals or []) - s.counted
    return f"{s.counted} counted" + (f", {lapsed} lapsed" if lapsed else "")


def render_markdown(r: Report) -> str:
    out = [f"# Run report: {md(r.title)}", ""]
    out += md_table(["", ""], [[k, v] for k, v in summary_rows(r)])
    if r.workflow_type == "control" or r.overrides:
        out += ["", "## Overrides", ""]
        if r.overrides:
            out += md_table(OVERRIDE_HEAD, [_override_cells(o) for o in r.overrides])
        else:
            out.append("_None: every rule held._")
    out += ["", "## Steps", ""]
    if r.steps:
        out += md_table(STEP_HEAD, [_step_cells(r, s) for s in r.steps])
        for s in r.steps:
            if s.items:
                out += ["", f"Items of `{s.id}` ({len(s.items)}):", ""]
                out += [f"- {md(i)}" for i in s.items]
            if s.approvals:
                out += ["", f"Approvals of `{s.id}` ({approvals_counted(s)}):", ""]
                out += [f"- {md(a.line(r.started_at))}" for a in s.approvals]
    else:
        out.append("_This run has no checklist steps._")
    out += ["", "## Clients", ""]
    if r.clients:
        out += md_table(CLIENT_HEAD, [_client_cells(r, c) for c in r.clients])
    else:
        out.append("_No client switched in this run._")
    out += ["", "## Decisions", ""]
    if r.decisions:
        out += md_table(
            ["time", "decision", "step", "client", "by", "reason", "taken"],
            [
                [clock(d.at, r.started_at), d.action, d.step, d.client or "", d.who]
                + [d.reason or "", d.verdict]
                for d in r.decisions
            ],
        )
    else:
        out.append("_None._")
    out += ["", "## Rejected signals", ""]
    if r.rejected:
        out += md_table(
            ["time", "signal", "step", "by", "reason"],
            [
                [clock(x.at, r.started_at), x.signal, x.step, x.operator, x.reason]
                for x in r.rejected
            ],
        )
    else:
        out.append("_None._")
    out += ["", "## Errors and warnings", ""]
    for title, issues in (("Errors", r.errors), ("Warnings", r.warnings)):
        out.append(f"**{title}:**" + (" none." if not issues else ""))
        out += [f"- {_issue_text(r, i)}" for i in issues]
        out.append("")
    if r.final_state:
        out += ["## Where the devices ended up", ""] + [f"- {md(x)}" for x in r.final_state]
        out.append("")
    out += ["## Event timeline", ""]
    out += md_table(
        ["time", "+s", "event", "step", "what"], [_event_cells(r, e) for e in r.timeline]
    )
    out += ["", "## How this report was made", ""]
    out += [f"- {md(x)}" for x in provenance(r)]
    return "\n".join(out) + "\n"


def _override_cells(o: OverrideRow) -> list[Any]:
    return [o.rule, o.operator, o.reason, used_text(o), o.outcome]


def _issue_text(r: Report, i: Issue) -> str:
    where = " ".join(
        x
        for x in (
            clock(i.at, r.started_at) if i.at else "",
            f"(event {i.event_id})" if i.event_id else "",
            f"`{i.step}`" if i.step and not i.step.startswith("(") else "",
        )
        if x
    )
    return (where + ": " if where else "") + md(i.text)


def provenance(r: Report) -> list[str]:
    lines = [
        f"Built from the workflow history alone ({r.event_count} events, {r.source}); "
        "no query and no worker, so it reads the same for a run that ended long ago.",
        "Times are the history's event times in UTC; a step's start and end are the clock of "
        "the workflow task that started and ended it.",
    ]
    if r.from_checklist:
        lines.append(
            "Step outcomes, operators, notes and messages are the run's own checklist (its "
            "result); the events were checked against it"
            + (" and agree." if not r.consistency else f": {len(r.consistency)} disagreement(s).")
        )
    if r.updates:
        lines.append(
            "Confirmations and decisions sent by `amsm` are updates: the workflow checks them "
            "first, and one it refuses never reaches the history (the CLI said so at once). "
            "Refused signals are recorded, and listed above."
        )
    lines += [f"Approximate: {a}" for a in r.approximate]
    if r.patches:
        lines.append(f"Workflow versions (patches) in this run: {', '.join(r.patches)}")
    return lines


# -- HTML ----------------------------------------------------------------------------------
CSS = """
:root { --ink: #1b1f24; --mute: #5b6570; --line: #d4d9de; --ok: #1a7f37; --warn: #9a6700;
  --bad: #cf222e; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 13px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
  margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 12px; }
h2 { font-size: 15px; margin: 22px 0 8px; padding-bottom: 3px; border-bottom: 2px solid var(--ink); }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; white-space: nowrap; }
td.num, td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.summary th { width: 14em; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.st { display: inline-block; padding: 0 6px; border-radius: 8px; border: 1px solid currentColor;
  font-size: 11px; white-space: nowrap; }
.st-done, .st-completed { color: var(--ok); }
.st-skipped, .st-aborted, .st-awaiting-confirmation, .st-awaiting-approval,
.st-awaiting-operator, .st-running, .st-switching, .st-pending { color: var(--warn); }
.st-failed, .st-terminated, .st-timed-out, .st-canceled { color: var(--bad); }
.lvl-error td { background: #ffebe9; }
.lvl-warning td { background: #fff8c5; }
ul.issues li.error::marker { color: var(--bad); }
ul.issues li.warning::marker { color: var(--warn); }
.none { color: var(--mute); font-style: italic; }
.small { color: var(--mute); font-size: 11px; }
table.events td { font-size: 12px; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10px; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { page-break-inside: auto; }
  tr, li { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .lvl-error td, .lvl-warning td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
  section.timeline { break-before: page; page-break-before: always; }
}
"""


def h(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def status_class(text: str) -> str:
    """A status as a CSS class name (`st-awaiting-approval`)."""
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in text)


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    # Every value is escaped by `h` (html.escape, quotes included), as the report always
    # was; markupsafe's autoescape writes quotes otherwise.
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)
TEMPLATES.filters.update(h=h, status_class=status_class)


def render_html(r: Report) -> str:
    """One self-contained HTML file: inline CSS, no scripts, no external assets
    (records/templates/report.html over the cells the markdown draws too)."""

    def result_rest(v: str) -> str:
        return v.removeprefix(f"{r.state}: ").removeprefix(r.state)

    return TEMPLATES.get_template("report.html").render(
        r=r,
        css=CSS,
        summary=summary_rows(r),
        result_rest=result_rest,
        override_head=OVERRIDE_HEAD,
        override_cells=_override_cells,
        step_head=STEP_HEAD,
        step_cells=lambda s: _step_cells(r, s),
        client_head=CLIENT_HEAD,
        client_cells=lambda c: _client_cells(r, c),
        event_cells=lambda e: _event_cells(r, e),
        clock=lambda at: clock(at, r.started_at),
        issue_plain=lambda i: _issue_plain(r, i),
        provenance=provenance(r),
        approvals_counted=approvals_counted,
        approval_line=lambda a: a.line(r.started_at),
    )


def _issue_plain(r: Report, i: Issue) -> str:
    where = " ".join(
        x
        for x in (
            clock(i.at, r.started_at) if i.at else "",
            f"(event {i.event_id})" if i.event_id else "",
            i.step if i.step and not i.step.startswith("(") else "",
        )
        if x
    )
    return (where + ": " if where else "") + i.text


# -- the timeline for a terminal ------------------------------------------------------------
def render_timeline(r: Report) -> str:
    """`amsm replay --timeline`: what ran when, what failed with what error, who decided what."""
    out = [
        f"{r.title}   run {r.run_id}",
        f"{r.workflow_type} by {r.started_by}; started {stamp(r.started_at)}; "
        + (
            f"ended {stamp(r.ended_at)} after {duration(r.seconds)}"
            if r.ended_at
            else f"not ended when read ({duration(r.seconds)} so far)"
        ),
        f"result: {r.result}",
    ]
    if r.serving.seconds is not None:
        out.append(f"new main side serving after {r.serving.seconds:.1f} s ({r.serving.hms})")
    if r.serving.objective:
        out.append(r.serving.objective.text)
    for a in r.approximate:
        out.append(f"note: approximate: {a}")
    for m in r.consistency:
        out.append(f"note: the checklist and the events disagree: {m}")
    if r.steps:
        out += ["", "Steps"]
        width = max(len(s.id) for s in r.steps)
        for s in r.steps:
            by = s.by
            note = s.note_or_reason
            tail = f"  {by}" if by else ""
            tail += f': "{note}"' if note else ""
            out.append(
                f"  {s.n:2} {s.id:{width}}  {s.status:21} {clock(s.started_at, r.started_at):12} "
                f"{clock(s.ended_at, r.started_at):12} {duration(s.seconds):>8}{tail}".rstrip()
            )
            if s.error and (s.status == "failed" or s.how == "skipped"):
                out.append(f"{'':6}error: {s.error}")
            elif s.message and s.status not in ("pending",):
                out.append(f"{'':6}{s.message}")
            for r_ in s.retried_by:
                out.append(f"{'':6}retried by {r_}")
            for ap in s.approvals or []:
                out.append(f"{'':6}approval: {ap.line(r.started_at)}")
            for c in s.clients or []:
                what = c.message if c.status == "done" else (c.error or c.message or "")
                if c.status == "skipped":
                    what = f"{c.message}" + (f" (error: {c.error})" if c.error else "")
                extra = f", {c.attempts} attempts" if c.attempts > 1 else ""
                out.append(f"{'':6}{c.host}: {c.status}{extra}: {what}")
    if r.decisions:
        out += ["", "Decisions"]
        for d in r.decisions:
            target = f"{d.step} {d.client}" if d.client else d.step
            out.append(
                f"  {clock(d.at, r.started_at)}  {d.action} {target} by {d.who}"
                + (f": {d.reason}" if d.reason else "")
                + ("" if d.verdict == "accepted" else f" ({d.verdict})")
            )
    if r.rejected:
        out += ["", "Rejected signals"]
        out += [
            f"  {clock(x.at, r.started_at)}  {x.signal} {x.step} by {x.operator}: {x.reason}"
            for x in r.rejected
        ]
    out += ["", "Events"]
    width = max((len(e.step) for e in r.timeline), default=8)
    for e in r.timeline:
        mark = {"error": "!", "warning": "~"}.get(e.level, " ")
        rel = f"+{(e.at - r.started_at).total_seconds():.1f}"
        out.append(
            f"  {mark} {clock(e.at, r.started_at):12} {rel:>8}  {e.event_id:>5}  "
            f"{e.step:{width}}  {e.text}"
        )
    return "\n".join(out) + "\n"
