"""The checklist drawn, in one place: as the Web UI shows it (markdown, the run's current
details) and on the terminal (`amsm show`, `amsm watch`). What a step's outcome is called
comes from workflows/outcomes.py; how long a step has waited, what the operator should
do next, a step's client counts and how text goes into a markdown table are said once,
here: the run report (records/report.py) draws its tables with the same `md_table`.
No workflow SDK: the CLI imports it at no cost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from workflows.models import Checklist, Delivery, StepState

STATUS_MARK = {
    "pending": "[ ]",
    "running": "[~]",
    "awaiting-confirmation": "[?]",
    "awaiting-approval": "[!]",
    "done": "[x]",
    "failed": "[F]",
    "skipped": "[-]",
}
TEXT_ITEMS = 10  # items shown in text views; all of them are in --json


class Markup(str):
    """A table cell already in markdown (a code span the caller built): not escaped."""


def md(text: Any) -> str:
    """Text for markdown: one line, no table pipes, no emphasis, no code, no HTML (an
    operator's note or a device's error is shown as written, never as markup)."""
    s = "" if text is None else str(text)
    s = re.sub(r"\\(?=[!-/:-@\[-`{-~])", r"\\\\", s)  # a backslash before punctuation
    s = s.replace("|", "\\|").replace("*", "\\*").replace("`", "\\`")
    return s.replace("<", "&lt;").replace("\r", " ").replace("\n", " ")


def md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table, each cell through `md` unless it is `Markup`."""
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def _cell(c: Any) -> str:
    return c if isinstance(c, Markup) else md(c)


def code(text: Any) -> Markup:
    """A code span of text the operator may have typed (a code span escapes nothing, so
    a backquote or a line break in it would end it)."""
    s = "" if text is None else str(text)
    return Markup("`" + s.replace("`", "'").replace("\r", " ").replace("\n", " ") + "`")


def client_counts(s: StepState) -> tuple[int, int, int]:
    """A client step's clients: done, pending and failed."""
    done = sum(1 for x in s.clients or [] if x.status == "done")
    return done, s.pending_clients, len(s.failed_clients)


def waited(since: str | None, now: str) -> str:
    """How long a step has waited, as 'N d N h N min'."""
    if not since:
        return ""
    secs = int((datetime.fromisoformat(now) - datetime.fromisoformat(since)).total_seconds())
    d, rem = divmod(max(0, secs), 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [f"{d} d"] * bool(d) + [f"{h} h"] * bool(h) + [f"{m} min"]
    return " ".join(parts)


def next_action(c: Checklist) -> str | None:
    """The one thing the operator should do now, as a command line."""
    for s in c.awaiting:
        run = c.run_id or "RUN"
        if s.status == "awaiting-approval":
            return f"amsm approve {run} {s.id}"
        if s.status == "awaiting-confirmation":
            return f"amsm confirm {run} {s.id}"
        failed = [x.host for x in s.failed_clients]
        if failed:
            return (
                f"amsm retry {run} {s.id}  (or: amsm skip {run} {s.id} --client {failed[0]} "
                "--reason ...)"
            )
        return f"amsm retry {run} {s.id}  (or: amsm skip {run} {s.id} --reason ...)"
    return None


def proven(proof: str | None) -> str:
    """Who an act is proven to be (signed acts, docs/operators/signed-acts.md), after the
    name: " (proven by ann's key)", " (unproven)"; nothing where the pair has no keys."""
    return f" ({proof})" if proof else ""


def approvals_line(s: StepState) -> str | None:
    """A gate that needs several people (docs/operators/two-person.md): "1 of 2 approvals:
    ann at 02:13" (the approvals that still count); None for any other step."""
    if s.required is None:
        return None
    counted = s.counted
    who = ", ".join(f"{a.operator} at {a.at[11:16]}" for a in counted)
    return f"{len(counted)} of {s.required} approvals" + (f": {who}" if who else "")


def lapsed_lines(s: StepState) -> list[str]:
    """Each approval of the gate that no longer counts, and why."""
    return [
        f"{s.id}: {a.operator}'s approval at {a.at[11:16]} lapsed: {a.lapsed}"
        for a in s.approvals or []
        if a.lapsed is not None
    ]


def render_markdown(c: Checklist, now: str | None = None) -> str:
    """The checklist as markdown for the Web UI's current details."""
    lines = [
        f"## {c.title}",
        "",
        f"**State:** {c.state}  ",
        f"**Initiator:** {c.initiator}{proven(c.initiator_proof)}",
    ]
    if c.unplanned_reason:
        lines[-1] += "  "
        lines.append(f"**Unplanned:** {md(c.unplanned_reason)}")
    if c.fence:
        lines[-1] += "  "
        lines.append(
            f"**Fence on {c.fence.side}:** workflow `{c.fence.workflow_id}` (its page, or "
            "`amsm fence`, says whether it still waits)"
        )
    if c.message:
        lines += ["", md(c.message)]
    if c.overrides:
        lines += ["", "**Overrides:**"] + [f"- {md(o.sentence())}" for o in c.overrides]
    waiting = c.awaiting
    if waiting:
        s = waiting[0]
        signal = "approve" if s.status == "awaiting-approval" else "confirm"
        if s.status == "failed" or s.failed_clients:
            signal = "decide"
            payload = f'{{"step": "{s.id}", "action": "retry", "operator": "NAME"}}'
        else:
            payload = f'{{"step": "{s.id}", "operator": "NAME"}}'
        how_long = waited(s.waiting_since, now) if now else ""
        lines += [
            "",
            f"**Waiting for the operator:** `{s.id}`: {s.title}"
            + (f" (waiting {how_long})" if how_long else "")
            + f". Send signal `{signal}` with input `{payload}` or run `{next_action(c)}`.",
        ]
    rows = []
    for i, s in enumerate(c.steps, 1):
        status: str = s.status
        if s.clients:
            done, pending, failed = client_counts(s)
            status += f" ({done}/{len(s.clients)} done, {pending} pending"
            status += f", {failed} failed)" if failed else ")"
        note = s.note or s.error or s.message or ""
        if (approvals := approvals_line(s)) is not None:
            note = f"{approvals}; {note}" if note else approvals
        rows.append([STATUS_MARK[s.status], i, code(s.id), s.kind, status])
        rows[-1] += [(s.operator or "") + (proven(s.proof) if s.operator else ""), note]
    lines += ["", *md_table(["", "#", "step", "kind", "status", "by", "note"], rows)]
    for s in c.steps:
        for x in s.failed_clients:
            lines.append(f"\n- `{s.id}` client **{md(x.host)}** failed: {md(x.error)}")
    lapsed = [x for s in c.steps for x in lapsed_lines(s)]
    if lapsed:
        lines += ["", "**Lapsed approvals:**"] + [f"- {md(x)}" for x in lapsed]
    if c.decisions:
        lines += ["", "**Decisions:**"]
        lines += [
            f"- {d.at} {d.action} {code(d.step)}{' ' + md(d.client) if d.client else ''} by "
            f"{md(d.operator)}{md(proven(d.proof))}: {md(d.reason)}"
            for d in c.decisions
        ]
    if c.rejected:
        lines += ["", "**Rejected signals:**"]
        lines += [
            f"- {r.at} {r.signal} {code(r.step)} by {md(r.operator)}: {md(r.reason)}"
            for r in c.rejected
        ]
    if c.deliveries:
        lines += ["", f"**{told_heading(c)}**"] + [f"- {md(told(d))}" for d in c.deliveries]
    if c.final_state:
        lines += ["", "**Where the devices ended up:**"] + [f"- {md(x)}" for x in c.final_state]
    return "\n".join(lines)


def told_heading(c: Checklist) -> str:
    shown = len(c.deliveries)
    more = f" (the last {shown} of {c.deliveries_total})" if c.deliveries_total > shown else ""
    return f"Told{more}:"


def told(d: Delivery) -> str:
    """One delivery (docs/operators/notifications.md): when, to whom, and what came of it."""
    about = f" {d.step}" if d.step else ""
    result = "delivered" if d.delivered else f"NOT delivered: {d.error or 'no reason given'}"
    return f"{d.at} {d.audience} ({d.kind}{about}): {result}"


def render_text(
    c: Checklist, under: dict[str, list[str]] | None = None, state: str | None = None
) -> str:
    """The checklist on the terminal (`amsm show`); `under`: more lines under a step
    (a dry run's would / refused); `state`: said instead of the run's state (a dry run's
    checklist is of no run)."""
    out = [
        f"{c.title}   run {c.run_id}",
        f"state: {state or c.state}   initiator: {c.initiator}{proven(c.initiator_proof)}",
    ]
    if c.started_at:
        out[-1] += f"   started {c.started_at}"
    if c.ended_at:
        out[-1] += f"   ended {c.ended_at}"
    if c.unplanned_reason:
        out.append(f"unplanned: {c.unplanned_reason}")
    if c.message:
        out.append(c.message)
    out += [o.sentence() for o in c.overrides]
    out.append("")
    width = max(len(s.id) for s in c.steps) if c.steps else 10
    for n, s in enumerate(c.steps, 1):
        by = f"  by {s.operator}{proven(s.proof)}" if s.operator else ""
        note = f"  note: {s.note}" if s.note else ""
        out.append(f"{STATUS_MARK[s.status]} {n:2} {s.id:{width}}  {s.kind:6} {s.status}{by}{note}")
        out += [f"{'':8}{x}" for x in (under or {}).get(s.id, [])]
        if (approvals := approvals_line(s)) is not None:
            out.append(f"{'':8}{approvals}")
            out += [f"{'':8}{x}" for x in lapsed_lines(s)]
        if s.error and s.status == "failed":
            out.append(f"{'':8}error: {s.error}")
        elif s.message and s.status != "pending":
            out.append(f"{'':8}{s.message}")
        if s.clients:
            done, pending, failed = client_counts(s)
            out.append(
                f"{'':8}clients: {done} done, {pending} pending, {failed} failed, "
                f"{len(s.clients)} in all"
            )
            for x in s.clients:
                if x.status == "failed":
                    out.append(f"{'':10}{x.host}: failed: {x.error}")
                elif x.status == "skipped":
                    out.append(f"{'':10}{x.host}: {x.message}")
    waiting = c.awaiting
    if waiting and c.state in ("running", "awaiting-operator"):
        s = waiting[0]
        what = s.title if s.status != "failed" and not s.failed_clients else f"{s.id} failed"
        now = datetime.now(UTC).isoformat(timespec="seconds")
        how_long = f" (waiting {waited(s.waiting_since, now)})" if s.waiting_since else ""
        out += ["", f"Waiting for you: {what}{how_long}.", f"  next: {next_action(c)}"]
    if c.decisions:
        out += ["", "Decisions:"]
        out += [
            f"  {d.at} {d.action} {d.step}{' ' + d.client if d.client else ''} by {d.operator}"
            + proven(d.proof)
            + (f": {d.reason}" if d.reason else "")
            for d in c.decisions
        ]
    if c.rejected:
        out += ["", "Rejected signals:"]
        out += [f"  {r.at} {r.signal} {r.step} by {r.operator}: {r.reason}" for r in c.rejected]
    if c.deliveries:
        out += ["", told_heading(c)] + [f"  {told(d)}" for d in c.deliveries]
    if c.final_state:
        out += ["", "Where the devices ended up:"] + [f"  {x}" for x in c.final_state]
    return "\n".join(out)
