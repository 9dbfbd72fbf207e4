"""The processes a benchmark runs against: the embedded Temporal server, a lab, a worker.

All three are the real programs (`temporal server start-dev` on a SQLite file,
`amsm lab serve`, `amsm worker`), started as subprocesses, so the figures include
every protocol hop the service makes in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import yaml

from inventory.load import load_inventory
from inventory.models import Inventory
from lab.init import free_ports, init_lab
from workers.embedded import amsm_binary, temporal_binary
from workflows import server


class BenchError(Exception):
    """The benchmark could not run (a process died, a run failed): the message says why."""


def free_port() -> int:
    """A free port below the kernel's ephemeral range (lab/init.py free_ports): a port
    the kernel handed out (bind to 0) can be taken by any outgoing connection before the
    server that was to listen on it starts."""
    return free_ports(1)[0]


def wait_ports(ports: list[int], proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not open port {pending[0]} within {timeout:.0f} s")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", pending[0])) == 0:
                pending.pop(0)
                continue
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), in MiB; None where /proc has no answer."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TemporalServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def start(self) -> None:
        log = open(self.root / "temporal.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [
                temporal_binary(),
                "server",
                "start-dev",
                "--db-filename",
                str(self.root / "temporal.db"),
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--headless",
                "--log-level",
                "error",
                *server.dev_server_flags(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_ports([self.port], self.proc, "the Temporal dev server", 60)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM)


class LabUnderTest:
    """A lab of `clients` switchable clients (`ingest` of them ingest servers, the rest
    editors), its inventory tuned for the benchmark, served."""

    def __init__(
        self, root: Path, name: str, clients: int, reboot_seconds: float, ingest: int = 0
    ) -> None:
        self.dir = root / name
        init_lab(
            self.dir,
            editors=clients - ingest,
            ingest=ingest,
            smartbins=1,
            reboot_seconds=reboot_seconds,
        )
        self.inventory_path = self.dir / "inventory.yaml"
        data = yaml.safe_load(self.inventory_path.read_text())
        data["pair"] = name
        data["task_queue"] = f"amsm-{name}"
        # Every client at once: the benchmark measures the fan-out, not the throttle.
        data["timing"]["max_parallel_clients"] = max(1, min(500, clients))
        # The production default, not the lab's 10 s: every running activity heartbeats,
        # and at 500 clients the lab's rate alone keeps the embedded server busy.
        data["timing"]["heartbeat_timeout"] = 30
        self.inventory_path.write_text(yaml.safe_dump(data, sort_keys=False))
        self.inventory: Inventory = load_inventory(self.inventory_path)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def devices(self) -> int:
        return len(list(self.inventory.all_hosts()))

    def start(self) -> None:
        log = open(self.dir / "serve.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [*amsm_binary(), "lab", "serve", "--dir", str(self.dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ports = [h.port for _, h in self.inventory.all_hosts()]
        wait_ports(ports, self.proc, f"the lab {self.dir.name}", 120)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM)


def infrastructure_devices(root: Path, reboot_seconds: float) -> int:
    """The devices of a lab pair besides its clients (a lab of one client, sized and
    removed); the devices a benchmark reports count the two sides' pair itself too."""
    probe = LabUnderTest(root, "sizing", 1, reboot_seconds)
    try:
        return probe.devices + 2 - 1
    finally:
        shutil.rmtree(probe.dir)


class WorkerProcess:
    def __init__(self, lab: LabUnderTest, address: str) -> None:
        self.lab = lab
        self.address = address
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_mb: float | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "AMSM_INVENTORY": str(self.lab.inventory_path),
            "TEMPORAL_ADDRESS": self.address,
        }
        log = open(self.lab.dir / "worker.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [*amsm_binary(), "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def sample(self) -> None:
        """Remember the worker's peak memory so far (read before it exits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.peak_mb = peak_rss_mb(self.proc.pid) or self.peak_mb

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(
                f"the worker exited with status {self.proc.returncode}; "
                f"see {self.lab.dir / 'worker.log'}"
            )

    def stop(self) -> None:
        self.sample()
        if self.proc is not None:
            stop(self.proc, signal.SIGINT)


class ConsoleProcess:
    """`amsm console` serving the lab's pair (its accounts beside the inventory)."""

    def __init__(self, lab: LabUnderTest, address: str) -> None:
        self.lab = lab
        self.address = address
        self.port = 0  # chosen by start()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Chosen now, with the lab serving: its ports come from the same range and are
        # taken only once it listens (a port chosen before could be one of them).
        self.port = free_port()
        env = {
            **os.environ,
            "AMSM_INVENTORY": str(self.lab.inventory_path),
            "TEMPORAL_ADDRESS": self.address,
        }
        log = open(self.lab.dir / "console.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [*amsm_binary(), "console", "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_ports([self.port], self.proc, "amsm console", 60)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGINT)
