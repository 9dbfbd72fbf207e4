"""`python -m bench.storm`: an operator drives a switch while a storm of signals goes on.

    python -m bench.storm [--rate 20,200] [--updates 0] [--name NAME] [--out DIR]

For each RATE (signals a second): a fresh lab of one editor, a fresh worker, a switch
X -> Y started, and, from the moment its run exists, RATE junk `confirm` signals (and
--updates junk `confirm-step` updates) a second sent to the pair's workflow id (as
anyone who reaches the frontend can), until the run ends. The benchmark's operator drives the switch to its
end through the CLI's code path (bench/operator.py); each confirm or approve is timed
from its `amsm` command to its answer. Writes bench/results/NAME.json and NAME.md: for
each rate, the acts' times (max, median), the signals the server took and refused, and
how many runs the chain became. Exit status 0 when every act took at most the stated
bound (`ACT_BOUND_SECONDS`, docs/reference/limits.md), 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from bench.operator import switch
from bench.stack import BenchError, LabUnderTest, TemporalServer, WorkerProcess
from workers.embedded import frontend_ready
from workflows.limits import STORM_ACT_BOUND_SECONDS as ACT_BOUND_SECONDS

# Junk, not a confirmation anyone may give: an operator name over the 253 characters a
# name may have (workflows/limits.py), so the run rejects each one it is handed.
JUNK = {"step": "stop-insync", "operator": "x" * 300}
# An update the run's validator refuses (no such step): no history event, but it takes
# the server's one update in flight for a moment (workflows/server.py).
JUNK_UPDATE = {"step": "no-such-step", "operator": "storm"}


@dataclass
class Storm:
    """What a storm sent: the signals the server took, what it and the run refused (the
    reason: count; updates under "update: ..."), what was sent in all, and for how long."""

    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    updates: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        rate = round(self.signals / self.seconds, 1) if self.seconds else None
        return {
            "accepted": self.accepted,
            "refused": dict(self.refused),
            "signals_sent": self.signals,
            "updates_sent": self.updates,
            "seconds": round(self.seconds, 1),
            "signals_per_second": rate,
        }


async def storm(
    handle: WorkflowHandle[Any, Any],
    per_second: int,
    stop: asyncio.Event,
    updates: int = 0,
    update: tuple[str, Any] = ("confirm-step", JUNK_UPDATE),
) -> Storm:
    """`per_second` junk `confirm` signals (none at 0) and `updates` junk updates (`update`:
    its name and argument; a `confirm-step` of no such step unless told) a second to the
    handle's workflow (its current run), in ten bursts a second, until `stop` is set: a
    script that keeps sending, without waiting for the answers (an update is answered once
    the run's validator has seen it). What was sent and answered (Storm.signals / seconds
    is the rate reached)."""
    sent = Storm()
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            await handle.signal("confirm", JUNK)
            sent.accepted += 1
        except RPCError as e:
            sent.refused[e.message[:120]] += 1

    async def junk_update() -> None:
        try:
            await handle.execute_update(update[0], update[1])
            sent.refused["update: taken (it should not be)"] += 1
        except WorkflowUpdateFailedError:
            sent.refused["update: refused by the validator"] += 1
        except RPCError as e:
            sent.refused[f"update: {e.message[:100]}"] += 1

    began = loop.time()
    while not stop.is_set():
        tick = loop.time()
        signals = -(-per_second // 10)  # at least one a burst, unless none
        burst = [one() for _ in range(signals)]
        burst += [junk_update() for _ in range(updates // 10)]
        sent.signals += signals
        sent.updates += updates // 10
        for coro in burst:
            task = asyncio.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, 0.1 - (loop.time() - tick)))
        except TimeoutError:
            pass
    sent.seconds = loop.time() - began
    await asyncio.gather(*pending)
    return sent


async def one_rate(
    temporal: Client, server: TemporalServer, root: Path, rate: int, updates: int = 0
) -> dict:
    """A switch driven to its end under a storm of `rate` signals a second."""
    lab = LabUnderTest(root, f"storm{rate}", 1, 0.5)
    worker = WorkerProcess(lab, server.address)
    lab.start()
    worker.start()
    stop = asyncio.Event()
    acts: dict[str, float] = {}
    task: asyncio.Task[Storm] | None = None
    try:
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id)

        async def ticked(run: str, step: str, sent: datetime) -> None:
            acts[step] = (datetime.now(UTC) - sent).total_seconds()
            worker.check()

        async def first_wait() -> None:
            # The storm starts once the run exists (signals to an id with no run are
            # refused "not found").
            nonlocal task
            while True:
                try:
                    await handle.describe()
                    break
                except RPCError:
                    await asyncio.sleep(0.2)
            task = asyncio.create_task(storm(handle, rate, stop, updates=updates))

        starter = asyncio.create_task(first_wait())
        began = time.monotonic()
        drive = await switch(temporal, lab, "Y", timeout=600, ticked=ticked)
        seconds = time.monotonic() - began
        await starter
    finally:
        stop.set()
        sent = await task if task is not None else Storm()
        worker.stop()
        lab.stop()
    chain = [
        w async for w in temporal.list_workflows(f"WorkflowId = '{lab.inventory.workflow_id}'")
    ]
    times = sorted(acts.values())
    return {
        "rate": rate,
        "updates": updates,
        "acts": acts,
        "act_max_s": round(times[-1], 3) if times else None,
        "act_median_s": round(statistics.median(times), 3) if times else None,
        "switch_s": round(seconds, 1),
        "state": drive.final.get("state"),
        "runs": len(chain),
        "signals": sent.as_json(),
    }


def markdown(name: str, rows: list[dict]) -> str:
    lines = [
        f"# Storm benchmark {name}",
        "",
        f"An operator's act (confirm, approve) during a storm of junk signals "
        f"(and {rows[0]['updates']} junk updates a second); the bound is "
        f"{ACT_BOUND_SECONDS:g} s (docs/reference/limits.md).",
        "",
        "| signals/s asked | reached | acts | act max s | act median s | switch s | "
        "runs in the chain | signals taken | refused (signals and updates) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate']} | {r['signals']['signals_per_second']} | {len(r['acts'])} | "
            f"{r['act_max_s']} | {r['act_median_s']} | "
            f"{r['switch_s']} | {r['runs']} | {r['signals']['accepted']} | "
            f"{sum(r['signals']['refused'].values())} |"
        )
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n")[0])
    p.add_argument("--rate", default="20,200", help="signals a second, comma-separated")
    p.add_argument(
        "--updates", default=0, type=int, help="junk updates a second too (a multiple of 10)"
    )
    p.add_argument("--name", default=datetime.now(UTC).strftime("%Y-%m-%d-storm"))
    p.add_argument("--out", default="bench/results", type=Path)
    return p


async def run(args: argparse.Namespace) -> int:
    try:
        rates = sorted({int(x) for x in args.rate.split(",") if x.strip()})
    except ValueError:
        rates = []
    if not rates or rates[0] < 1:
        print(f"--rate {args.rate!r}: give positive whole numbers, e.g. 20,200", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="amsm-storm-"))
    server = TemporalServer(root)
    server.start()
    try:
        await frontend_ready(server.address)
        from workers.worker import Connection, connect

        temporal = await connect(Connection(address=server.address))
        rows = [await one_rate(temporal, server, root, r, args.updates) for r in rates]
    except BenchError as e:
        print(f"bench.storm: {e} (the servers' logs are kept in {root})", file=sys.stderr)
        return 1
    finally:
        server.stop()
    shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(args.name, rows)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    worst = max((r["act_max_s"] or 0) for r in rows)
    return 0 if worst <= ACT_BOUND_SECONDS else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
