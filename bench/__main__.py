"""`python -m bench`: switch N clients on the lab and write what it cost.

    python -m bench [--clients 1,10,100,500] [--reboot 3] [--status-devices 200]
                    [--name NAME] [--out bench/results] [--keep DIR]

For each N: a fresh lab of N editors (reboots take --reboot seconds), a fresh worker,
and a real switch X -> Y driven to its end by the benchmark's operator, all on one
embedded Temporal dev server (SQLite). Then `amsm status` on a lab of
--status-devices devices. Writes bench/results/NAME.json and NAME.md and prints the
table. Exit status 0 when every run ended well (goals missed are reported, not
fatal), 1 when a run failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench import figures, report
from bench.operator import switch
from bench.stack import (
    BenchError,
    LabUnderTest,
    TemporalServer,
    WorkerProcess,
    cpu_seconds,
    infrastructure_devices,
)
from records.history import parse_history
from workers.embedded import amsm_binary, frontend_ready

# Infrastructure of a lab pair besides its clients: per side 1 SmartBins, 2 NAS heads,
# 1 bridge, 1 DSM; the Control Point PC; the Browse hosts.
GOALS = {
    "ratio_at_100": 1.5,
    "marginal_ms_at_500": 40.0,
    "overhead_ms_median": 50.0,
    "confirm_ms_median": 250.0,
    "parent_events_max": 10240,
    "status_seconds": 2.0,
}


def sizes(text: str) -> list[int]:
    try:
        out = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--clients takes numbers like 1,10,100: {text!r}"
        ) from None
    if not out or out[0] < 1 or out[-1] > 500:
        raise argparse.ArgumentTypeError("--clients takes numbers from 1 to 500")
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=sizes, default=sizes("1,10,100,500"), help="sizes N")
    p.add_argument("--reboot", type=float, default=3.0, help="lab reboot seconds (R)")
    p.add_argument("--status-devices", type=int, default=200, help="devices for `amsm status`")
    p.add_argument("--name", default=None, help="result name (default: the date and sizes)")
    p.add_argument("--out", default="bench/results", help="folder for NAME.json and NAME.md")
    p.add_argument("--keep", default=None, metavar="DIR", help="work in DIR and keep it")
    p.add_argument("--timeout", type=float, default=1800, help="seconds for one switch")
    return p


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def one_size(
    temporal: Client, server: TemporalServer, root: Path, n: int, reboot: float, timeout: float
) -> dict[str, Any]:
    lab = LabUnderTest(root, f"bench{n}", n, reboot)
    worker = WorkerProcess(lab, server.address)
    lab.start()
    worker.start()
    sampling = True

    async def sample() -> None:
        while sampling:
            worker.sample()
            worker.check()
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    procs = {"temporal": server.proc, "lab": lab.proc, "worker": worker.proc}
    cpu0 = {k: cpu_seconds(p.pid) if p else None for k, p in procs.items()}
    cpu: dict[str, float | None] = {}
    try:
        print(f"bench: N={n}: switching {n} client(s) X -> Y ...", file=sys.stderr, flush=True)
        drive = await asyncio.wait_for(switch(temporal, lab, "Y", timeout), timeout + 60)
        for k, p in procs.items():
            now, was = (cpu_seconds(p.pid) if p else None), cpu0[k]
            cpu[k] = None if now is None or was is None else round(now - was, 2)
        handle = temporal.get_workflow_handle(drive.final["workflow_id"], run_id=drive.run_id)
        run = parse_history(await handle.fetch_history())
        sc = figures.switch_clients(run)
        overheads = figures.step_overheads_ms(run)
        confirms = figures.confirm_latencies_ms(run, drive.sent)
        children = [
            c["workflow_id"]
            for s in drive.final["steps"]
            for c in s.get("clients") or []
            if c.get("workflow_id")
        ]
        sizes_ = await child_history_lengths(temporal, children)
    finally:
        sampling = False
        await asyncio.gather(sampler, return_exceptions=True)
        worker.stop()
        lab.stop()
    return {
        "clients": n,
        "devices": lab.devices + 2,
        "run_id": drive.run_id,
        "run_seconds": round(drive.seconds, 2),
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in sc.items()},
        "ratio": round(figures.ratio(sc["step_seconds"], sc["client_seconds_median"]), 3),
        "projected_ratio": round(
            figures.projected_ratio(sc["step_seconds"], sc["client_seconds_median"], reboot), 4
        ),
        "overhead_ms": figures.summary(overheads),
        "confirm_to_activity_ms": figures.summary(confirms),
        "parent_events": run.event_count,
        "largest_child_events": max(sizes_) if sizes_ else None,
        "worker_peak_mb": round(worker.peak_mb, 1) if worker.peak_mb else None,
        # CPU each process used during the run (the operator's own is not counted).
        "cpu_seconds": cpu,
    }


async def child_history_lengths(temporal: Client, workflow_ids: list[str]) -> list[int]:
    limit = asyncio.Semaphore(20)

    async def one(wid: str) -> int:
        async with limit:
            desc = await temporal.get_workflow_handle(wid).describe()
            return int(desc.raw_description.workflow_execution_info.history_length)

    return list(await asyncio.gather(*(one(w) for w in workflow_ids)))


async def status_figure(
    temporal: Client, server: TemporalServer, root: Path, devices: int, reboot: float
) -> dict[str, Any]:
    """`amsm status` as an operator types it (a new process each time) on a big pair."""
    infra = infrastructure_devices(root, reboot)
    clients = max(1, devices - infra)
    lab = LabUnderTest(root, "status", clients, reboot)
    worker = WorkerProcess(lab, server.address)
    lab.start()
    worker.start()
    env = {
        **os.environ,
        "AMSM_INVENTORY": str(lab.inventory_path),
        "TEMPORAL_ADDRESS": server.address,
    }
    times: list[float] = []
    try:
        print(f"bench: `amsm status` on {lab.devices + 2} devices ...", file=sys.stderr, flush=True)
        for _ in range(6):
            t0 = time.monotonic()
            done = await asyncio.to_thread(
                subprocess.run, [*amsm_binary(), "status", "--json"], env=env, capture_output=True
            )
            took = time.monotonic() - t0
            if done.returncode != 0:
                raise BenchError(
                    f"amsm status failed: {done.stdout.decode()} {done.stderr.decode()}"
                )
            data = json.loads(done.stdout)
            if len(data.get("clients", [])) != clients:
                raise BenchError(
                    f"amsm status listed {len(data.get('clients', []))} of {clients} clients"
                )
            times.append(took)
    finally:
        worker.stop()
        lab.stop()
    # The first call also waits for the new worker to poll; report it, judge the rest.
    warm = times[1:]
    return {
        "devices": lab.devices + 2,
        "first_seconds": round(times[0], 3),
        "median_seconds": round(statistics.median(warm), 3),
        "max_seconds": round(max(warm), 3),
        "runs": [round(t, 3) for t in times],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from workers.worker import Connection, connect

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="amsm-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    server = TemporalServer(root)
    server.start()
    await frontend_ready(server.address)
    started = datetime.now(UTC)
    try:
        temporal = await connect(Connection(address=server.address))
        results = []
        for n in args.clients:
            results.append(await one_size(temporal, server, root, n, args.reboot, args.timeout))
        status = await status_figure(temporal, server, root, args.status_devices, args.reboot)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    by_n = {r["clients"]: r for r in results}
    if 1 in by_n:
        for r in results:
            m = figures.marginal_ms(r["step_seconds"], by_n[1]["step_seconds"], r["clients"])
            r["marginal_ms"] = None if m is None else round(m, 1)
    return {
        "name": args.name,
        "started_at": started.isoformat(timespec="seconds"),
        "reboot_seconds": args.reboot,
        "machine": machine(),
        "sizes": results,
        "status": status,
        "goals": report.goals(results, status, GOALS),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.name is None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        args.name = f"{stamp}-n{'-'.join(str(n) for n in args.clients)}-r{args.reboot:g}"
    try:
        result = asyncio.run(main_async(args))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = report.markdown(result)
    (out / f"{args.name}.md").write_text(table)
    print(table)
    print(f"bench: wrote {out / (args.name + '.json')} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
