"""`python -m bench.bare`: the orchestration alone, with no device behind it.

    python -m bench.bare [--clients 500] [--activities 2] [--seconds 12]

The same shape as a switch's `switch-clients` step (a parent, one child per 25
clients, each client's activities one after the other) on an embedded Temporal dev
server, but each activity only sleeps and heartbeats. Prints the step's wall time
at N = 1 and N = --clients, the marginal cost per added client, and the CPU seconds
the server and this process (the worker) used: what the fan-out costs before any
device work. Not a test: figures for docs/maintainers/benchmark.md's reasoning.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.stack import TemporalServer, cpu_seconds
from workers.embedded import frontend_ready

BATCH = 25


@activity.defn(name="bare_step")
async def bare_step(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        activity.heartbeat()
        await asyncio.sleep(min(0.75, max(0.0, end - time.monotonic())))
    return "ok"


@workflow.defn(name="bare-batch")
class BareBatch:
    @workflow.run
    async def run(self, clients: int, activities: int, seconds: float) -> int:
        async def one() -> None:
            for _ in range(activities):
                await workflow.execute_activity(
                    bare_step,
                    seconds / activities,
                    start_to_close_timeout=timedelta(seconds=600),
                    heartbeat_timeout=timedelta(seconds=30),
                )

        await asyncio.gather(*(one() for _ in range(clients)))
        return clients


@workflow.defn(name="bare-parent")
class BareParent:
    @workflow.run
    async def run(self, clients: int, activities: int, seconds: float) -> float:
        started = workflow.now()
        sizes = [BATCH] * (clients // BATCH) + ([clients % BATCH] if clients % BATCH else [])
        await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    BareBatch.run,
                    args=[n, activities, seconds],
                    id=f"{workflow.info().workflow_id}-{i}",
                )
                for i, n in enumerate(sizes)
            )
        )
        return (workflow.now() - started).total_seconds()


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="amsm-bare-"))
    server = TemporalServer(root)
    server.start()
    await frontend_ready(server.address)
    assert server.proc is not None
    try:
        temporal = await Client.connect(server.address)
        async with Worker(
            temporal,
            task_queue="bare",
            workflows=[BareParent, BareBatch],
            activities=[bare_step],
            max_concurrent_activities=1000,
        ):
            took: dict[int, float] = {}
            for n in sorted({1, args.clients}):
                w0, s0 = own_cpu(), cpu_seconds(server.proc.pid) or 0.0
                took[n] = await temporal.execute_workflow(
                    BareParent.run,
                    args=[n, args.activities, args.seconds],
                    id=f"bare-{uuid.uuid4()}",
                    task_queue="bare",
                )
                w, s = own_cpu() - w0, (cpu_seconds(server.proc.pid) or 0.0) - s0
                print(
                    f"N={n}: {took[n]:.2f} s; server CPU {s:.1f} s ({s / n * 1000:.0f} ms "
                    f"per client), worker CPU {w:.1f} s ({w / n * 1000:.0f} ms per client)",
                    flush=True,
                )
            n = args.clients
            if n > 1:
                marginal = (took[n] - took[1]) / (n - 1) * 1000
                print(
                    f"{args.activities} activities per client: {marginal:.1f} ms per added client"
                )
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--activities", type=int, default=2, help="activities per client")
    p.add_argument("--seconds", type=float, default=12.0, help="one client's switch time")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 1000 or args.activities < 1 or args.seconds <= 0:
        print("bench.bare: --clients 1..1000, --activities >= 1, --seconds > 0", file=sys.stderr)
        return 2
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
