"""How `amsm confirm` (and the console) put an update to a run that is continuing as new
or busy with another update as it is asked (client/runs.py `send_update`): the server's
"workflow is closing" and "in-flight updates" are asked again until the run takes it; any
other refusal of the server is one clear line."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api import runs
from client.cli import run_command
from client.session import CliError, server_refused
from workflows.models import UpdateResult

CLOSING = "workflow operation can not be applied because workflow is closing"


class Handle:
    """A run's handle whose updates the server refuses `refusals` times first."""

    def __init__(self, refusals: list[RPCError]) -> None:
        self.id, self.run_id = "amsm-p", "r1"
        self.refusals = refusals
        self.asked = 0

    async def execute_update(self, update: Any, arg: Any) -> UpdateResult:
        self.asked += 1
        if self.refusals:
            raise self.refusals.pop(0)
        return UpdateResult(accepted=True, run_id=self.run_id)

    async def describe(self) -> Any:
        return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING)


def closing() -> RPCError:
    return RPCError(CLOSING, RPCStatusCode.RESOURCE_EXHAUSTED, b"")


async def test_a_run_closing_as_it_is_asked_is_asked_again_until_it_takes_it() -> None:
    handle = Handle([closing(), closing()])
    taken = await runs.send_update(None, handle, None, None)  # type: ignore[arg-type]
    assert taken.accepted and handle.asked == 3


async def test_a_run_that_stays_closing_is_a_refusal_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runs, "STARTING_WAIT_SECONDS", 0.3)
    handle = Handle([closing() for _ in range(100)])
    with pytest.raises(RPCError):
        await runs.send_update(None, handle, None, None)  # type: ignore[arg-type]
    assert 1 < handle.asked < 100


async def test_a_run_busy_with_another_update_is_asked_again() -> None:
    busy = RPCError(
        "limit on number of concurrent in-flight updates has been reached (1)",
        RPCStatusCode.RESOURCE_EXHAUSTED,
        b"",
    )
    handle = Handle([busy, busy, busy])
    taken = await runs.send_update(None, handle, None, None)  # type: ignore[arg-type]
    assert taken.accepted and handle.asked == 4


async def test_an_update_the_server_aborted_is_asked_again() -> None:
    # The server clears its state of a run on any error under the run's lock (a signal
    # refused for the run's limit, say), and aborts the updates it had not handed the
    # run yet: retryable (docs/reference/limits.md, "Storms while the operator acts").
    aborted = RPCError("workflow update was aborted", RPCStatusCode.UNAVAILABLE, b"")
    handle = Handle([aborted, aborted])
    taken = await runs.send_update(None, handle, None, None)  # type: ignore[arg-type]
    assert taken.accepted and handle.asked == 3


async def test_other_refusals_of_the_server_are_not_asked_again() -> None:
    busy = RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    handle = Handle([busy])
    with pytest.raises(RPCError):
        await runs.send_update(None, handle, None, None)  # type: ignore[arg-type]
    assert handle.asked == 1


async def test_a_refusal_no_command_explains_is_one_line_not_a_traceback() -> None:
    async def handler(temporal: Any, inv: Any, args: Any) -> int:
        raise closing()

    args = SimpleNamespace(handler=handler, notice=False, reads=False)
    with pytest.raises(CliError) as e:
        await run_command(None, args, None)  # type: ignore[arg-type]
    assert str(e.value) == server_refused(closing())
    assert "RESOURCE_EXHAUSTED" in str(e.value) and "closing" in str(e.value)
    assert "\n" not in str(e.value)
