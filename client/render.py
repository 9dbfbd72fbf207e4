"""Text views for the terminal: the pair like the manual's console, and a run's checklist."""

from __future__ import annotations

from datetime import UTC, datetime

from inventory.models import SIDES, Side
from inventory.status import PairStatus
from workflows.models import Checklist

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
        assets = "-" if d.asset_count is None else str(d.asset_count)
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


def render_checklist(c: Checklist) -> str:
    # Imported here: the checklist engine pulls in the workflow SDK, which `amsm status`
    # does not need (every command pays for its imports at start).
    from workflows.checklist import STATUS_MARK, next_action, waited

    out = [f"{c.title}   run {c.run_id}", f"state: {c.state}   initiator: {c.initiator}"]
    if c.started_at:
        out[-1] += f"   started {c.started_at}"
    if c.ended_at:
        out[-1] += f"   ended {c.ended_at}"
    if c.unplanned_reason:
        out.append(f"unplanned: {c.unplanned_reason}")
    if c.message:
        out.append(c.message)
    out.append("")
    width = max(len(s.id) for s in c.steps) if c.steps else 10
    for n, s in enumerate(c.steps, 1):
        by = f"  by {s.operator}" if s.operator else ""
        note = f"  note: {s.note}" if s.note else ""
        out.append(f"{STATUS_MARK[s.status]} {n:2} {s.id:{width}}  {s.kind:6} {s.status}{by}{note}")
        if s.error and s.status == "failed":
            out.append(f"{'':8}error: {s.error}")
        elif s.message and s.status != "pending":
            out.append(f"{'':8}{s.message}")
        if s.clients:
            done = sum(1 for x in s.clients if x.status == "done")
            out.append(
                f"{'':8}clients: {done} done, {s.pending_clients} pending, "
                f"{len(s.failed_clients)} failed, {len(s.clients)} in all"
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
            + (f": {d.reason}" if d.reason else "")
            for d in c.decisions
        ]
    if c.rejected:
        out += ["", "Rejected signals:"]
        out += [f"  {r.at} {r.signal} {r.step} by {r.operator}: {r.reason}" for r in c.rejected]
    if c.final_state:
        out += ["", "Where the devices ended up:"] + [f"  {x}" for x in c.final_state]
    return "\n".join(out)
