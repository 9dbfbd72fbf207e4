"""Real network faults for a test: network namespaces, veth pairs and a bridge.

The worker's side and the lab's side each get a network namespace of their own, joined
by a veth pair each to a bridge in the root namespace (no address on the bridge: the
root namespace is only the switch). A side's link is dropped the way a dead switch
port drops it: its bridge port is set down on the root side, so the worker's own
interface stays up and its packets vanish (no RST, no ICMP), and a connection hangs
until its timeout. Neighbour entries are permanent, as for a peer across a router
whose own link is up: without them a dropped link would fail fast with "No route to
host" once ARP gave up, which is not what a dead WAN link does.

The lab is served inside its namespace (`AMSM_LAB_BIND_ADDRESS`, lab/host.py), and
the drivers run in a process inside the worker's namespace (`python -m
tests.support.netns`, one JSON request a line), which resolves every lab host's name to
the lab's address (`/etc/netns/<ns>/hosts`, which `ip netns exec` mounts over
/etc/hosts) and counts its own open sockets.

Needs root and iproute2 (`ip netns`); a test that cannot have them is skipped with the
reason. Latency and loss would need the `netem` qdisc (`tc qdisc ... netem`), which these
kernels lack: a net made with `wire=True` joins the lab to the bridge through a wire of
our own instead (tests/support/wan.py, two TAP devices and a process that delays and
drops frames), whose `impair` sets both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKER_ADDRESS = "10.77.0.1"
LAB_ADDRESS = "10.77.0.2"
# The root namespace's address on the bridge, where a net is made `with_root`: the
# Temporal server a worker in the worker's namespace reaches (a data centre's server,
# on a link of its own that the lab's faults do not touch).
ROOT_ADDRESS = "10.77.0.254"
PREFIX = 24
ROOT = Path(__file__).resolve().parents[2]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def netns_missing() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); not root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"amsmprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _mac(ns: str, dev: str) -> str:
    out = _ip("-n", ns, "-j", "link", "show", dev).stdout
    return str(json.loads(out)[0]["address"])


@dataclass
class Net:
    """Two namespaces (worker, lab) on one bridge; names unique to this test."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    # The root namespace takes ROOT_ADDRESS on the bridge (one such net at a time on a
    # machine: two would route one subnet twice).
    with_root: bool = False
    # The lab's link is a wire (tests/support/wan.py: two TAP devices and a process
    # between them) instead of a veth pair, so that `impair` can give it a WAN's delay
    # and loss where the kernel has no netem. Its bridge port is the wire's root end,
    # so drop, shape and drop_port work on it as on a veth.
    wire: bool = False
    _wire: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def worker_ns(self) -> str:
        return f"amw{self.tag}"

    @property
    def lab_ns(self) -> str:
        return f"aml{self.tag}"

    @property
    def bridge(self) -> str:
        return f"amb{self.tag}"

    def port(self, side: str) -> str:
        """The root namespace's end of a side's veth: its port on the bridge."""
        return f"am{side[0]}{self.tag}p"

    def make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        for ns, side, address in (
            (self.worker_ns, "worker", WORKER_ADDRESS),
            (self.lab_ns, "lab", LAB_ADDRESS),
        ):
            _ip("netns", "add", ns)
            if side == "lab" and self.wire:
                self._make_wire(ns)
            else:
                _ip(
                    "link", "add", self.port(side), "type", "veth",
                    "peer", "name", "eth0", "netns", ns,
                )  # fmt: skip
            _ip("link", "set", self.port(side), "master", self.bridge, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        if self.with_root:
            _ip("addr", "add", f"{ROOT_ADDRESS}/{PREFIX}", "dev", self.bridge)
        for ns, peer_ns, peer in (
            (self.worker_ns, self.lab_ns, LAB_ADDRESS),
            (self.lab_ns, self.worker_ns, WORKER_ADDRESS),
        ):
            mac = _mac(peer_ns, "eth0")
            _ip(
                "-n", ns, "neigh", "replace", peer, "lladdr", mac, "dev", "eth0", "nud", "permanent"
            )

    def _make_wire(self, ns: str) -> None:
        """The wire's two TAP devices: one the lab's bridge port, the other moved into
        `ns` as its eth0 (a TAP device keeps its process when moved)."""
        inner = f"amt{self.tag}i"
        self._wire = subprocess.Popen(
            [sys.executable, "-m", "tests.support.wan", self.port("lab"), inner],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._wire.stdout is not None
        ready = self._wire.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the wire did not start: {ready!r} ({self._wire.poll()})")
        _ip("link", "set", inner, "netns", ns)
        _ip("-n", ns, "link", "set", inner, "name", "eth0")

    def impair(self, delay_ms: float, loss: float) -> dict[str, int]:
        """The wire's delay and loss, each way (100 ms and 0.01: a 200 ms round trip,
        about 2 % of round trips losing a packet); the frames it has carried and dropped
        so far. Needs a net made with `wire`."""
        return self._ask_wire({"delay_ms": delay_ms, "loss": loss})

    def wire_counts(self) -> dict[str, int]:
        """The frames the wire has carried and dropped so far."""
        return self._ask_wire({})

    def _ask_wire(self, request: dict[str, float]) -> dict[str, int]:
        if not self.wire:
            pytest.skip("delay and loss need the wire's TAP devices, and there is no /dev/net/tun")
        assert self._wire is not None and self._wire.stdin and self._wire.stdout, "no wire"
        self._wire.stdin.write(json.dumps(request).encode() + b"\n")
        self._wire.stdin.flush()
        answer = self._wire.stdout.readline()
        try:
            counts: dict[str, int] = json.loads(answer)
        except ValueError:
            raise RuntimeError(f"the wire refused: {answer!r} ({self._wire.poll()})") from None
        return counts

    def remove(self) -> None:
        """Everything make() made; whatever is already gone is skipped."""
        if self._wire is not None:
            stop(self._wire)  # its TAP devices go with it
            self._wire = None
        for ns in (self.worker_ns, self.lab_ns):
            _ip("netns", "del", ns, check=False)  # takes its veth ends, so their peers
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        for side in ("worker", "lab"):
            _ip("link", "del", self.port(side), check=False)
        _ip("link", "del", self.bridge, check=False)

    def drop(self, side: str) -> None:
        """The side's bridge port goes down: its packets vanish; its own interface
        stays up."""
        _ip("link", "set", self.port(side), "down")

    def restore(self, side: str) -> None:
        _ip("link", "set", self.port(side), "up")

    def drop_port(self, side: str, *ports: int) -> None:
        """Packets to the TCP `ports` in the side's namespace vanish (a firewall that
        drops, not rejects), every other port answers. No iptables/nftables here, and no drop
        action (act_gact) in every kernel: an htb root on the side's bridge port sends
        what u32 matches to a class whose qdisc is `blackhole`, which drops all it is
        given. Skips the test when the kernel lacks one of them."""
        dev = self.port(side)
        steps = [
            ["qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10"],
            ["class", "replace", "dev", dev, "parent", "1:", "classid", "1:10", "htb"]
            + ["rate", "10gbit", "quantum", "60000"],
            ["class", "replace", "dev", dev, "parent", "1:", "classid", "1:20", "htb"]
            + ["rate", "10gbit", "quantum", "60000"],
            ["qdisc", "replace", "dev", dev, "parent", "1:20", "handle", "20:", "blackhole"],
        ] + [
            ["filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32"]
            + ["match", "ip", "dport", str(port), "0xffff", "classid", "1:20"]
            for port in ports
        ]
        for step in steps:
            done = subprocess.run(["tc", *step], capture_output=True, text=True, timeout=20)
            if done.returncode != 0:
                self.restore_ports(side)
                pytest.skip(f"cannot drop one port: `tc {' '.join(step)}`: {done.stderr.strip()}")

    def shape(self, side: str, *qdisc: str) -> None:
        """What the side's bridge port sends towards it goes through `qdisc` (netem's
        delay and loss, tbf's rate): one direction per port, so shaping both sides'
        ports shapes the link both ways. Skips the test when the kernel lacks it."""
        step = ["qdisc", "replace", "dev", self.port(side), "root", *qdisc]
        done = subprocess.run(["tc", *step], capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            pytest.skip(f"`tc {' '.join(step)}` failed: {done.stderr.strip()}")

    def sent_bytes(self, side: str) -> int:
        """Bytes the root qdisc of the side's bridge port has sent."""
        out = subprocess.run(
            ["tc", "-s", "-j", "qdisc", "show", "dev", self.port(side), "root"],
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        ).stdout
        return int(json.loads(out)[0]["bytes"])

    def restore_ports(self, side: str) -> None:
        subprocess.run(
            ["tc", "qdisc", "del", "dev", self.port(side), "root"],
            capture_output=True,
            timeout=20,
        )

    def hosts_file(self, names: list[str]) -> None:
        """In the worker's namespace every name resolves to the lab's address."""
        d = Path("/etc/netns") / self.worker_ns
        d.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost"] + [f"{LAB_ADDRESS} {n}" for n in names]
        (d / "hosts").write_text("\n".join(lines) + "\n")

    def spawn(self, ns: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


@contextlib.contextmanager
def network(with_root: bool = False, wire: bool = False) -> Iterator[Net]:
    """A Net for the test, removed afterwards whatever happened; skips when it cannot."""
    why = netns_missing()
    if why is not None:
        pytest.skip(why)
    # Without TAP devices the lab's link is a veth as for any other net, and only a
    # test that asks for delay or loss (`impair`) is skipped.
    net = Net(with_root=with_root, wire=wire and os.path.exists("/dev/net/tun"))
    try:
        net.make()
        yield net
    finally:
        net.remove()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process started by Net.spawn, and its process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def names_to_hosts(inventory: Path) -> list[str]:
    """Point every host of the lab inventory at its name instead of 127.0.0.1 (its
    WinRM certificate names it; its SSH key is added to known_hosts under the name
    too); the names."""
    data = yaml.safe_load(inventory.read_text())
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("address") == "127.0.0.1" and isinstance(node.get("host"), str):
                node["address"] = node["host"]
                names.append(node["host"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    known = inventory.parent / "known_hosts"
    lines = known.read_text().splitlines()
    ports = {int(line.split()[0].rsplit(":", 1)[1]): line for line in lines}
    hosts = [h for h in _host_ports(data)]
    extra = [
        ports[port].replace("[127.0.0.1]", f"[{name}]", 1) for name, port in hosts if port in ports
    ]
    known.write_text("\n".join(lines + extra) + "\n")
    return names


def _host_ports(data: Any) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    if isinstance(data, dict):
        if isinstance(data.get("host"), str) and isinstance(data.get("port"), int):
            out.append((data["host"], data["port"]))
        for v in data.values():
            out.extend(_host_ports(v))
    elif isinstance(data, list):
        for v in data:
            out.extend(_host_ports(v))
    return out


class DriverProcess:
    """The drivers, run in a process inside the worker's namespace; ask() sends one
    request and reads its answer."""

    def __init__(self, net: Net, inventory: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = net.spawn(
            net.worker_ns, [sys.executable, "-m", "tests.support.netns", str(inventory)], env
        )

    async def ask(self, request: dict[str, Any], within: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        stdin, stdout = self.proc.stdin, self.proc.stdout

        def exchange() -> dict[str, Any]:
            stdin.write((json.dumps(request) + "\n").encode())
            stdin.flush()
            line = stdout.readline()
            if not line:
                raise RuntimeError(f"the driver process exited ({self.proc.poll()})")
            answer: dict[str, Any] = json.loads(line)
            return answer

        return await asyncio.wait_for(asyncio.to_thread(exchange), within)

    def close(self) -> None:
        stop(self.proc)


# -- the driver process (inside the worker's namespace) -------------------------------------


def open_sockets() -> int:
    """This process's open sockets (its file descriptors that are sockets)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
    return n


async def _answer(ctx: Any, request: dict[str, Any]) -> dict[str, Any]:
    from activities.drivers.errors import DriverError

    if "sleep" in request:
        await asyncio.sleep(float(request["sleep"]))
        return {"sockets": open_sockets()}
    if "wait_ports" in request:
        deadline = time.monotonic() + 30
        for port in request["wait_ports"]:
            while True:
                try:
                    _r, w = await asyncio.open_connection(LAB_ADDRESS, int(port))
                except OSError:
                    if time.monotonic() > deadline:
                        return {"ok": False, "error": f"port {port} not open"}
                    await asyncio.sleep(0.1)
                    continue
                w.close()
                break
        return {"ok": True, "sockets": open_sockets()}
    host = next(h for _, h in ctx.inv.all_hosts() if h.host == request["host"])
    if "transport" in request:  # the same host over another transport, its credentials
        update = {"transport": request["transport"], "credentials": request["credentials"]}
        host = host.model_copy(update=update)
    timing = ctx.inv.timing
    if "timing" in request:  # this request's timeouts only
        ctx.inv = ctx.inv.model_copy(update={"timing": timing.model_copy(update=request["timing"])})
    started = time.monotonic()
    try:
        out = await ctx.host(host).run(*request["statements"])
    except DriverError as e:
        return {
            "ok": False,
            "type": type(e).__name__,
            "error": str(e),
            "host": e.host,
            "seconds": time.monotonic() - started,
            "sockets": open_sockets(),
        }
    finally:
        ctx.inv = ctx.inv.model_copy(update={"timing": timing})
    return {
        "ok": True,
        "out": out,
        "seconds": time.monotonic() - started,
        "sockets": open_sockets(),
    }


async def _serve(inventory: str) -> None:
    from activities.context import DeviceContext
    from inventory.load import load_inventory

    path = Path(inventory)
    ctx = DeviceContext(load_inventory(path), path)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        answer = await _answer(ctx, json.loads(line))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
