"""On-air blackout windows: the inventory's rules and .ics files expanded into concrete
windows (inventory/blackout.py), daylight saving at both edges as RFC 5545 says, the
pure questions a run asks of them (workflows/blackout.py) and the inventory's errors."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from activities.models import Capabilities
from api.readiness import ReadinessView
from api.refusal import Refused
from api.start import start_input
from client.commands.check import render_check
from client.commands.readiness import render
from inventory.blackout import Blackout, BlackoutError, expand
from inventory.load import InventoryError, parse_inventory
from workflows import blackout
from workflows.check import CheckResult
from workflows.readiness import verdict

DATA = Path(__file__).parent / "data" / "inventory.yaml"
LONDON = "Europe/London"


def windows(rule: str, length: str, tz: str, since: datetime, days: int = 2) -> list:
    w = [Blackout(name="Night news", rrule=rule, duration=length)]
    return expand(w, tz, Path("."), since, since + timedelta(days=days))


def test_a_daily_rule_gives_one_window_a_day_in_local_time() -> None:
    since = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    got = windows("FREQ=DAILY;BYHOUR=18;BYMINUTE=0", "40m", "Europe/Paris", since)
    assert [(w.start.isoformat(), w.end.isoformat()) for w in got] == [
        ("2026-12-07T18:00:00+01:00", "2026-12-07T18:40:00+01:00"),
        ("2026-12-08T18:00:00+01:00", "2026-12-08T18:40:00+01:00"),
    ]
    # 17:00 UTC is 18:00 in Paris in December.
    assert got[0].start == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)


def test_a_window_on_air_at_the_start_of_the_expansion_is_kept() -> None:
    since = datetime(2026, 12, 7, 17, 20, tzinfo=UTC)  # 18:20 in Paris, on air
    got = windows("FREQ=DAILY;BYHOUR=18;BYMINUTE=0", "40m", "Europe/Paris", since, days=1)
    assert got[0].start.isoformat() == "2026-12-07T18:00:00+01:00"
    assert blackout.window_at(got, since) == got[0]


def test_spring_forward_a_nonexistent_local_time_takes_the_offset_before_the_gap() -> None:
    # 29 March 2026: London goes from 01:00 GMT to 02:00 BST; 01:30 does not exist.
    # RFC 5545 3.3.5: taken with the offset before the gap, +00:00: 01:30 UTC, which
    # the site's clocks show as 02:30 BST.
    since = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    got = windows("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "40m", LONDON, since)
    first, second = got
    assert first.start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert first.start.isoformat() == "2026-03-29T02:30:00+01:00"
    assert first.end - first.start == timedelta(minutes=40)
    # The day after is an ordinary BST day.
    assert second.start.isoformat() == "2026-03-30T01:30:00+01:00"


def test_fall_back_an_ambiguous_local_time_is_its_first_occurrence() -> None:
    # 25 October 2026: London goes from 02:00 BST back to 01:00 GMT; 01:30 happens
    # twice. RFC 5545 3.3.5: the first, 01:30 BST (00:30 UTC), once, not twice.
    since = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    got = windows("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "40m", LONDON, since)
    first, second = got
    assert first.start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert first.start.isoformat() == "2026-10-25T01:30:00+01:00"
    # 40 minutes of elapsed time: it ends at 01:10 GMT, after the clocks went back.
    assert first.end.isoformat() == "2026-10-25T01:10:00+00:00"
    assert first.end - first.start == timedelta(minutes=40)
    assert second.start.isoformat() == "2026-10-26T01:30:00+00:00"
    assert blackout.local(first.end) == "01:10 +00:00"


def test_a_weekly_rule_and_until_in_utc() -> None:
    since = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # a Monday
    got = windows(
        "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=12;BYMINUTE=30;UNTIL=20261210T000000Z",
        "1h",
        LONDON,
        since,
        days=14,
    )
    assert [w.start.isoformat() for w in got] == [
        "2026-12-07T12:30:00+00:00",
        "2026-12-09T12:30:00+00:00",
    ]


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Newsroom//Planning//EN
BEGIN:VTIMEZONE
TZID:Europe/London
BEGIN:STANDARD
DTSTART:19701025T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T010000
TZOFFSETFROM:+0000
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:news-at-six@newsroom
SUMMARY:News at Six
DTSTART;TZID=Europe/London:20260601T180000
DTEND;TZID=Europe/London:20260601T184000
RRULE:FREQ=DAILY
EXDATE;TZID=Europe/London:20261208T180000
END:VEVENT
BEGIN:VEVENT
UID:election@newsroom
SUMMARY:Election special
DTSTART:20261209T200000Z
DURATION:PT3H
END:VEVENT
END:VCALENDAR
"""


def test_an_ics_file_with_tzid_rrule_exdate_and_a_single_event(tmp_path: Path) -> None:
    (tmp_path / "news.ics").write_text(ICS)
    w = [Blackout(name="Planning", ics="news.ics")]
    since = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    got = expand(w, LONDON, tmp_path, since, since + timedelta(days=3))
    assert [(x.start.isoformat(), x.end.isoformat()) for x in got] == [
        ("2026-12-07T18:00:00+00:00", "2026-12-07T18:40:00+00:00"),
        # 8 December is an EXDATE
        ("2026-12-09T18:00:00+00:00", "2026-12-09T18:40:00+00:00"),
        ("2026-12-09T20:00:00+00:00", "2026-12-09T23:00:00+00:00"),
    ]
    assert {x.name for x in got} == {"Planning"}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not a calendar", "is not an iCalendar file"),
        ("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", "has no VEVENT"),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART:20261207T180000Z\nEND:VEVENT\n"
            "END:VCALENDAR\n",
            "no DTEND or DURATION",
        ),
    ],
)
def test_a_bad_ics_file_names_the_window_and_what_is_wrong(
    tmp_path: Path, content: str, why: str
) -> None:
    (tmp_path / "bad.ics").write_text(content)
    since = datetime(2026, 12, 7, tzinfo=UTC)
    with pytest.raises(BlackoutError) as e:
        expand([Blackout(name="Planning", ics="bad.ics")], LONDON, tmp_path, since, since)
    assert "blackout window 'Planning'" in str(e.value)
    assert why in str(e.value)


def test_a_missing_ics_file_is_named() -> None:
    since = datetime(2026, 12, 7, tzinfo=UTC)
    with pytest.raises(BlackoutError, match="cannot read .*nowhere.ics"):
        expand([Blackout(name="P", ics="nowhere.ics")], LONDON, Path("/tmp"), since, since)


def inventory_problems(**fields: object) -> list[str]:
    data = yaml.safe_load(DATA.read_text())
    data.update(fields)
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    return e.value.problems


def test_the_inventory_takes_windows_and_a_time_zone() -> None:
    data = yaml.safe_load(DATA.read_text())
    data["timezone"] = LONDON
    data["blackout"] = [
        {"name": "News at Six", "rrule": "FREQ=DAILY;BYHOUR=18;BYMINUTE=0", "duration": "40m"},
        {"name": "Planning", "ics": "planning/news.ics"},
    ]
    inv = parse_inventory(yaml.safe_dump(data))
    assert inv.timezone == LONDON
    assert [b.name for b in inv.blackout] == ["News at Six", "Planning"]
    assert parse_inventory(DATA.read_text()).timezone == "UTC"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (
            {"name": "News", "rrule": "FREQ=SOMETIMES", "duration": "40m"},
            "blackout[0]: window 'News': rrule 'FREQ=SOMETIMES' is not an RFC 5545 "
            "recurrence rule such as FREQ=DAILY;BYHOUR=18;BYMINUTE=0",
        ),
        (
            {"name": "News", "rrule": "FREQ=DAILY", "duration": "forty"},
            "window 'News': duration: 'forty' is not a duration; write it with its unit: 20m",
        ),
        ({"name": "News", "rrule": "FREQ=DAILY"}, "window 'News': rrule needs a duration"),
        ({"name": "News"}, "window 'News': give either rrule (with duration) or ics"),
        (
            {"name": "News", "rrule": "FREQ=DAILY", "duration": "40m", "ics": "a.ics"},
            "not both",
        ),
        ({"name": "News", "ics": "a.ics", "duration": "1h"}, "duration goes with rrule"),
        ({"name": "News", "rrule": "FREQ=DAILY", "duration": "25h"}, "at most 24h"),
    ],
)
def test_a_bad_window_says_which_and_what_is_allowed(entry: dict, why: str) -> None:
    got = inventory_problems(blackout=[entry])
    assert any(why in p for p in got), got


def test_an_unknown_time_zone_is_refused_with_examples() -> None:
    got = inventory_problems(timezone="Europe/Atlantis")
    assert got == [
        "timezone: unknown time zone 'Europe/Atlantis'; allowed: an IANA name such as "
        "Europe/London, America/New_York or UTC"
    ]


def test_window_at_next_window_and_the_sentences() -> None:
    since = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    got = windows("FREQ=DAILY;BYHOUR=18;BYMINUTE=0", "40m", LONDON, since)
    before = datetime(2026, 7, 1, 16, 59, tzinfo=UTC)  # 17:59 BST
    on_air = datetime(2026, 7, 1, 17, 10, tzinfo=UTC)  # 18:10 BST
    assert blackout.window_at(got, before) is None
    assert blackout.next_window(got, before) == got[0]
    assert blackout.window_at(got, on_air) == got[0]
    assert blackout.window_at(got, got[0].end) is None  # the end is not inside
    assert blackout.next_window(got, on_air) == got[1]
    assert blackout.held(got[0], got[0].end) == "held for Night news until 18:40 +01:00"
    assert blackout.refusal(got[0]).startswith(
        "rule 'no-switch-in-blackout': on air: Night news until 18:40 +01:00; "
        "no switch starts and no client restarts in a blackout window (docs/operators/blackout.md)"
    )
    assert (
        blackout.next_sentence(got, before)
        == "next blackout: Night news at 2026-07-01 18:00 +01:00 until 18:40 +01:00"
    )
    assert blackout.next_sentence(got, on_air) == (
        "on air now: Night news until 2026-07-01 18:40 +01:00"
    )
    assert blackout.next_sentence([], before) is None


def test_windows_that_touch_are_waited_out_as_one() -> None:
    since = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    a = windows("FREQ=DAILY;BYHOUR=18;BYMINUTE=0", "40m", LONDON, since, days=1)
    b = expand(
        [Blackout(name="Sport", rrule="FREQ=DAILY;BYHOUR=18;BYMINUTE=40", duration="20m")],
        LONDON,
        Path("."),
        since,
        since + timedelta(days=1),
    )
    both = sorted(a + b, key=lambda w: w.start)
    at = datetime(2026, 7, 1, 17, 30, tzinfo=UTC)
    assert blackout.local(blackout.clear_at(both, at)) == "19:00 +01:00"


def test_windows_travel_in_a_runs_capabilities_unchanged() -> None:
    since = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    got = windows("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "40m", LONDON, since)
    back = Capabilities.model_validate_json(Capabilities(blackout=got).model_dump_json())
    assert back.blackout == got
    assert blackout.window_at(back.blackout, datetime(2026, 10, 25, 0, 40, tzinfo=UTC))


def test_a_start_takes_only_the_rules_it_checks_each_with_a_reason() -> None:
    inv = parse_inventory(DATA.read_text())

    def refusal(rules: list[str], reason: str | None) -> str:
        with pytest.raises(Refused) as e:
            start_input(inv, "switch", "Y", "ann", {}, rules, reason)
        assert e.value.kind == "usage"
        return str(e.value)

    assert "needs --override-reason TEXT" in refusal(["no-switch-in-blackout"], None)
    assert "needs --override-reason TEXT" in refusal(["no-switch-in-blackout"], "  ")
    assert refusal([], "why") == "--override-reason goes with --override RULE"
    assert "a start overrides only no-switch-in-blackout" in refusal(
        ["browse-switch-only-stopped"], "why"
    )
    assert "no such rule" in refusal(["nope"], "why")
    inp, _ = start_input(inv, "switch", "Y", "ann", {}, ["no-switch-in-blackout"], "on air")
    assert [(o.rule, o.reason) for o in inp.overrides] == [("no-switch-in-blackout", "on air")]  # type: ignore[attr-defined]


def test_the_check_and_the_readiness_watch_say_when_the_next_window_begins() -> None:
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    got = windows("FREQ=DAILY;BYHOUR=18;BYMINUTE=0", "40m", LONDON, now)
    said = blackout.next_sentence(got, now)
    assert said == "next blackout: Night news at 2026-07-01 18:00 +01:00 until 18:40 +01:00"
    result = CheckResult(
        pair="p", ready=True, problems=[], warnings=[], hosts=3, next_blackout=said
    )
    assert render_check(result).splitlines()[1] == said
    found = verdict(result, None, None, now)
    assert found.next_blackout == said
    inv = parse_inventory(DATA.read_text())
    view = ReadinessView(schedule_id="s", on=True, interval=3600, last=found)
    assert f"  at that check: {said}" in render(inv, view, now).splitlines()
    # Without windows nothing is said.
    quiet = CheckResult(pair="p", ready=True, problems=[], warnings=[], hosts=3)
    assert verdict(quiet, None, None, now).next_blackout is None
    assert "blackout" not in render_check(quiet)
