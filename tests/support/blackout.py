"""Blackout windows in tests (docs/operators/blackout.md): a daily "News at Six" at a
chosen time of day in the lab's inventory."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support.lab import Lab

ZONE = "Europe/London"


def news_at(lab: Lab, start: datetime, seconds: int) -> tuple[datetime, datetime]:
    """A daily window "News at Six" at `start`'s local time of day, `seconds` long, in
    the lab's inventory; its start and end (to the second, local)."""
    local = start.astimezone(ZoneInfo(ZONE)).replace(microsecond=0)
    lab.edit_inventory(
        timezone=ZONE,
        blackout=[
            {
                "name": "News at Six",
                "rrule": f"FREQ=DAILY;BYHOUR={local.hour};BYMINUTE={local.minute};"
                f"BYSECOND={local.second}",
                "duration": f"{seconds}s",
            }
        ],
    )
    return local, local + timedelta(seconds=seconds)


def on_air_now(lab: Lab) -> tuple[datetime, datetime]:
    """A window begun 5 s ago, for 10 minutes: the pair is on air now."""
    return news_at(lab, datetime.now(ZoneInfo(ZONE)) - timedelta(seconds=5), 600)
