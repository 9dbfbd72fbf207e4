"""A duration as the inventory and the command line write one (objectives, scheduled runs,
blackout windows): days, hours, minutes, seconds, each with its unit, in that order: `20m`,
`1h30m`, `90s`, `1d`. A bare number is refused: minutes and seconds would both be guesses,
and a schedule's lead or a window's length read in the wrong unit is a switch at the wrong
time. One grammar, one home: each field states its own bounds."""

from __future__ import annotations

import re

DURATION_FORMS = "write it with its unit: 20m, 1h30m, 90s or 1d"
_DURATION = re.compile(r"^(?:(\d{1,4})d)?(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?$")


def duration_seconds(value: object, where: str = "") -> float:
    """`value` in seconds, or a ValueError naming `where` (when given), the value and the
    forms allowed."""
    m = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if m is None or not any(m.groups()):
        at = f"{where}: " if where else ""
        raise ValueError(f"{at}{value!r} is not a duration; {DURATION_FORMS}")
    d, h, mins, s = (int(g or 0) for g in m.groups())
    return float(d * 86400 + h * 3600 + mins * 60 + s)
