"""The heartbeat of a restart (RestartBeat): one typed object, and the positional shape
a worker before it sent still read, so a retry after a deploy resumes the restart."""

from __future__ import annotations

from typing import Any

import pytest

from activities.models import ForcedRule, RestartBeat

FORCED = {"rule": "client-bridge", "host": "ED-01", "refusal": "no bridge"}


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        ((12.5, False), RestartBeat(before=12.5)),
        ((12.5, True), RestartBeat(before=12.5, sent=True)),
        ((12.5, True, "uwf-off"), RestartBeat(before=12.5, sent=True, uwf="off")),
        ((12.5, False, "uwf-on"), RestartBeat(before=12.5, uwf="on")),
        (
            (12.5, True, "reconfigured for Y", [FORCED]),
            RestartBeat(
                before=12.5, sent=True, prepared="reconfigured for Y", forced=[ForcedRule(**FORCED)]
            ),
        ),
        (
            (12.5, False, "reconfigured for Y", [], "uwf-on"),
            RestartBeat(before=12.5, uwf="on", prepared="reconfigured for Y"),
        ),
    ],
)
def test_the_positional_heartbeat_of_an_older_worker_is_read(
    old: tuple[Any, ...], expected: RestartBeat
) -> None:
    assert RestartBeat.read(list(old)) == expected


def test_a_beat_goes_as_one_json_object_and_reads_back() -> None:
    beat = RestartBeat(before=3.0, sent=True, uwf="on", prepared="p", forced=[ForcedRule(**FORCED)])
    details = beat.details()
    assert len(details) == 1 and isinstance(details[0], dict)
    assert RestartBeat.read(list(details)) == beat
    assert RestartBeat.read([]) is None
