"""The readiness watch's pure parts: `since`, the line `amsm status` shows, its JSON, the
inventory's interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from activities.readiness import ERROR_TEXT, NAMED, Readiness, carry_since
from api.readiness import ReadinessView, at, every, readiness_line
from inventory.load import InventoryError, parse_inventory
from inventory.models import Timing, readiness_schedule_id
from inventory.status import AllSyncStatus, DsmStatus, InSyncStatus, PairStatus
from workflows.check import CheckFinding, CheckResult
from workflows.readiness import ReadinessInput
from workflows.readiness import verdict as decide

NOW = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)
FOUR = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "inventory.yaml"


def verdict(
    ready: bool, problems: int = 0, at: datetime = FOUR, since: datetime = FOUR
) -> Readiness:
    return Readiness(ready=ready, problems=problems, checked_at=at, since=since)


def pair(x_mode: str, y_mode: str) -> PairStatus:
    def dsm(side: str, mode: str, rep: str, role: str) -> DsmStatus:
        return DsmStatus(
            host=f"dsm-{side.lower()}", side=side, mode=mode, replication=rep, role=role
        )  # type: ignore[arg-type]

    main = x_mode == "main"
    return PairStatus(
        pair="p",
        read_at="now",
        dsm={
            "X": dsm("X", x_mode, "running", "master" if main else "backup"),
            "Y": dsm("Y", y_mode, "running", "backup" if main else "master"),
        },
        smartbins=[],
        browse=[],
        clients=[],
        insync=InSyncStatus(host="cp"),
        allsync=AllSyncStatus(),
    )


def on(last: Readiness | None, interval: float = 3600) -> ReadinessView:
    return ReadinessView(schedule_id="amsm-p-readiness", on=True, interval=interval, last=last)


def test_since_moves_only_when_ready_turns() -> None:
    five = FOUR + timedelta(hours=1)
    assert carry_since(None, True, FOUR) == FOUR  # the first check
    assert carry_since(verdict(True), True, five) == FOUR
    assert carry_since(verdict(True), False, five) == five
    assert (
        carry_since(verdict(False, 3), False, five) == FOUR
    )  # 3 problems, then 5: still not ready
    assert carry_since(verdict(False, 3), True, five) == five


def test_the_status_line_names_the_switchs_target_the_count_and_since() -> None:
    mirrored_x = pair("main", "backup")
    line = readiness_line(on(verdict(True)), mirrored_x, NOW)
    assert line == "readiness: ready for a switch to Y (checked 04:00)"
    # After a switch the target is the other side: the side letters of the moment.
    assert "ready for a switch to X" in readiness_line(
        on(verdict(True)), pair("backup", "main"), NOW
    )
    # Split (both main): no switch to name.
    assert readiness_line(on(verdict(True)), pair("main", "main"), NOW) == (
        "readiness: ready (checked 04:00)"
    )
    late = NOW - timedelta(minutes=5)
    bad = readiness_line(on(verdict(False, 3, at=late)), mirrored_x, NOW)
    assert bad.startswith("readiness: not ready: 3 problems, since 04:00 (checked 05:25")
    one = readiness_line(on(verdict(False, 1, at=late)), mirrored_x, NOW)
    assert "not ready: 1 problem, since" in one
    assert readiness_line(ReadinessView(schedule_id="s"), mirrored_x, NOW) == "readiness: off"
    assert "the first check has not ended yet" in readiness_line(on(None), mirrored_x, NOW)
    failed = Readiness(ready=False, problems=1, error="no worker", checked_at=late, since=FOUR)
    assert "not ready: the check did not run (no worker), since 04:00" in readiness_line(
        on(failed), mirrored_x, NOW
    )
    unread = ReadinessView(schedule_id="s", error="cannot read s: timeout")
    assert readiness_line(unread, mirrored_x, NOW) == "readiness: unknown: cannot read s: timeout"


def test_a_paused_watch_says_so_instead_of_overdue() -> None:
    old = on(verdict(True, at=NOW - timedelta(hours=3)))
    old.paused = True
    line = readiness_line(old, None, NOW)
    assert "PAUSED: no check runs (amsm readiness on resumes it)" in line and "OVERDUE" not in line
    assert old.to_json()["paused"] is True  # type: ignore[index]


def test_a_verdict_two_intervals_old_is_overdue() -> None:
    old = verdict(True, at=NOW - timedelta(hours=2, minutes=1))
    assert "OVERDUE" in readiness_line(on(old), None, NOW)
    assert "OVERDUE" not in readiness_line(
        on(verdict(True, at=NOW - timedelta(hours=1))), None, NOW
    )
    assert "OVERDUE" not in readiness_line(on(old, interval=7200), None, NOW)


def test_the_json_object_and_null_when_off() -> None:
    assert ReadinessView(schedule_id="s").to_json() is None
    data = on(verdict(False, 3, at=NOW)).to_json()
    assert data == {
        "ready": False,
        "problems": 3,
        "checked_at": NOW.isoformat(),
        "since": FOUR.isoformat(),
        "interval": 3600,
        "paused": False,
        "error": None,
    }
    unread = ReadinessView(schedule_id="s", error="cannot read s: timeout").to_json()
    assert unread is not None and unread["ready"] is None and unread["error"]


def test_times_and_intervals_read_as_a_person_writes_them() -> None:
    assert at(FOUR, NOW) == "04:00"
    assert at(FOUR - timedelta(days=1), NOW) == "2026-11-30 04:00"
    assert (every(3600), every(5400), every(90)) == ("1 h", "90 min", "90 s")


def test_the_interval_defaults_to_an_hour_and_is_bounded() -> None:
    assert Timing().readiness_interval == 3600
    assert readiness_schedule_id("studio-a") == "amsm-studio-a-readiness"
    for bad, why in ((30, "greater than or equal to 60"), (8 * 86400, "less than or equal to")):
        data = yaml.safe_load(DATA.read_text())
        data.setdefault("timing", {})["readiness_interval"] = bad
        with pytest.raises(InventoryError) as e:
            parse_inventory(yaml.safe_dump(data), "inv.yaml")
        assert any(
            p.startswith("timing.readiness_interval:") and why in p for p in e.value.problems
        )


def finding(host: str, check: str) -> CheckFinding:
    return CheckFinding(host=host, check=check, expected="e", found="f", fix="x", steps=[])


def test_the_verdict_of_a_check_and_of_a_check_that_did_not_run() -> None:
    many = [finding(f"ED-{n:02}", "client-answers") for n in range(NAMED + 2)]
    result = CheckResult(
        pair="p", ready=False, problems=many, warnings=[finding("cp", "clock")], hosts=30
    )
    v = decide(result, None, verdict(True), NOW)
    assert (v.ready, v.problems, v.warnings, v.hosts) == (False, NAMED + 2, 1, 30)
    assert v.named[0] == "ED-00: client-answers: f" and len(v.named) == NAMED
    assert v.checked_at == v.since == NOW and v.error is None
    # Fail closed: a check that did not run is not ready, one problem, its error.
    failed = decide(None, "check_plan: this worker serves pair 'q'", verdict(False, 3), NOW)
    assert (failed.ready, failed.problems, failed.since) == (False, 1, FOUR)
    assert failed.error == "check_plan: this worker serves pair 'q'"
    clean = decide(
        CheckResult(pair="p", ready=True, problems=[], warnings=[], hosts=3), None, None, NOW
    )
    assert clean.ready and clean.problems == 0 and clean.since == NOW


def test_a_verdict_is_bounded_where_it_travels() -> None:
    long = decide(None, "x" * 5000, None, NOW)
    assert long.error is not None and len(long.error) <= ERROR_TEXT
    with pytest.raises(ValidationError):
        ReadinessInput(pair="p", last={**verdict(True).model_dump(), "named": ["a"] * (NAMED + 1)})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ReadinessInput.model_validate({"pair": "p", "password": "x"})  # unknown fields refused
