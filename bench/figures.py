"""The benchmark's figures, computed from a run's history (pure functions, unit-tested).

Times come from the history's events (the server's clock) and from the operator's
clock for when a confirmation was sent; both run on the same machine.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from records.history import RunHistory
from records.reconstruct import reconstruct

# Real hardware: a K2 client restart takes about 4.5 minutes, twice per switch.
REAL_REBOOT_SECONDS = 270.0


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def switch_clients(run: RunHistory) -> dict[str, Any]:
    """The `switch-clients` step: its wall time and each client's own switch time."""
    rec = reconstruct(run)
    step = rec.step("switch-clients")
    if step.seconds is None:
        raise ValueError("switch-clients did not finish in this history")
    own = [c.seconds for c in step.clients or [] if c.seconds is not None]
    if not own:
        raise ValueError("switch-clients switched no client in this history")
    return {
        "step_seconds": step.seconds,
        "client_seconds_median": statistics.median(own),
        "client_seconds_min": min(own),
        "client_seconds_max": max(own),
        "clients_switched": len(own),
    }


def ratio(step_seconds: float, one_client_seconds: float) -> float:
    """How many times one client's switch the whole step took (1.0 is perfect fan-out)."""
    return step_seconds / one_client_seconds


def marginal_ms(t_n: float, t_1: float, n: int) -> float | None:
    """(T(N) - T(1)) / (N - 1), in milliseconds: what each added client costs."""
    if n <= 1:
        return None
    return (t_n - t_1) / (n - 1) * 1000


def projected_ratio(step_seconds: float, client_seconds: float, lab_reboot_seconds: float) -> float:
    """The ratio on real hardware: the same fan-out overhead over a real client switch.

    The overhead (step time minus one client's time) does not depend on how long the
    reboots take; a real client's switch is this run's, with two real reboots in place
    of two lab reboots.
    """
    overhead = step_seconds - client_seconds
    real_client = client_seconds + 2 * (REAL_REBOOT_SECONDS - lab_reboot_seconds)
    return (real_client + overhead) / real_client


def step_overheads_ms(run: RunHistory) -> dict[str, float]:
    """Per automated step: its wall time minus the time its activities ran, in ms.

    What is left is orchestration: scheduling, the worker picking the task up, the
    workflow task that records the result and moves on.
    """
    rec = reconstruct(run)
    out: dict[str, float] = {}
    for s in rec.steps:
        if s.kind != "auto" or s.status != "done" or s.seconds is None or s.clients:
            continue
        acts = [a for a in run.activities if a.step == s.id]
        if not acts:
            continue
        busy = 0.0
        for a in acts:
            if a.started_at is None or a.ended_at is None:
                break
            busy += (a.ended_at - a.started_at).total_seconds()
        else:
            out[s.id] = (s.seconds - busy) * 1000
    return out


def confirm_latencies_ms(run: RunHistory, sent: dict[str, datetime]) -> dict[str, float]:
    """From the operator sending a confirm/approve to the next activity starting, in ms.

    Only where the workflow starts an activity right after the confirmation (the
    verification of a manual step, or the first activity of the next automated step);
    a confirmation followed by another manual step has no such activity.
    """
    reconstruct(run)  # judges each signal (accepted or not)
    out: dict[str, float] = {}
    taken = sorted(
        (s for s in run.signals if s.name in ("confirm", "approve") and s.verdict == "accepted"),
        key=lambda s: s.event_id,
    )
    later = [s.event_id for s in taken[1:]] + [10**12]
    for sig, stop in zip(taken, later, strict=True):
        when = sent.get(sig.step)
        if when is None:
            continue
        nxt = [a for a in run.activities if sig.event_id < a.scheduled_event < stop]
        first = min(nxt, key=lambda a: a.scheduled_event, default=None)
        if first is None or first.started_at is None:
            continue
        out[sig.step] = (first.started_at - when).total_seconds() * 1000
    return out


def summary(values: dict[str, float]) -> dict[str, Any]:
    vals = list(values.values())
    return {
        "median": _median(vals),
        "max": max(vals) if vals else None,
        "count": len(vals),
        "by_step": {k: round(v, 1) for k, v in values.items()},
    }
