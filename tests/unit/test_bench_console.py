"""The console benchmark's spreads and verdicts, on numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bench import console


def test_spread_is_min_median_max_of_the_repetitions() -> None:
    assert console.spread([0.3, 0.1, 0.2, 0.9]) == {
        "min": 0.1,
        "median": 0.25,
        "max": 0.9,
        "runs": [0.3, 0.1, 0.2, 0.9],
    }
    assert console.spread([])["median"] is None


def _result(
    worker_none: float, worker_many: float, changes: list[float], recorded: float = 0.5
) -> dict[str, Any]:
    def cpu(median: float) -> dict[str, Any]:
        return {"worker": {"median": median}}

    return {
        "devices": 200,
        "first_page": [
            {"shown_seconds": {"median": 0.4}},
            {"shown_seconds": {"median": 0.7}},
        ],
        "step_change": [
            {
                "pages": 20,
                "by_step": {f"s{i}": v for i, v in enumerate(changes)},
                "recorded": {"a:done": 0.2, "b:done": recorded},
            }
        ],
        "cpu": {"0": cpu(worker_none), "1": cpu(worker_none), "20": cpu(worker_many)},
    }


def test_goals_judge_the_slower_page_the_slowest_change_and_the_cpu_increase() -> None:
    first, change, recorded, worker = console.goals(_result(2.0, 2.1, [0.4, 0.9, 0.6]))
    assert (first["value"], first["met"]) == (0.7, True)
    assert (change["value"], change["met"]) == (0.9, True)
    assert change["goal"] == "step change to 20 open page(s)"
    assert (recorded["value"], recorded["met"]) == (0.5, True)
    assert worker["goal"] == "worker CPU with 20 pages open vs none"
    assert worker["value"] == pytest.approx(0.05) and worker["met"] is True

    _, change, recorded, worker = console.goals(_result(2.0, 2.4, [0.4, 1.2], recorded=1.5))
    assert (recorded["value"], recorded["met"]) == (1.5, False)
    assert (change["value"], change["met"]) == (1.2, False)
    assert worker["value"] == pytest.approx(0.2) and worker["met"] is False


def test_a_worker_that_used_no_cpu_at_all_is_not_judged() -> None:
    *_, worker = console.goals(_result(0.0, 0.1, [0.5]))
    assert worker["value"] is None and worker["met"] is None


def test_bad_arguments_are_refused_with_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        console.main(["--pages", "1,x"])
    assert e.value.code == 2
    assert "--pages takes numbers like 1,5,20" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        console.main(["--devices", "5"])
    assert "--devices takes a number from 20 to 1000" in capsys.readouterr().err


def test_recorded_changes_from_the_servers_record_to_the_last_page() -> None:
    since = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    steps = [
        {"id": "early", "kind": "auto"},  # done before the pages opened: not counted
        {"id": "auto", "kind": "auto"},
        {"id": "gate", "kind": "gate"},
        # one page never showed it waiting (two changes within one read): left out
        {"id": "man", "kind": "manual"},
        {"id": "unrecorded", "kind": "auto"},  # no record: left out
    ]
    s0 = since.timestamp()
    # When the run's records of each change were written (the server's clock, ms).
    written = {
        "early:done": s0 - 1,
        "auto:done": s0 + 2.2,
        "gate:awaiting-approval": s0 + 3.05,
        "man:awaiting-confirmation": s0 + 4.0,
    }
    t = s0 * 1000
    pages = [
        {"r:auto:done": t + 2300, "r:gate:awaiting-approval": t + 3400,
         "r:man:awaiting-confirmation": t + 4100, "r:early:done": t, "r:unrecorded:done": t},
        {"r:auto:done": t + 2600, "r:gate:awaiting-approval": t + 3200, "r:early:done": t,
         "r:unrecorded:done": t},
    ]  # fmt: skip
    got = console.recorded_changes("r", steps, pages, since, written)
    assert got.keys() == {"auto:done", "gate:awaiting-approval"}
    assert got["auto:done"] == pytest.approx(0.4)  # the last page, from the record
    assert got["gate:awaiting-approval"] == pytest.approx(0.35)
