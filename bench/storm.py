"""`python -m bench.storm`: an operator acts while a storm of signals and updates goes on.

    python -m bench.storm [--rate 20,200] [--updates 0] [--fence] [--name NAME] [--out DIR]

For each RATE (signals a second; 0 for none, with --updates): a fresh lab of one editor,
a fresh worker, a switch X -> Y started, and, from the moment its run exists, RATE junk
`confirm` signals and --updates junk updates a second of each kind of JUNK_UPDATES (a
step the run does not have, an update name nobody handles, a payload that is not a
decision) sent to the pair's workflow id (as anyone who reaches the frontend can), until
the run ends. The benchmark's operator drives the switch to its end through the CLI's
code path (bench/operator.py); each confirm or approve is timed from its `amsm` command
to its answer. With --fence: instead of a switch, a fence on side X (down) under the
same storm (its junk updates: `end` without a reason), and after two paces of the
fence's continue-as-new the operator's `amsm fence end`, timed. Writes
bench/results/NAME.json and NAME.md: for each rate, the acts' times (max, median), the
signals the server took and refused, and how many runs the chain became. Exit status 0
when every act took at most the stated bound (`ACT_BOUND_SECONDS`,
docs/reference/limits.md), 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
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

from bench.operator import amsm, switch
from bench.stack import BenchError, LabUnderTest, TemporalServer, WorkerProcess
from inventory.models import fence_workflow_id
from lab.faults import set_side_fault
from workers.embedded import frontend_ready
from workflows.limits import CONTINUE_SIGNALS_EVERY
from workflows.limits import STORM_ACT_BOUND_SECONDS as ACT_BOUND_SECONDS
from workflows.models import FenceInput

# Junk, not a confirmation anyone may give: an operator name over the 253 characters a
# name may have (workflows/limits.py), so the run rejects each one it is handed.
JUNK = {"step": "stop-insync", "operator": "x" * 300}
# An update the run's validator refuses (no such step): no history event, but it is one
# of the updates the server has in flight for a moment (workflows/server.py).
JUNK_UPDATE = {"step": "no-such-step", "operator": "storm"}
# Each kind of junk update a storm sends (--updates a second of each): each is refused by
# the worker (the validator, or the SDK for the unknown name), none stored.
JUNK_UPDATES: tuple[tuple[str, Any], ...] = (
    ("confirm-step", JUNK_UPDATE),
    ("no-such-update", {"x": 1}),
    ("decide-step", {"garbage": "y" * 200}),
)
# The fence's: an `end` its validator refuses (no reason).
JUNK_END = ("end", {"operator": "storm", "reason": " "})


@dataclass
class Storm:
    """What a storm sent: the signals the server took, what it and the run refused (the
    reason: count; updates under "update: ..."), what was sent in all, and for how long."""

    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    updates: int = 0
    seconds: float = 0.0

    def add(self, other: Storm) -> None:
        self.accepted += other.accepted
        self.refused.update(other.refused)
        self.signals += other.signals
        self.updates += other.updates
        self.seconds = max(self.seconds, other.seconds)

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


def storms(
    handle: WorkflowHandle[Any, Any],
    rate: int,
    stop: asyncio.Event,
    updates: int,
    kinds: tuple[tuple[str, Any], ...],
) -> list[asyncio.Task[Storm]]:
    """The signals (`rate` a second, with the first kind's updates) and `updates` a second
    of each kind of junk update, each storm its own task, until `stop` is set."""
    first, *more = kinds
    tasks = [asyncio.create_task(storm(handle, rate, stop, updates=updates, update=first))]
    tasks += [
        asyncio.create_task(storm(handle, 0, stop, updates=updates, update=kind))
        for kind in more
        if updates
    ]
    return tasks


async def collected(tasks: list[asyncio.Task[Storm]]) -> Storm:
    """What the storms sent, together."""
    sent = Storm()
    for t in tasks:
        sent.add(await t)
    return sent


async def one_rate(
    temporal: Client, server: TemporalServer, root: Path, rate: int, updates: int = 0
) -> dict:
    """A switch driven to its end under a storm of `rate` signals and `updates` junk
    updates of each kind a second."""
    lab = LabUnderTest(root, f"storm{rate}u{updates}", 1, 0.5)
    worker = WorkerProcess(lab, server.address)
    lab.start()
    worker.start()
    stop = asyncio.Event()
    acts: dict[str, float] = {}
    tasks: list[asyncio.Task[Storm]] = []
    try:
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id)

        async def ticked(run: str, step: str, sent: datetime) -> None:
            acts[step] = (datetime.now(UTC) - sent).total_seconds()
            worker.check()

        async def first_wait() -> None:
            # The storm starts once the run exists (signals to an id with no run are
            # refused "not found").
            while True:
                try:
                    await handle.describe()
                    break
                except RPCError:
                    await asyncio.sleep(0.2)
            tasks.extend(storms(handle, rate, stop, updates, JUNK_UPDATES))

        starter = asyncio.create_task(first_wait())
        began = time.monotonic()
        error, state = None, None
        try:
            drive = await switch(temporal, lab, "Y", timeout=600, ticked=ticked)
            state = drive.final.get("state")
        except BenchError as e:  # an act that did not go through: a figure, not a crash
            error = str(e)
        seconds = time.monotonic() - began
        await starter
    finally:
        stop.set()
        sent = await collected(tasks)
        worker.stop()
        lab.stop()
    return await row(temporal, lab, "switch", rate, updates, acts, sent, error) | {
        "switch_s": round(seconds, 1),
        "state": state,
    }


async def row(
    temporal: Client,
    lab: LabUnderTest,
    what: str,
    rate: int,
    updates: int,
    acts: dict[str, float],
    sent: Storm,
    error: str | None = None,
) -> dict:
    """One line of the results: the acts' times, the runs in the chain of `what`, and the
    act that did not go through (`error`: what the CLI said), if one did not."""
    wid = lab.inventory.workflow_id if what == "switch" else fence_workflow_id(lab.inventory.pair)
    chain = [w async for w in temporal.list_workflows(f"WorkflowId = '{wid}'")]
    times = sorted(acts.values())
    return {
        "what": what,
        "rate": rate,
        "updates": updates,
        "acts": acts,
        "act_max_s": round(times[-1], 3) if times else None,
        "act_median_s": round(statistics.median(times), 3) if times else None,
        "runs": len(chain),
        "signals": sent.as_json(),
        "error": error,
    }


def answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def side_down(lab: LabUnderTest, side: str, timeout: float = 30) -> None:
    """`amsm lab fault --side SIDE down`, and wait until every host of the side refuses
    connections (the lab applies it within a fraction of a second)."""
    set_side_fault(lab.dir, side, "down")
    s = lab.inventory.sides[side]  # type: ignore[index]
    ports = [h.port for h in (*s.smartbins, s.nas.cifs, s.nas.ftp, s.bridge)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(answers(p) for p in ports):
            return
        await asyncio.sleep(0.2)
    raise BenchError(f"side {side} of the lab still answers after {timeout:g} s")


async def fence_rate(
    temporal: Client, server: TemporalServer, root: Path, rate: int, updates: int = 0
) -> dict:
    """A fence on side X (down) under a storm of `rate` signals and `updates` junk `end`
    updates a second; after two paces of its continue-as-new, the operator's `amsm fence
    end`, timed."""
    lab = LabUnderTest(root, f"fence{rate}u{updates}", 1, 0.5)
    worker = WorkerProcess(lab, server.address)
    lab.start()
    worker.start()
    stop = asyncio.Event()
    acts: dict[str, float] = {}
    tasks: list[asyncio.Task[Storm]] = []
    try:
        await side_down(lab, "X")
        inv = lab.inventory
        handle = await temporal.start_workflow(
            "fence",
            FenceInput(pair=inv.pair, side="X", reason="bench", started_by="bench"),
            id=fence_workflow_id(inv.pair),
            task_queue=inv.queue,
        )
        tasks.extend(storms(handle, rate, stop, updates, (JUNK_END,)))
        await asyncio.sleep(2 * CONTINUE_SIGNALS_EVERY + 3)
        began = time.monotonic()
        error = None
        try:
            await amsm(temporal, lab, "fence", "end", "--reason", "bench over")
            acts["fence-end"] = time.monotonic() - began
        except BenchError as e:  # not ended: a figure, not a crash
            error = f"after {time.monotonic() - began:.1f} s: {e}"
        worker.check()
    finally:
        stop.set()
        sent = await collected(tasks)
        worker.stop()
        lab.stop()
    return await row(temporal, lab, "fence", rate, updates, acts, sent, error)


def markdown(name: str, rows: list[dict]) -> str:
    kinds = len(JUNK_UPDATES) if rows[0]["what"] == "switch" else 1
    lines = [
        f"# Storm benchmark {name}",
        "",
        f"An operator's act ({'confirm, approve' if kinds > 1 else 'amsm fence end'}) during "
        f"a storm of junk signals and junk updates ({kinds} kind(s), the rate of each); "
        f"the bound is {ACT_BOUND_SECONDS:g} s (docs/reference/limits.md).",
        "",
        "| run | signals/s asked | reached | updates/s asked (each kind) | acts | act max s | "
        "act median s | switch s | runs in the chain | signals taken | updates refused "
        "by the worker | refused by the server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        refused = r["signals"]["refused"]
        by_worker = refused.get("update: refused by the validator", 0)
        lines.append(
            f"| {r['what']} | {r['rate']} | {r['signals']['signals_per_second']} | "
            f"{r['updates']} | {len(r['acts'])} | {r['act_max_s']} | {r['act_median_s']} | "
            f"{r.get('switch_s', '')} | {r['runs']} | {r['signals']['accepted']} | "
            f"{by_worker} | {sum(refused.values()) - by_worker} |"
        )
    for r in rows:
        if r.get("error"):
            lines += ["", f"- {r['what']} at {r['rate']} signals/s: not through: {r['error']}"]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n")[0])
    p.add_argument("--rate", default="20,200", help="signals a second, comma-separated (0: none)")
    p.add_argument(
        "--updates",
        default=0,
        type=int,
        help="junk updates a second of each kind too (a multiple of 10)",
    )
    p.add_argument(
        "--fence", action="store_true", help="a fence and `amsm fence end`, not a switch"
    )
    p.add_argument("--name", default=datetime.now(UTC).strftime("%Y-%m-%d-storm"))
    p.add_argument("--out", default="bench/results", type=Path)
    return p


async def run(args: argparse.Namespace) -> int:
    try:
        rates = sorted({int(x) for x in args.rate.split(",") if x.strip()})
    except ValueError:
        rates = []
    if not rates or rates[0] < 0 or (rates[0] == 0 and args.updates < 10):
        print(
            f"--rate {args.rate!r}: give whole numbers, e.g. 20,200 (0 only with --updates "
            "10 or more)",
            file=sys.stderr,
        )
        return 2
    root = Path(tempfile.mkdtemp(prefix="amsm-storm-"))
    server = TemporalServer(root)
    server.start()
    try:
        await frontend_ready(server.address)
        from workers.worker import Connection, connect

        temporal = await connect(Connection(address=server.address))
        each = fence_rate if args.fence else one_rate
        rows = [await each(temporal, server, root, r, args.updates) for r in rates]
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
    failed = any(r.get("error") or not r["acts"] for r in rows)
    worst = max((r["act_max_s"] or 0) for r in rows)
    if failed:
        return 1
    return 0 if worst <= ACT_BOUND_SECONDS else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
