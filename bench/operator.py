"""The benchmark's operator: starts a run and ticks its manual steps, like a person would.

Every command goes through the CLI's own code path (`client.cli.run_command`),
in this process, so the figures include what an operator's `amsm confirm` costs.
The lab's hands do the manual work first (InSync and AllSync stopped or started).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from bench.stack import BenchError, LabUnderTest
from client.cli import build_parser, run_command
from client.session import CliError
from lab.hands import do_manual_step


async def amsm(temporal: Client, lab: LabUnderTest, *argv: str) -> str:
    """One `amsm` command in process; its output, or BenchError with it."""
    args = build_parser().parse_args(["--inventory", str(lab.inventory_path), *argv])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = await run_command(temporal, args, lab.inventory)
        except CliError as e:
            raise BenchError(f"amsm {' '.join(argv)}: {e}") from None
    if rc != 0:
        raise BenchError(f"amsm {' '.join(argv)} exited {rc}: {out.getvalue().strip()}")
    return out.getvalue()


@dataclass
class Drive:
    run_id: str
    final: dict[str, Any] = field(default_factory=dict)
    # step id -> when the operator sent its confirm/approve (this machine's clock, UTC)
    sent: dict[str, datetime] = field(default_factory=dict)
    seconds: float = 0.0


async def switch(
    temporal: Client,
    lab: LabUnderTest,
    to: str,
    timeout: float,
    ticked: Callable[[str, str, datetime], Awaitable[None]] | None = None,
    run_id: str | None = None,
) -> Drive:
    """Start a switch to `to` (or take run `run_id`, a switch to `to` already started) and
    drive it to its end; BenchError when it does not end well. `ticked(run, step, sent)` is
    awaited after each confirm/approve, before the next look."""
    started = time.monotonic()
    if run_id is None:
        out = await amsm(
            temporal, lab, "start", "switch", "--to", to, "--operator", "bench", "--json"
        )
        run_id = str(json.loads(out)["run_id"])
    drive = Drive(run_id=run_id)
    while True:
        if time.monotonic() - started > timeout:
            raise BenchError(f"run {drive.run_id} did not end within {timeout:.0f} s")
        shown = json.loads(await amsm(temporal, lab, "show", drive.run_id, "--json"))
        if shown["state"] not in ("running", "awaiting-operator"):
            drive.final, drive.seconds = shown, time.monotonic() - started
            if shown["state"] != "completed":
                raise BenchError(f"run {drive.run_id} ended {shown['state']}")
            return drive
        for s in shown["steps"]:
            failed = [
                f"{c['host']}: {c.get('error')}"
                for c in s.get("clients") or []
                if c["status"] == "failed"
            ]
            if s["status"] == "failed" or failed:
                raise BenchError(
                    f"run {drive.run_id}: step {s['id']} failed: {s.get('error') or failed}"
                )
            if s["status"] in ("awaiting-confirmation", "awaiting-approval"):
                verb = "approve" if s["status"] == "awaiting-approval" else "confirm"
                do_manual_step(lab.dir, s["id"], to)
                drive.sent[s["id"]] = datetime.now(UTC)
                await amsm(temporal, lab, verb, drive.run_id, s["id"], "--operator", "bench")
                if ticked is not None:
                    await ticked(drive.run_id, s["id"], drive.sent[s["id"]])
                break
        else:
            await asyncio.sleep(0.2)
