"""Waiting in tests for what a lab host does: its port open again, a condition met."""

from __future__ import annotations

import asyncio
import socket
import time

from temporalio.client import Client

from tests.support.cli import cli_json
from tests.support.lab import Lab


def host_up(lab: Lab, host: str):  # type: ignore[no-untyped-def]
    return port_open(lab.inventory.client(host).port)


def port_open(port: int):  # type: ignore[no-untyped-def]
    """True once a lab host listens on `port` again: `amsm lab serve` reopens a port whose
    fault was cleared on its next round, not at once."""

    async def check() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return check


async def wait_for(check, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within {timeout} s: {what}")


def side_down(lab: Lab, side: str):  # type: ignore[no-untyped-def]
    """True once every host of `side` (SmartBins, NAS heads, bridge) refuses connections:
    `amsm lab serve` applies `lab fault --side S down` within a fraction of a second."""
    s = lab.inventory.sides[side]  # type: ignore[index]
    ports = [h.port for h in (*s.smartbins, s.nas.cifs, s.nas.ftp, s.bridge)]

    async def check() -> bool:
        for port in ports:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return False
        return True

    return check


async def waits_at(temporal: Client, lab: Lab, run: str, step_id: str) -> None:
    """Until RUN waits for a person at STEP_ID (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = await cli_json(temporal, lab, "show", run)
        if any(s["id"] == step_id and s["status"].startswith("awaiting") for s in shown["steps"]):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run} did not wait at {step_id}")
