"""Time to serve held against its objective: the inventory's `objectives.time_to_serve`, and
the run report's line (met, missed by how much, not reached), absent without the objective."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from inventory.load import InventoryError, parse_inventory
from records.report import build_report, minutes, served_briefly
from records.report_render import render_html, render_markdown, render_timeline
from tests.support.histories import committed, events_of, run_of, until

DATA = Path(__file__).parent / "data" / "inventory.yaml"
SWITCH = "switch-with-client-decisions.json"  # time to serve 6.7 s


def _inventory(objectives: object) -> str:
    data = yaml.safe_load(DATA.read_text())
    data["objectives"] = objectives
    return yaml.safe_dump(data)


def test_the_objective_is_read_from_the_inventory() -> None:
    inv = parse_inventory(_inventory({"time_to_serve": "20m"}), "inv.yaml")
    assert inv.objectives.time_to_serve == "20m"
    assert inv.objectives.time_to_serve_seconds == 1200
    inv = parse_inventory(_inventory({"time_to_serve": "1h30m15s"}), "inv.yaml")
    assert inv.objectives.time_to_serve_seconds == 5415
    bare = yaml.safe_load(DATA.read_text())
    assert parse_inventory(yaml.safe_dump(bare), "inv.yaml").objectives.time_to_serve is None


@pytest.mark.parametrize(
    ("objectives", "why"),
    [
        ({"time_to_serve": 20}, "objectives.time_to_serve: 20 is not a duration; write it"),
        ({"time_to_serve": "20 minutes"}, "'20 minutes' is not a duration"),
        ({"time_to_serve": "m"}, "'m' is not a duration"),
        ({"time_to_serve": "25h"}, "'25h' is outside 1s to 24h"),
        ({"time_to_serve": "0s"}, "'0s' is outside 1s to 24h"),
        ({"time_to_sever": "20m"}, "objectives.time_to_sever: unknown field"),
    ],
)
def test_a_bad_objective_says_what_is_allowed(objectives: dict, why: str) -> None:
    with pytest.raises(InventoryError) as e:
        parse_inventory(_inventory(objectives), "inv.yaml")
    assert any(why in p for p in e.value.problems), e.value.problems


def test_without_an_objective_the_report_has_no_line_and_no_key() -> None:
    r = build_report(committed(SWITCH))
    assert r.serving.objective is None
    assert "objective" not in json.dumps(r.model_dump(mode="json"))
    assert "Objective" not in render_markdown(r) and "objective" not in render_timeline(r)


def test_a_time_to_serve_within_its_objective_is_met() -> None:
    r = build_report(committed(SWITCH), objective=1200)
    assert r.serving.seconds is not None and 6 < r.serving.seconds < 7
    o = r.serving.objective
    assert o is not None and o.met is True and o.seconds == 1200
    assert o.text == f"time to serve {r.serving.seconds:.1f} s, objective 20 min: met"
    assert f"| Objective | {o.text} |" in render_markdown(r)
    assert f"<tr><th>Objective</th><td>{o.text}</td></tr>" in render_html(r)
    assert o.text in render_timeline(r).splitlines()
    assert r.model_dump(mode="json")["serving"]["objective"]["met"] is True


def test_a_time_to_serve_over_its_objective_is_missed_by_the_difference() -> None:
    r = build_report(committed(SWITCH), objective=3)
    o = r.serving.objective
    assert o is not None and o.met is False and r.serving.seconds is not None
    took, late = f"{r.serving.seconds:.1f} s", f"{r.serving.seconds - 3:.1f} s"
    assert o.text == f"time to serve {took}, objective 3 s: missed by {late}"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(760, "12 min 40 s"), (1200, "20 min"), (3900, "1 h 5 min"), (3601, "1 h 1 s"), (7.04, "7 s")],
)
def test_durations_are_said_in_hours_minutes_and_seconds(seconds: float, said: str) -> None:
    assert minutes(seconds) == said


def test_a_run_not_serving_yet_misses_only_once_it_outlasts_the_objective() -> None:
    events = events_of("switch-x-to-y.json")
    early = build_report(run_of(until(events, 20)), objective=1)  # 0.2 s in, nothing done
    assert early.serving.seconds is None and early.seconds < 1
    o = early.serving.objective
    assert o is not None and (o.met, o.text) == (None, "time to serve not reached, objective 1 s")
    later = build_report(run_of(until(events, 60)), objective=1)  # 1.8 s in, still not
    o = later.serving.objective
    assert later.serving.seconds is None and o is not None and o.met is False
    assert o.text == f"time to serve not reached after {later.seconds:.1f} s, objective 1 s: missed"


def test_a_run_that_does_not_change_the_main_side_has_no_objective_line() -> None:
    child = build_report(committed("client-switch-ed-01.json"), objective=1200)
    assert child.serving.objective is None and "Objective" not in render_markdown(child)


@pytest.mark.parametrize(
    ("seconds", "objective", "met", "said"),
    [
        (6.7, None, None, "6.7 s"),
        (6.7, 1200, True, "6.7 s, met"),
        (1420, 1200, False, "23 min 40 s, missed by 3 min 40 s"),
        (None, 1200, False, "not reached, missed"),
        (None, 1200, None, "-"),
        (None, None, None, "-"),
    ],
)
def test_a_runs_time_to_serve_in_a_list(
    seconds: float | None, objective: float | None, met: bool | None, said: str
) -> None:
    assert served_briefly(seconds, objective, met) == said
