"""`python -m bench.soak`: nights back to back, and what the worker keeps after each switch.

    python -m bench.soak [--switches 50] [--clients 50] [--reboot 3] [--warmup 5]
                         [--rss-mb 20] [--fd-slack 8] [--name NAME] [--out bench/results]
                         [--keep DIR]

One embedded Temporal dev server (SQLite), one lab of --clients editors and one worker,
all kept for the whole soak; --switches real switches X -> Y -> X ... driven to their
end by the benchmark's operator (bench/operator.py). After each switch: the worker's
resident memory, its open file descriptors and sockets (/proc/<worker pid>/), its SSH
and WinRM connections per lab host (its sockets grouped by the host port they reach),
the lab's own open sockets on those ports (its side of the same connections: one the
worker forgot but the lab still holds shows there), and the sizes of the run's
histories (events and bytes, the parent and every child). Growth beyond the bounds
(`judge`, docs/maintainers/benchmark.md says why these) fails the soak. Writes
bench/results/NAME.json and NAME.md. Exit status 0 when every bound held, 1 when a
bound was exceeded or a switch failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.history.v1 import History
from temporalio.client import Client

from activities.drivers.host import SESSIONS_PER_HOST
from bench.__main__ import machine
from bench.operator import switch
from bench.stack import BenchError, LabUnderTest, TemporalServer, WorkerProcess
from inventory.models import Inventory
from workers.embedded import frontend_ready

# /proc/net/tcp's state column (include/net/tcp_states.h).
TCP_STATES = {
    "01": "established",
    "02": "syn-sent",
    "03": "syn-recv",
    "04": "fin-wait1",
    "05": "fin-wait2",
    "06": "time-wait",
    "07": "close",
    "08": "close-wait",
    "09": "last-ack",
    "0A": "listen",
    "0B": "closing",
}


@dataclass(frozen=True)
class Bounds:
    """What the soak allows the worker to keep growing (the defaults: benchmark.md)."""

    rss_mb: float = 20.0  # last switch's RSS over the reference switch's, MiB
    fd_slack: int = 8  # open fds (and sockets) after the last switch over the reference's
    ssh_per_host: int = 2  # the pooled connection, and one being replaced
    winrm_per_host: int = SESSIONS_PER_HOST  # the driver's own cap on sessions per host
    history_growth: float = 0.10  # a run's parent events over the same direction's first


def _arg_int(low: int, high: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = low - 1
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"{what} takes a whole number {low}..{high}: {text!r}")
        return v

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--switches", type=_arg_int(2, 1000, "--switches"), default=50)
    p.add_argument("--clients", type=_arg_int(1, 500, "--clients"), default=50)
    p.add_argument("--reboot", type=float, default=3.0, help="lab reboot seconds (R)")
    p.add_argument(
        "--warmup",
        type=_arg_int(1, 1000, "--warmup"),
        default=5,
        help="the reference switch: growth is measured from the first switch at or after "
        "this one in the same direction as the last",
    )
    p.add_argument("--rss-mb", type=float, default=Bounds.rss_mb, help="RSS growth bound, MiB")
    p.add_argument("--fd-slack", type=int, default=Bounds.fd_slack, help="fd/socket slack k")
    p.add_argument("--name", default=None, help="result name (default: the date and size)")
    p.add_argument("--out", default="bench/results", help="folder for NAME.json and NAME.md")
    p.add_argument("--keep", default=None, metavar="DIR", help="work in DIR and keep it")
    p.add_argument("--timeout", type=float, default=1800, help="seconds for one switch")
    return p


# -- what /proc tells about a process --------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """Resident memory now (VmRSS), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def open_fds(pid: int) -> tuple[dict[str, int], set[str]]:
    """The process's open file descriptors by kind (socket, pipe, anon_inode:[eventfd],
    file...), and the inodes of its sockets."""
    kinds: dict[str, int] = {}
    sockets = set()
    base = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(base):
        try:
            target = os.readlink(base / fd)
        except OSError:  # closed while listed
            continue
        kind = fd_kind(target)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "socket":
            sockets.add(target[8:-1])
    return kinds, sockets


def fd_kind(target: str) -> str:
    """What an fd's link says it is: `socket:[123]` -> socket, `anon_inode:[eventfd]`
    stays, a path -> file (a SQLite DSM, a log)."""
    if target.startswith(("socket:", "pipe:")):
        return target.split(":", 1)[0]
    if target.startswith("anon_inode:"):
        return target
    return "file"


def parse_proc_net_tcp(text: str) -> dict[str, tuple[int, int, str]]:
    """/proc/<pid>/net/tcp or tcp6: socket inode -> (local port, remote port, state)."""
    out: dict[str, tuple[int, int, str]] = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        local, remote, state, inode = f[1], f[2], f[3], f[9]
        out[inode] = (
            int(local.rsplit(":", 1)[1], 16),
            int(remote.rsplit(":", 1)[1], 16),
            TCP_STATES.get(state.upper(), state),
        )
    return out


def tcp_sockets(pid: int, inodes: set[str]) -> list[tuple[int, int, str]]:
    """The process's TCP sockets: (local port, remote port, state) each."""
    table: dict[str, tuple[int, int, str]] = {}
    for name in ("tcp", "tcp6"):
        try:
            table.update(parse_proc_net_tcp(Path(f"/proc/{pid}/net/{name}").read_text()))
        except OSError:
            continue
    return [table[i] for i in inodes if i in table]


def host_ports(inventory: Inventory) -> dict[int, tuple[str, str]]:
    """Each lab host's ports: port -> (host, "ssh" | "winrm")."""
    out: dict[int, tuple[str, str]] = {}
    for _, h in inventory.all_hosts():
        if h.transport == "winrm":
            out[h.winrm_settings.endpoint_port] = (h.host, "winrm")
        else:
            out[h.port] = (h.host, "ssh")
    return out


def per_host(
    sockets: list[tuple[int, int, str]], ports: dict[int, tuple[str, str]], by: str
) -> dict[str, dict[str, int]]:
    """Connections per transport and host: by the remote port (the worker's side) or the
    local port (the lab's side, listeners left out)."""
    out: dict[str, dict[str, int]] = {"ssh": {}, "winrm": {}}
    for local, remote, state in sockets:
        port = remote if by == "remote" else local
        if state == "listen" or port not in ports:
            continue
        host, transport = ports[port]
        out[transport][host] = out[transport].get(host, 0) + 1
    return out


def sample(worker_pid: int, lab_pid: int, ports: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """What the worker holds now, and the lab's side of its connections."""
    kinds, inodes = open_fds(worker_pid)
    mine = tcp_sockets(worker_pid, inodes)
    hosts = per_host(mine, ports, "remote")
    _, lab_inodes = open_fds(lab_pid)
    lab = tcp_sockets(lab_pid, lab_inodes)
    lab_hosts = per_host(lab, ports, "local")
    rss = rss_mb(worker_pid)
    return {
        "rss_mb": None if rss is None else round(rss, 1),
        "fds": sum(kinds.values()),
        "fd_kinds": dict(sorted(kinds.items())),
        "sockets": len(inodes),
        "tcp_states": dict(sorted(_count(s for _, _, s in mine).items())),
        "ssh_connections": sum(hosts["ssh"].values()),
        "winrm_connections": sum(hosts["winrm"].values()),
        "ssh_max_per_host": max(hosts["ssh"].values(), default=0),
        "winrm_max_per_host": max(hosts["winrm"].values(), default=0),
        "lab_connections": sum(lab_hosts["ssh"].values()) + sum(lab_hosts["winrm"].values()),
        "lab_close_wait": sum(1 for lo, _, s in lab if lo in ports and s == "close-wait"),
        "per_host": hosts,
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# -- the verdict (pure) --------------------------------------------------------------------


def reference_index(directions: list[str], warmup: int) -> int:
    """The switch growth is measured from: the first at or after the `warmup`-th (1-based)
    that goes the same way as the last (the two directions touch different hosts), before
    the last; in a soak shorter than that, the latest such switch before the last."""
    last = len(directions) - 1
    same = [i for i in range(last) if directions[i] == directions[last]]
    if not same:
        return last
    return next((i for i in same if i >= warmup - 1), same[-1])


def judge(samples: list[dict[str, Any]], bounds: Bounds, warmup: int) -> list[dict[str, Any]]:
    """Each bound with the figure it is judged on (`met` False when exceeded)."""
    ref_i = reference_index([s["to"] for s in samples], warmup)
    ref, last = samples[ref_i], samples[-1]
    out: list[dict[str, Any]] = []

    def bound(what: str, value: float, limit: float) -> None:
        out.append({"bound": what, "value": value, "limit": limit, "met": value <= limit})

    label = f"switch {len(samples)} over switch {ref_i + 1}"
    bound(
        f"worker RSS growth, MiB ({label})", round(last["rss_mb"] - ref["rss_mb"], 1), bounds.rss_mb
    )
    bound(f"worker open fds growth ({label})", last["fds"] - ref["fds"], bounds.fd_slack)
    bound(f"worker sockets growth ({label})", last["sockets"] - ref["sockets"], bounds.fd_slack)
    bound(
        "SSH connections to one host, most after any switch",
        max(s["ssh_max_per_host"] for s in samples),
        bounds.ssh_per_host,
    )
    bound(
        "WinRM connections to one host, most after any switch",
        max(s["winrm_max_per_host"] for s in samples),
        bounds.winrm_per_host,
    )
    bound(
        "lab connections no worker holds (lab - worker, after the last switch)",
        last["lab_connections"] - last["ssh_connections"] - last["winrm_connections"],
        bounds.fd_slack,
    )
    growth = 0.0
    first_of: dict[str, int] = {}
    for s in samples:
        first = first_of.setdefault(s["to"], s["parent_events"])
        growth = max(growth, (s["parent_events"] - first) / first)
    bound(
        "a run's parent history events over its direction's first, ratio",
        round(growth, 3),
        bounds.history_growth,
    )
    return out


def slope_per_switch(values: list[float]) -> float | None:
    """Least-squares growth per switch (MiB/switch for RSS), for the reader."""
    if len(values) < 2:
        return None
    xs = list(range(len(values)))
    mx, my = statistics.fmean(xs), statistics.fmean(values)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, values, strict=True)) / den


# -- the run --------------------------------------------------------------------------------


async def history_size(temporal: Client, workflow_id: str, run_id: str | None) -> tuple[int, int]:
    """A run's history: how many events, and its bytes as the server sends them."""
    h = await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return len(h.events), History(events=h.events).ByteSize()


async def histories(temporal: Client, final: dict[str, Any], run_id: str) -> dict[str, Any]:
    parent = await history_size(temporal, final["workflow_id"], run_id)
    children = sorted(
        {
            c["workflow_id"]
            for s in final["steps"]
            for c in s.get("clients") or []
            if c.get("workflow_id")
        }
    )
    sizes = [await history_size(temporal, w, None) for w in children]
    return {
        "parent_events": parent[0],
        "parent_bytes": parent[1],
        "children": len(sizes),
        "children_events": sum(e for e, _ in sizes),
        "children_bytes": sum(b for _, b in sizes),
        "largest_child_events": max((e for e, _ in sizes), default=0),
    }


async def polling(
    worker: WorkerProcess, lab: LabUnderTest, ports: dict[int, tuple[str, str]]
) -> dict[str, Any]:
    """The baseline: the worker once it has connected to the server (a socket open),
    before any switch."""
    assert worker.proc is not None and lab.proc is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        worker.check()
        now = sample(worker.proc.pid, lab.proc.pid, ports)
        if now["tcp_states"].get("established"):
            await asyncio.sleep(2)  # its pollers started
            return sample(worker.proc.pid, lab.proc.pid, ports)
        await asyncio.sleep(0.5)
    raise BenchError("the worker did not connect to the server within 60 s")


async def soak(args: argparse.Namespace, root: Path, save: Any) -> list[dict[str, Any]]:
    from workers.worker import Connection, connect

    server = TemporalServer(root)
    server.start()
    await frontend_ready(server.address)
    lab = LabUnderTest(root, "soak", args.clients, args.reboot)
    worker = WorkerProcess(lab, server.address)
    ports = host_ports(lab.inventory)
    samples: list[dict[str, Any]] = []
    try:
        lab.start()
        worker.start()
        assert lab.proc is not None and worker.proc is not None
        temporal = await connect(Connection(address=server.address))
        baseline = await polling(worker, lab, ports)
        for i in range(args.switches):
            to = "Y" if i % 2 == 0 else "X"
            print(
                f"bench.soak: switch {i + 1}/{args.switches} -> {to} ...",
                file=sys.stderr,
                flush=True,
            )
            drive = await asyncio.wait_for(
                switch(temporal, lab, to, args.timeout), args.timeout + 60
            )
            worker.check()
            now = sample(worker.proc.pid, lab.proc.pid, ports)
            if i < args.switches - 1:
                now.pop("per_host")  # kept for the last switch only
            sizes = await histories(temporal, drive.final, drive.run_id)
            samples.append(
                {"switch": i + 1, "to": to, "seconds": round(drive.seconds, 2), **now, **sizes}
            )
            save(baseline, samples, lab.devices + 2)
    finally:
        worker.stop()
        lab.stop()
        server.stop()
    return samples


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.name is None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        args.name = f"soak-{stamp}-s{args.switches}-c{args.clients}"
    bounds = Bounds(rss_mb=args.rss_mb, fd_slack=args.fd_slack)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="amsm-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(UTC), time.monotonic()
    result: dict[str, Any] = {}

    def save(baseline: dict[str, Any], samples: list[dict[str, Any]], devices: int) -> None:
        """Written after every switch: a soak cut short still leaves its figures."""
        result.clear()
        result.update(
            {
                "name": args.name,
                "started_at": started.isoformat(timespec="seconds"),
                "wall_seconds": round(time.monotonic() - t0, 1),
                "complete": len(samples) == args.switches,
                "switches": len(samples),
                "switches_asked": args.switches,
                "clients": args.clients,
                "devices": devices,
                "reboot_seconds": args.reboot,
                "warmup": args.warmup,
                "machine": machine(),
                "bounds": asdict(bounds),
                "rss_slope_mb_per_switch": _round(slope_per_switch([s["rss_mb"] for s in samples])),
                "baseline": baseline,
                "samples": samples,
                "verdicts": judge(samples, bounds, args.warmup),
            }
        )
        (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / f"{args.name}.md").write_text(markdown(result))

    try:
        asyncio.run(soak(args, root, save))
    except BenchError as e:
        print(f"bench.soak: {e}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(markdown(result))
    print(f"bench.soak: wrote {out / (args.name + '.json')} and .md", file=sys.stderr)
    return 0 if all(v["met"] for v in result["verdicts"]) else 1


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Soak {result['name']}",
        "",
        f"{result['started_at']}; {result['switches']} switches back and forth"
        f"{'' if result['complete'] else ' (of ' + str(result['switches_asked']) + ' asked: cut short)'}, "
        f"{result['clients']} clients ({result['devices']} devices), R = "
        f"{result['reboot_seconds']:g} s; {m['cpus']} CPUs ({m['cpu_model'] or 'unknown'}), "
        f"Python {m['python']}; one dev server, lab and worker for the whole soak; "
        f"{result['wall_seconds']:.0f} s in all. Worker RSS slope "
        f"{result['rss_slope_mb_per_switch']} MiB/switch.",
        "",
        "| # | to | s | RSS MiB | fds | sockets | SSH | WinRM | SSH/host max "
        "| WinRM/host max | lab conns | lab close-wait | parent events | parent KiB "
        "| children | children events | children KiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    b = result["baseline"]
    lines.append(
        f"| 0 | - | - | {b['rss_mb']} | {b['fds']} | {b['sockets']} | {b['ssh_connections']} "
        f"| {b['winrm_connections']} | {b['ssh_max_per_host']} | {b['winrm_max_per_host']} "
        f"| {b['lab_connections']} | {b['lab_close_wait']} | - | - | - | - | - |"
    )
    for s in result["samples"]:
        lines.append(
            f"| {s['switch']} | {s['to']} | {s['seconds']} | {s['rss_mb']} | {s['fds']} "
            f"| {s['sockets']} | {s['ssh_connections']} | {s['winrm_connections']} "
            f"| {s['ssh_max_per_host']} | {s['winrm_max_per_host']} | {s['lab_connections']} "
            f"| {s['lab_close_wait']} | {s['parent_events']} | {s['parent_bytes'] / 1024:.1f} "
            f"| {s['children']} | {s['children_events']} | {s['children_bytes'] / 1024:.1f} |"
        )
    lines += ["", "| bound | value | limit | met |", "|---|---:|---:|---|"]
    for v in result["verdicts"]:
        lines.append(
            f"| {v['bound']} | {v['value']} | {v['limit']} | {'yes' if v['met'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
