"""The benchmark's verdicts against its goals, and its markdown table."""

from __future__ import annotations

from typing import Any


def _at(results: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    return next((r for r in results if r["clients"] == n), None)


def goals(
    results: list[dict[str, Any]], status: dict[str, Any], limits: dict[str, float]
) -> list[dict[str, Any]]:
    """Each goal with the figure it is judged on; `met` is None when the run lacks it."""
    biggest = max(results, key=lambda r: r["clients"])
    out: list[dict[str, Any]] = []

    def judge(goal: str, figure: str, value: float | None, limit: float) -> None:
        out.append(
            {
                "goal": goal,
                "figure": figure,
                "value": value,
                "limit": limit,
                "met": None if value is None else value <= limit,
            }
        )

    at100, at500 = _at(results, 100), _at(results, 500)
    judge(
        "ratio at N = 100",
        "switch-clients / one client",
        at100["ratio"] if at100 else None,
        limits["ratio_at_100"],
    )
    judge(
        "marginal cost at N = 500",
        "(T(N) - T(1)) / (N - 1), ms",
        at500.get("marginal_ms") if at500 else None,
        limits["marginal_ms_at_500"],
    )
    meds = [r["overhead_ms"]["median"] for r in results if r["overhead_ms"]["median"] is not None]
    judge(
        "orchestration overhead per automated step",
        "median over every run, ms",
        max(meds) if meds else None,
        limits["overhead_ms_median"],
    )
    conf = [
        r["confirm_to_activity_ms"]["median"]
        for r in results
        if r["confirm_to_activity_ms"]["median"] is not None
    ]
    judge(
        "confirm to the next activity starting",
        "median over every run, ms",
        max(conf) if conf else None,
        limits["confirm_ms_median"],
    )
    judge(
        f"parent history at N = {biggest['clients']}",
        "events (Temporal warns at 10,240)",
        biggest["parent_events"],
        limits["parent_events_max"],
    )
    judge(
        f"`amsm status` on {status['devices']} devices",
        "median seconds, a new process each time",
        status["median_seconds"],
        limits["status_seconds"],
    )
    return out


def _f(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Benchmark {result['name']}",
        "",
        f"{result['started_at']}; {m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), "
        f"{m['memory_gb']} GB, Python {m['python']}; lab reboot time R = "
        f"{result['reboot_seconds']:g} s; embedded Temporal dev server (SQLite), lab and "
        "worker on this machine.",
        "",
        "| N | switch-clients s | one client s (median) | ratio | marginal ms/client "
        "| projected ratio (4.5 min reboots) | overhead/auto step ms (median) "
        "| confirm -> activity ms (median) | parent events | largest child events "
        "| worker peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["sizes"]:
        lines.append(
            f"| {r['clients']} | {_f(r['step_seconds'])} | {_f(r['client_seconds_median'])} "
            f"| {_f(r['ratio'])} | {_f(r.get('marginal_ms'), 1)} "
            f"| {_f(r['projected_ratio'], 4)} | {_f(r['overhead_ms']['median'], 1)} "
            f"| {_f(r['confirm_to_activity_ms']['median'], 1)} | {r['parent_events']} "
            f"| {_f(r['largest_child_events'])} | {_f(r['worker_peak_mb'], 1)} |"
        )
    s = result["status"]
    lines += [
        "",
        f"`amsm status` on {s['devices']} devices: median {s['median_seconds']:.2f} s, "
        f"max {s['max_seconds']:.2f} s (first call, with a worker just started: "
        f"{s['first_seconds']:.2f} s).",
        "",
        "| goal | figure | value | limit | met |",
        "|---|---|---:|---:|---|",
    ]
    for g in result["goals"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        lines.append(
            f"| {g['goal']} | {g['figure']} | {_f(g['value'])} | {_f(g['limit'])} | {met} |"
        )
    return "\n".join(lines) + "\n"
