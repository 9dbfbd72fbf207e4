"""The benchmark's arithmetic and verdicts, on numbers worked out by hand."""

from __future__ import annotations

import pytest

from bench import figures, report


def test_ratio_marginal_and_projection() -> None:
    assert figures.ratio(30.0, 20.0) == 1.5
    assert figures.marginal_ms(34.0, 14.0, 501) == pytest.approx(40.0)
    assert figures.marginal_ms(14.0, 14.0, 1) is None
    # 6 s of fan-out overhead over a real switch: 14 s in the lab with two 3 s restarts
    # becomes 14 + 2 * (270 - 3) = 548 s.
    assert figures.projected_ratio(20.0, 14.0, 3.0) == pytest.approx((548 + 6) / 548)


def test_summary() -> None:
    s = figures.summary({"a": 10.0, "b": 30.0, "c": 20.0})
    assert (s["median"], s["max"], s["count"]) == (20.0, 30.0, 3)
    assert figures.summary({})["median"] is None


def _size(n: int, ratio: float, marginal: float | None, events: int) -> dict:
    return {
        "clients": n,
        "ratio": ratio,
        "marginal_ms": marginal,
        "parent_events": events,
        "overhead_ms": {"median": 12.0},
        "confirm_to_activity_ms": {"median": 300.0},
    }


def test_goals_judge_each_figure_and_say_what_was_not_measured() -> None:
    results = [_size(1, 1.0, None, 170), _size(100, 1.4, 30.0, 200)]
    status = {"devices": 200, "median_seconds": 2.5}
    goals = {
        g["goal"]: g
        for g in report.goals(
            results,
            status,
            {
                "ratio_at_100": 1.5,
                "marginal_ms_at_500": 40.0,
                "overhead_ms_median": 50.0,
                "confirm_ms_median": 250.0,
                "parent_events_max": 10240,
                "status_seconds": 2.0,
            },
        )
    }
    assert goals["ratio at N = 100"]["met"] is True
    assert goals["marginal cost at N = 500"]["met"] is None  # no N = 500 in this run
    assert goals["orchestration overhead per automated step"]["met"] is True
    assert goals["confirm to the next activity starting"]["met"] is False
    assert goals["parent history at N = 100"]["value"] == 200
    assert goals["`amsm status` on 200 devices"]["met"] is False


@pytest.mark.parametrize("argv", [["--clients", "0"], ["--activities", "0"], ["--seconds", "-1"]])
def test_bare_fan_out_refuses_bad_sizes(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import bare

    assert bare.main(argv) == 2
    assert "--clients 1..1000" in capsys.readouterr().err
