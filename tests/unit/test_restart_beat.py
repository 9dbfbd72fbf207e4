"""The heartbeat of a restart (RestartBeat): one typed object, and the positional shape
a worker before it sent still read, so a retry after a deploy resumes the restart; and a
beat that cannot be read, reported as amsm's own record and not as the host failing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import ClientActivities, _why
from activities.context import DeviceContext
from activities.models import ClientInput, ClientRebootInput, ForcedRule, RestartBeat
from inventory.load import load_inventory
from lab.state import LabState

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


# -- a beat that cannot be read: amsm's own record, not the host's answer --------------------
@pytest.mark.parametrize(
    "details",
    [
        [{"before": "yesterday", "sent": True}],  # a field of another meaning
        [{"sent": True}],  # a field missing
        ["12.5", "not a bool", "reconfigured", "not a list of rules"],  # an old shape, bent
        [None, True],
    ],
)
@pytest.mark.parametrize("activity_name", ["client_reboot", "client_prepare_restart"])
async def test_a_beat_that_cannot_be_read_is_no_device_error_and_reaches_no_host(
    lab: LabState, details: list[Any], activity_name: str
) -> None:
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    acts = ClientActivities(DeviceContext(inv, Path(lab.dir) / "inventory.yaml"))
    host = inv.clients[0].host
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=details)
    mark = len(lab.journal())
    if activity_name == "client_reboot":
        run = env.run(acts.client_reboot, ClientRebootInput(pair=inv.pair, host=host, round=1))
    else:
        run = env.run(acts.client_prepare_restart, ClientInput(pair=inv.pair, host=host, to="Y"))
    with pytest.raises(ApplicationError) as raised:
        await run
    err = raised.value
    # Its own kind, never retried (the retry would read the same record), never a device's.
    assert err.type == "OwnRecordUnreadable" and err.non_retryable, err
    assert err.type not in ("CommandFailed", "Unreachable", "DeviceError")
    assert err.message.startswith(f"{host}: the restart under way cannot be resumed"), err.message
    assert "not an answer of" in err.message and "retry the step" in err.message
    assert err.details[0] == {"host": host, "kind": "OwnRecordUnreadable"}
    assert lab.journal()[mark:] == []  # nothing reached the host


def test_a_beat_that_cannot_be_read_says_which_field(lab: LabState) -> None:
    err = None
    try:
        RestartBeat.read([{"before": "yesterday"}])
    except ValidationError as e:
        err = e
    assert err is not None
    assert _why(err) == "before: Input should be a valid number, unable to parse string as a number"
