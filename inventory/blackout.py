"""On-air blackout windows: the inventory's recurrence rules (RFC 5545 RRULE) and .ics
files expanded into concrete intervals, each a name, a start and an end instant.

Pure but for reading an .ics file. The worker expands (activities/probe.py
get_capabilities) and hands a run the intervals; a workflow never parses a rule.

Daylight saving, as RFC 5545 section 3.3.5 says for a DATE-TIME with a time zone: a
local time that does not exist (the spring-forward gap) is taken with the UTC offset
from before the gap (01:30 on the day London goes from GMT to BST is 01:30 GMT, which
is 02:30 BST); a local time that happens twice (the autumn day) is its first
occurrence (01:30 BST, not 01:30 GMT). Python's zoneinfo with fold=0 reads both so
(PEP 495), and dateutil's rrule makes its occurrences with fold=0. A window's length is
elapsed time (RFC 5545 3.3.6: a duration in hours and minutes is exact), so a 40-minute
window across a change of offset still lasts 40 minutes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr
from icalendar import Calendar
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inventory.durations import DURATION_FORMS, duration_seconds

# How far ahead the worker expands the windows for a run (a run re-reads them when it
# continues as new; a run that waits longer than this sees no window past it).
HORIZON = timedelta(days=8)
RRULE_ALLOWED = (
    "an RFC 5545 recurrence rule such as FREQ=DAILY;BYHOUR=18;BYMINUTE=0 "
    "or FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=12;BYMINUTE=30"
)


class BlackoutError(ValueError):
    """A window's rule or file cannot be used: which window, what is wrong, what is allowed."""


class Window(BaseModel):
    """One interval in which no switch starts and no client restarts: [start, end), both
    in the inventory's time zone (their offset says which side of a change they are)."""

    name: str
    start: datetime
    end: datetime


class Blackout(BaseModel):
    """One blackout of the inventory: a recurrence rule and a duration, or an .ics file
    (its path relative to the inventory file)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, description="said in every refusal and hold")
    rrule: str | None = Field(None, description="RFC 5545 RRULE, its times in `timezone`")
    duration: str | int | None = Field(None, description="with rrule: 40m, 1h30m, 90s")
    ics: str | None = Field(None, description="an .ics file of VEVENTs instead of rrule")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if any(ord(c) < 32 for c in v):
            raise ValueError(f"name {v!r}: no control characters")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Blackout:
        where = f"window {self.name!r}"
        if (self.rrule is None) == (self.ics is None):
            raise ValueError(
                f"{where}: give either rrule (with duration) or ics (a file), not "
                + ("both" if self.rrule else "neither")
            )
        try:
            if self.rrule is not None:
                if self.duration is None:
                    raise BlackoutError(f"rrule needs a duration ({DURATION_FORMS})")
                check_rule(self.rrule)
                parse_duration(self.duration)
            elif self.duration is not None:
                raise BlackoutError("duration goes with rrule; an .ics event has its own")
        except BlackoutError as e:
            raise ValueError(f"{where}: {e}") from None
        return self


def expand(
    windows: list[Blackout], tz_name: str, base: Path, since: datetime, until: datetime
) -> list[Window]:
    """Every window of the inventory's `windows` between `since` and `until`, in start
    order; .ics paths relative to `base`. A BlackoutError names the window."""
    tz = zone(tz_name)
    out: list[Window] = []
    for w in windows:
        try:
            if w.rrule is not None:
                assert w.duration is not None  # Blackout._one_source
                length = parse_duration(w.duration)
                out += expand_rule(w.name, w.rrule, length, tz, since, until)
            else:
                assert w.ics is not None
                p = Path(w.ics).expanduser()
                out += expand_ics(w.name, p if p.is_absolute() else base / p, tz, since, until)
        except BlackoutError as e:
            raise BlackoutError(f"blackout window {w.name!r}: {e}") from None
    return sorted(out, key=lambda x: (x.start, x.name))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; a clear error when there is none such."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BlackoutError(
            f"unknown time zone {name!r}; allowed: an IANA name such as Europe/London, "
            "America/New_York or UTC"
        ) from None


def parse_duration(text: object) -> timedelta:
    """A window's length (inventory/durations.py: 40m, 1h30m, 90s): more than zero, at most
    a day."""
    try:
        seconds = duration_seconds(text, "duration")
    except ValueError as e:
        raise BlackoutError(str(e)) from None
    if not 0 < seconds <= 86400:
        raise BlackoutError(f"duration {text!r}: a window lasts more than 0 s and at most 24h")
    return timedelta(seconds=seconds)


def check_rule(text: str) -> str:
    """`text` if dateutil reads it as one RFC 5545 RRULE, else a BlackoutError."""
    if "\n" in text or text.upper().startswith(("DTSTART", "RRULE:", "EXDATE")):
        raise BlackoutError(f"rrule {text!r} is not {RRULE_ALLOWED} (one rule, without RRULE:)")
    try:
        rrulestr(text, dtstart=datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
    except (ValueError, TypeError) as e:
        raise BlackoutError(f"rrule {text!r} is not {RRULE_ALLOWED} ({e})") from None
    return text


def _occurrences(rule: rrule, since: datetime, until: datetime) -> list[datetime]:
    return list(rule.between(since, until, inc=True))


def expand_rule(
    name: str, text: str, length: timedelta, tz: ZoneInfo, since: datetime, until: datetime
) -> list[Window]:
    """The windows of rule `text` (its times in `tz`) that end after `since` and start
    before `until`. Its first occurrence is counted from local midnight of the day
    before `since` (a rule without DTSTART: RFC 5545 leaves it to the calendar)."""
    first = datetime.combine(since.astimezone(tz).date() - timedelta(days=1), time(0), tz)
    rule = rrulestr(check_rule(text), dtstart=first)
    assert isinstance(rule, rrule)
    starts = _occurrences(rule, since - length, until)
    return [_window(name, s, length, tz) for s in starts if s + length > since]


def _window(name: str, start: datetime, length: timedelta, tz: tzinfo) -> Window:
    # From UTC back to local: the offset shown is the real one at each end (a start in
    # the spring gap shows 02:30 +01:00, the instant RFC 5545 means by 01:30).
    # Fixed offsets, as a run reads them back from its history: Python never compares an
    # ambiguous zoneinfo time equal to another zone's (PEP 495).
    utc = start.astimezone(ZoneInfo("UTC"))
    return Window(name=name, start=_fixed(utc, tz), end=_fixed(utc + length, tz))


def _fixed(t: datetime, tz: tzinfo) -> datetime:
    local = t.astimezone(tz)
    offset = local.utcoffset()
    assert offset is not None
    return local.replace(tzinfo=timezone(offset), fold=0)


def expand_ics(
    name: str, path: Path, tz: ZoneInfo, since: datetime, until: datetime
) -> list[Window]:
    """The windows of every VEVENT of the .ics file at `path` (its DTSTART with TZID or
    in UTC, floating times in `tz`; DTEND or DURATION; RRULE, RDATE and EXDATE)."""
    try:
        cal = Calendar.from_ical(path.read_bytes())
    except OSError as e:
        raise BlackoutError(f"cannot read {path} ({e.strerror or e})") from None
    except ValueError as e:
        raise BlackoutError(f"{path} is not an iCalendar file (RFC 5545): {e}") from None
    out: list[Window] = []
    events = list(cal.walk("VEVENT"))
    if not events:
        raise BlackoutError(f"{path} has no VEVENT; a blackout file lists its windows as events")
    for n, ev in enumerate(events, 1):
        where = f"{path} event {n} ({ev.get('SUMMARY', 'no summary')})"
        try:
            out += _expand_event(name, ev, tz, since, until)
        except (ValueError, TypeError, KeyError) as e:
            raise BlackoutError(f"{where}: {e}") from None
    return out


def _aware(value: date | datetime, tz: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tz)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _dates(ev: object, prop: str, tz: tzinfo) -> list[datetime]:
    """Every date of EXDATE or RDATE (each may appear several times, each a list)."""
    raw = ev.get(prop)  # type: ignore[attr-defined]
    if raw is None:
        return []
    lists = raw if isinstance(raw, list) else [raw]
    return [_aware(d.dt, tz) for one in lists for d in one.dts]


def _expand_event(
    name: str, ev: object, tz: ZoneInfo, since: datetime, until: datetime
) -> list[Window]:
    if ev.get("DTSTART") is None:  # type: ignore[attr-defined]
        raise ValueError("no DTSTART")
    start = _aware(ev.decoded("DTSTART"), tz)  # type: ignore[attr-defined]
    if ev.get("DTEND") is not None:  # type: ignore[attr-defined]
        length = _aware(ev.decoded("DTEND"), tz) - start  # type: ignore[attr-defined]
    elif ev.get("DURATION") is not None:  # type: ignore[attr-defined]
        length = ev.decoded("DURATION")  # type: ignore[attr-defined]
    elif isinstance(ev.decoded("DTSTART"), datetime):  # type: ignore[attr-defined]
        raise ValueError("no DTEND or DURATION: a window needs a length")
    else:
        length = timedelta(days=1)  # an all-day event (RFC 5545 3.6.1)
    if length <= timedelta(0):
        raise ValueError("it ends before it starts")
    rule = ev.get("RRULE")  # type: ignore[attr-defined]
    if rule is None:
        starts = [start]
    else:
        text = rule.to_ical().decode()
        parsed = rrulestr(text, dtstart=start)
        assert isinstance(parsed, rrule)
        starts = _occurrences(parsed, since - length, until)
    starts += _dates(ev, "RDATE", tz)
    skip = {d.astimezone(ZoneInfo("UTC")) for d in _dates(ev, "EXDATE", tz)}
    return [
        _window(name, s, length, tz)
        for s in starts
        if s.astimezone(ZoneInfo("UTC")) not in skip and s + length > since and s < until
    ]
