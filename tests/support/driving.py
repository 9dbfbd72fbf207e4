"""Drive a run like an operator: do the manual step in the lab, then confirm or approve it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from temporalio.client import Client

from inventory.models import Side
from lab.hands import do_manual_step
from tests.support.cli import cli, cli_json
from tests.support.lab import Lab


def hands_for(lab: Lab, step: str, to: Side, stop_allsync_on: Side | None = None) -> None:
    """What the operator does at the device before ticking a manual step."""
    do_manual_step(lab.dir, step, to, stop_allsync_on)


def step(shown: dict, step_id: str) -> dict:
    return next(s for s in shown["steps"] if s["id"] == step_id)


def waiting_step(shown: dict) -> dict | None:
    for s in shown["steps"]:
        if s["status"] in ("awaiting-confirmation", "awaiting-approval", "failed"):
            return s
        if any(c["status"] == "failed" for c in s.get("clients") or []):
            return s
    return None


async def drive(
    temporal: Client,
    lab: Lab,
    run_id: str,
    to: Side,
    until: Callable[[dict], bool] | None = None,
    timeout: float = 120,
    signal: Callable[[str, str], Awaitable[None]] | None = None,
    extra: dict[str, list[str]] | None = None,
    stop_allsync_on: Side | None = None,
) -> dict:
    """Confirm/approve every step the run waits for, until it ends (or `until` holds).

    A failed step is not decided here: the run is returned to the caller.
    """
    deadline = time.monotonic() + timeout
    shown: dict = {}
    while time.monotonic() < deadline:
        shown = await cli_json(temporal, lab, "show", run_id)
        if until is not None and until(shown):
            return shown
        if shown["state"] not in ("running", "awaiting-operator"):
            return shown
        step = waiting_step(shown)
        if step is not None and step["status"] in ("awaiting-confirmation", "awaiting-approval"):
            verb = "approve" if step["kind"] == "gate" else "confirm"
            hands_for(lab, step["id"], to, stop_allsync_on)
            if signal is not None:
                await signal(verb, step["id"])
            else:
                args = [
                    verb,
                    run_id,
                    step["id"],
                    "--operator",
                    "tester",
                    "--note",
                    f"did {step['id']}",
                ]
                args += (extra or {}).get(step["id"], [])
                rc, out = await cli(temporal, lab, *args)
                assert rc == 0, out
        elif step is not None:
            return shown  # failed: the caller decides
        else:
            await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout} s: {shown}")


async def switch_waiting_at_stop_insync(
    temporal: Client, lab: Lab, to: Side = "Y", *start: str
) -> tuple[str, dict]:
    """Start a switch to `to` (`start`: more `amsm start switch` arguments) and drive it
    to its first manual step, `stop-insync`, awaiting confirmation: (run id, checklist)."""
    run = (await cli_json(temporal, lab, "start", "switch", "--to", to, *start))["run_id"]
    shown = await drive(
        temporal,
        lab,
        run,
        to,
        until=lambda s: step(s, "stop-insync")["status"] == "awaiting-confirmation",
    )
    return run, shown


def assert_mirrored(status: dict, main: str, clients: int) -> None:
    """`amsm status --json` of a pair mirrored with `main` main, every client on it."""
    assert status["mode"] == "mirrored", status["reason"]
    assert status["main"] == main
    backup = "Y" if main == "X" else "X"
    assert status["dsm"][main]["mode"] == "main"
    assert status["dsm"][backup]["mode"] == "backup"
    assert status["dsm"][main]["replication"] == "running"
    assert status["dsm"][main]["asset_count"] == status["dsm"][backup]["asset_count"]
    assert status["browse"]["active_on"] == main
    assert status["insync"] == {**status["insync"], "main": main, "running": True}
    assert status["allsync"]["running_on"] == [main]
    assert [c["side"] for c in status["clients"]] == [main] * clients
    assert all(c["status"] == "online" for c in status["clients"])
    sb = {s["host"]: s for s in status["smartbins"]}
    for s in sb.values():
        if s["side"] == main:
            assert (s["running"], s["mode"]) == (True, "Normal"), s
        elif s["pseudo_host"]:
            assert (s["running"], s["mode"]) == (True, "Pseudo"), s
        else:
            assert s["running"] is False, s
