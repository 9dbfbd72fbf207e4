"""Drive a run like an operator: do the manual step in the lab, then confirm or approve it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from temporalio.client import Client

from inventory.models import Side, other
from lab.hands import set_allsync, set_insync
from tests.conftest import Lab, cli, cli_json


def hands_for(lab: Lab, step: str, to: Side) -> None:
    """What the operator does at the device before ticking a manual step."""
    a = other(to)
    if step == "stop-insync":
        set_insync(lab.dir, running=False)
    elif step == "start-insync":
        set_insync(lab.dir, running=True)
    elif step == "stop-allsync":
        set_allsync(lab.dir, a, running=False)
    elif step == "start-allsync":
        set_allsync(lab.dir, to, running=True)


async def drive(
    client: Client,
    lab: Lab,
    run_id: str,
    to: Side,
    until: Callable[[dict], bool] | None = None,
    timeout: float = 120,
    signal: Callable[[str, str], Awaitable[None]] | None = None,
) -> dict:
    """Confirm/approve every step the run waits for, until it ends (or `until` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = await cli_json(client, lab, "show", run_id)
        if until is not None and until(shown):
            return shown
        if shown["state"] not in ("running", "awaiting-operator"):
            return shown
        waiting = [
            s
            for s in shown["steps"]
            if s["status"] in ("awaiting-confirmation", "awaiting-approval")
        ]
        if waiting:
            step = waiting[0]
            verb = "approve" if step["kind"] == "gate" else "confirm"
            hands_for(lab, step["id"], to)
            if signal is not None:
                await signal(verb, step["id"])
            else:
                rc, out = await cli(
                    client,
                    lab,
                    verb,
                    run_id,
                    step["id"],
                    "--operator",
                    "tester",
                    "--note",
                    f"did {step['id']}",
                )
                assert rc == 0, out
        else:
            await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout} s: {shown}")
