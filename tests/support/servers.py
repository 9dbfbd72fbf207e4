"""A Temporal dev server of a test's own (to stop and start under a running worker)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

from tests.support.lab import TEMPORAL
from workers.embedded import frontend_ready
from workflows import server


async def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            str(TEMPORAL), "server", "start-dev", "--headless", "--db-filename", str(db),
            "--ip", "127.0.0.1", "--port", str(port), "--log-level", "error",
            *server.dev_server_flags(),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                await frontend_ready(f"127.0.0.1:{port}")
                return proc
        await asyncio.sleep(0.1)
    raise RuntimeError("the dev server did not start")
