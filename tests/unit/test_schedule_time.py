"""`amsm schedule --at TIME`: ISO 8601 with an offset or a local time in the inventory's
time zone; daylight saving's edges refused naming both instants unless the offset is
given; a time in the past or beyond the horizon refused (api/schedule.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from api.refusal import Refused
from api.schedule import check_when, parse_at, window_seconds
from inventory.durations import duration_seconds
from inventory.models import Schedule

LONDON = ZoneInfo("Europe/London")
BRUSSELS = ZoneInfo("Europe/Brussels")


def test_an_offset_is_taken_as_written() -> None:
    assert parse_at("2027-06-01T21:30+02:00", LONDON) == datetime(2027, 6, 1, 19, 30, tzinfo=UTC)
    assert parse_at("2027-06-01T21:30Z", LONDON) == datetime(2027, 6, 1, 21, 30, tzinfo=UTC)


def test_a_local_time_is_read_in_the_inventory_zone() -> None:
    # British Summer Time: UTC+1.
    assert parse_at("2027-06-01 21:30", LONDON) == datetime(2027, 6, 1, 20, 30, tzinfo=UTC)
    # Winter: GMT.
    assert parse_at("2027-01-10T21:30", LONDON) == datetime(2027, 1, 10, 21, 30, tzinfo=UTC)


def test_a_local_time_that_does_not_exist_names_both_instants() -> None:
    # 2027-03-28: the UK's clocks go from 01:00 GMT to 02:00 BST; 01:30 never happens.
    with pytest.raises(Refused) as e:
        parse_at("2027-03-28 01:30", LONDON)
    msg = str(e.value)
    assert e.value.kind == "usage"
    assert "2027-03-28 01:30 does not exist in Europe/London" in msg
    assert "2027-03-28T01:30+00:00 (= 2027-03-28T01:30Z)" in msg
    assert "2027-03-28T01:30+01:00 (= 2027-03-28T00:30Z)" in msg
    assert "docs/operators/schedules.md" in msg


def test_a_local_time_that_happens_twice_names_both_instants() -> None:
    # 2027-10-31: Brussels goes back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    with pytest.raises(Refused) as e:
        parse_at("2027-10-31 02:30", BRUSSELS)
    msg = str(e.value)
    assert "2027-10-31 02:30 happens twice in Europe/Brussels" in msg
    assert "2027-10-31T02:30+02:00 (= 2027-10-31T00:30Z)" in msg
    assert "2027-10-31T02:30+01:00 (= 2027-10-31T01:30Z)" in msg


def test_with_the_offset_a_dst_edge_is_taken() -> None:
    assert parse_at("2027-10-31T02:30+01:00", BRUSSELS) == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    assert parse_at("2027-10-31T02:30+02:00", BRUSSELS) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert parse_at("2027-03-28T01:30+00:00", LONDON) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)


def test_what_is_no_time_is_refused_saying_what_is() -> None:
    with pytest.raises(Refused) as e:
        parse_at("tomorrow at nine", LONDON)
    assert e.value.kind == "usage"
    assert "is not a time: write ISO 8601" in str(e.value)
    assert "Europe/London" in str(e.value)


class _Inv:
    """What check_when and window_seconds read of the inventory."""

    def __init__(self, **schedule: object) -> None:
        self.schedule = Schedule.model_validate(schedule)
        self.zone = LONDON


def test_the_past_and_beyond_the_horizon_are_refused() -> None:
    now = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    inv = _Inv(horizon="7d")
    check_when(datetime(2027, 6, 1, 12, 1, tzinfo=UTC), inv, now)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="is in the past"):
        check_when(datetime(2027, 6, 1, 11, 59, tzinfo=UTC), inv, now)  # type: ignore[arg-type]
    with pytest.raises(Refused, match=r"more than 7 day\(s\) ahead"):
        check_when(datetime(2027, 6, 8, 12, 1, tzinfo=UTC), inv, now)  # type: ignore[arg-type]


def test_durations_and_the_window() -> None:
    assert duration_seconds("60m") == 3600
    assert duration_seconds("1h30m") == 5400 and duration_seconds("1d") == 86400
    for unclear in ("soon", "90", 90, 2.5, "1.5h", "30m1h"):  # a unit always; in order
        with pytest.raises(ValueError, match="is not a duration; write it with its unit"):
            duration_seconds(unclear)
    again = Schedule.model_validate(Schedule(lead="5m", window="45m").model_dump())  # type: ignore[arg-type]
    assert (again.lead, again.window) == (300, 2700)
    assert Schedule().lead == 3600 and Schedule().window == 1800
    inv = _Inv(window="45m")
    assert window_seconds(inv, None) == 2700  # type: ignore[arg-type]
    assert window_seconds(inv, "10m") == 600  # type: ignore[arg-type]
    with pytest.raises(Refused, match="from 1 minute to 24 hours"):
        window_seconds(inv, "30s")  # type: ignore[arg-type]
    with pytest.raises(Refused, match="--window: 'later' is not a duration"):
        window_seconds(inv, "later")  # type: ignore[arg-type]
