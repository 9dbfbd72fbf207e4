"""On-air blackout windows, as a run sees them: the concrete intervals the worker
expanded from the inventory (inventory/blackout.py, handed over in the run's
capabilities) and the pure questions asked of them. No rule is parsed here and no
clock is read: the caller passes the instant (workflow.now() in a workflow).

`window_at` and `next_window` are the one check a scheduled run, a start and a client's
restart ask (docs/operators/blackout.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from inventory.blackout import Window
from inventory.rules import RULE_NO_SWITCH_IN_BLACKOUT

# Runs that started before blackout windows were checked replay without the check (it is
# reached only when the inventory has windows, which no committed history had).
PATCH = "blackout-windows"
DOCS = "docs/operators/blackout.md"


def window_at(windows: Sequence[Window], instant: datetime) -> Window | None:
    """The window `instant` falls in ([start, end)), the one ending last if several do."""
    hits = [w for w in windows if w.start <= instant < w.end]
    return max(hits, key=lambda w: w.end) if hits else None


def next_window(windows: Sequence[Window], instant: datetime) -> Window | None:
    """The first window that begins after `instant`, or None within the horizon."""
    later = [w for w in windows if w.start > instant]
    return min(later, key=lambda w: w.start) if later else None


def clear_at(windows: Sequence[Window], instant: datetime) -> datetime:
    """The first instant from `instant` on that is in no window (windows that touch or
    overlap are one stretch)."""
    at = instant
    while (w := window_at(windows, at)) is not None:
        at = w.end
    return at


def local(t: datetime) -> str:
    """A window's time as the site reads it: "18:40 +01:00" (the inventory's time zone)."""
    off = t.strftime("%z")
    return f"{t:%H:%M} {off[:3]}:{off[3:]}" if off else f"{t:%H:%M}"


def local_day(t: datetime) -> str:
    return f"{t:%Y-%m-%d} {local(t)}"


def refusal(w: Window, reason: str = "--override-reason") -> str:
    """A start (or a control that restarts clients: `reason`, its flag) refused inside
    window `w`."""
    return (
        f"rule '{RULE_NO_SWITCH_IN_BLACKOUT}': on air: {w.name} until {local(w.end)}; "
        f"no switch starts and no client restarts in a blackout window ({DOCS}); "
        f"wait for its end, or override: --override {RULE_NO_SWITCH_IN_BLACKOUT} {reason} TEXT"
    )


def forced(w: Window) -> str:
    """What an override of the rule forced."""
    return f"started on air during {w.name} (until {local(w.end)})"


def held(w: Window, until: datetime) -> str:
    """A client's restart held by window `w` until `until` (its end, or a later window's)."""
    return f"held for {w.name} until {local(until)}"


def next_sentence(windows: Sequence[Window], instant: datetime) -> str | None:
    """When the next window begins, or the one on air now ends; None without windows."""
    now = window_at(windows, instant)
    if now is not None:
        return f"on air now: {now.name} until {local_day(now.end)}"
    nxt = next_window(windows, instant)
    if nxt is None:
        return None
    return f"next blackout: {nxt.name} at {local_day(nxt.start)} until {local(nxt.end)}"
