"""Text views that several commands print: the pair like the manual's console (`status`,
`status --watch`), the pair's fence (`fence`, `status`, `show`), a run (`show`, each
frame of `watch`: one drawing of the run on the terminal) and the pair's scheduled runs
(`schedule list`, `status`). A run's checklist is drawn beside its Web UI view, in
workflows/view.py."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from api.fence import FenceView
from api.show import RunView
from inventory.models import SIDES, Side
from inventory.status import PairStatus
from wire.fences import Squatter
from workflows.models import Checklist
from workflows.schedule import ScheduleState
from workflows.view import render_text

LED = {True: "●", False: "○", None: "?"}


def render_status(st: PairStatus) -> str:
    mode, main, reason = st.derived
    out: list[str] = []
    head = {"mirrored": f"MIRRORED, {main} main", "split": "SPLIT", "inconsistent": "INCONSISTENT"}[
        mode
    ]
    out.append(f"Pair {st.pair}: {head}   (read {st.read_at})")
    if mode == "inconsistent":
        out.append(f"  why: {reason}")
    out.append("")
    for side in SIDES:
        d = st.dsm[side]
        strip = "main" if d.mode == "main" else ("backup" if d.mode == "backup" else "unknown")
        lit = LED[True] if d.mode == "main" else LED[False]
        out.append(f"  {side} {lit} {strip.upper():7}")
    out.append("")
    out.append("DSM replicator")
    for side in SIDES:
        d = st.dsm[side]
        assets = d.assets_text
        out.append(
            f"  {side}  {d.host:12} mode {str(d.mode or '-'):7} {d.state_text:28} "
            f"replication {d.replication_text:28} assets {assets}"
        )
        if d.error:
            out.append(f"      {d.error}")
    out.append("")
    active = st.browse_active_on
    out.append("Aurora Browse: " + (f"Active on {active}" if active else "not active on one side"))
    for b in st.browse:
        run = "running" if b.running else ("unreachable" if not b.reachable else "stopped")
        out.append(f"  {LED[b.running]} {b.name:12} {b.host:12} side {b.side or '?'}  {run}")
        if b.error:
            out.append(f"      {b.error}")
    out.append("")
    out.append("SmartBins")
    for s in st.smartbins:
        role = " (PseudoSmartBins host)" if s.pseudo_host else ""
        run = "running" if s.running else ("unreachable" if not s.reachable else "stopped")
        out.append(f"  {s.side}  {s.host:12} {run:11} mode {s.mode or '-'}{role}")
    out.append("")
    out.append("Switchable clients")
    where: list[Side | None] = [*SIDES, None]
    for on in where:
        hosts = [c for c in st.clients if c.side == on]
        if not hosts:
            continue
        label = f"on {on}" if on else "side unknown"
        items = ", ".join(
            c.host + ("" if c.status == "online" else f" ({c.status})") for c in hosts
        )
        out.append(f"  {label:13} {len(hosts):3}: {items}")
    out.append("")
    i = st.insync
    direction = f"{i.main} -> {'Y' if i.main == 'X' else 'X'}" if i.main else "unknown"
    run = "running" if i.running else ("unreachable" if not i.reachable else "stopped")
    out.append(f"InSync   {i.host}: direction {direction}, {run}")
    nas = ", ".join(f"{s}'s NAS head" for s in st.allsync.running_on) or "nowhere"
    out.append(f"AllSync  running on {nas}")
    for host, err in st.allsync.errors.items():
        out.append(f"  {host}: {err}")
    return "\n".join(out)


def render_fence(v: FenceView) -> str:
    st = v.state
    head = f"Fence on {st.side} ({v.workflow_id}): {st.status}"
    lines = [head, f"  {st.message or ''}"]
    if st.status == "waiting":
        if v.tries:
            lines.append(f"  tries: {v.tries}; last answer: {v.last_error or 'none yet'}")
        if v.next_try:
            lines.append(f"  next try: {v.next_try:%Y-%m-%d %H:%M:%S} UTC")
        lines.append('  end it by hand: amsm fence end --reason "..."')
    for d in st.details:
        lines.append(f"  - {d}")
    lines.append(
        f"  started {st.started_at} by {st.started_by} for: {st.reason}"
        + (f"; ended {st.ended_at}" if st.ended_at else "")
    )
    if st.ended_proof:
        lines.append(f"  ended by {st.ended_by} ({st.ended_proof})")
    return "\n".join(lines)


def render_squatters(squatters: Sequence[Squatter]) -> str:
    """The workflows that hold the fence's id or say they are the pair's fence and that amsm
    did not start: not believed, and the command that removes each
    (docs/operators/unplanned.md)."""
    lines = []
    for s in squatters:
        lines += [
            f"Squatter {s.workflow_id} (run {s.run_id}): ignored, {s.why}",
            f"  it blocks nothing; remove it: {s.remedy}",
        ]
    return "\n".join(lines)


def render_run(view: RunView, stages: dict[str, str] | None = None) -> str:
    """A run's checklist as text, and its fence's: what `amsm show` prints and what
    `amsm watch` draws again at each read. `stages`: each switching client's stage, asked
    of its child workflow (`watch` asks; under its step, a line per client switching, its
    stage "switching" until its child answers)."""
    under = switching(view.checklist, stages) if stages is not None else None
    text = render_text(view.checklist, under)
    fence = view.checklist.fence
    if fence is not None:
        shown = view.fence_state
        text += "\n\n" + (render_fence(shown) if shown else f"fence {fence.workflow_id}: not found")
    return text


def switching(c: Checklist, stages: dict[str, str]) -> dict[str, list[str]]:
    """Under each client step, a line per client switching now, with its stage."""
    return {
        s.id: [f"  {x.host}: {stages.get(x.host, 'switching')}" for x in switching_now]
        for s in c.steps
        if (switching_now := [x for x in s.clients or [] if x.status == "switching"])
    }


def render_scheduled(found: list[ScheduleState], zone: ZoneInfo) -> str:
    """The scheduled runs that wait, soonest first, their times in the facility's zone;
    "" when none."""
    if not found:
        return ""
    out = ["Scheduled runs"]
    for s in found:
        at, end = s.at.astimezone(zone), s.window_end.astimezone(zone)
        out.append(
            f"  {s.schedule_id}  {s.what} at {at:%Y-%m-%d %H:%M %Z} (window until "
            f"{end:%H:%M}), by {s.initiator}"
            + (f" ({s.proof})" if s.proof else "")
            + f", filed {s.filed.astimezone(zone):%Y-%m-%d %H:%M}"
        )
        if s.reason:
            out.append(f"      reason: {s.reason}")
        for found_then in (s.dry_run, s.check):
            if found_then:
                out.append(f"      {found_then}")
        if s.why:
            out.append(f"      not started yet: {s.why}")
    out.append("  cancel one: amsm schedule cancel ID --reason TEXT")
    return "\n".join(out)
