"""A lab for a test: its directory, inventory and `amsm lab serve` process, and the
programs of the project's venv."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inventory.load import load_inventory
from inventory.models import Inventory
from lab.init import free_ports

BIN = Path(sys.executable).parent
TEMPORAL = BIN / "temporal"
AMSM = BIN / "amsm"


@dataclass
class Lab:
    dir: Path
    inventory_path: Path
    inventory: Inventory
    proc: subprocess.Popen[bytes]
    address: str

    def edit_inventory(self, **fields: Any) -> None:
        """Change the lab's inventory (`timing` and `devices` are merged) and reload it."""
        data = yaml.safe_load(self.inventory_path.read_text())
        for key, value in fields.items():
            if key in ("timing", "devices"):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        self.inventory_path.write_text(yaml.safe_dump(data, sort_keys=False))
        self.inventory = load_inventory(self.inventory_path)

    def retime(self, **timing: float) -> None:
        self.edit_inventory(timing=timing)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AMSM_INVENTORY": str(self.inventory_path),
            "TEMPORAL_ADDRESS": self.address,
        }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now, below the kernel's ephemeral
    range and in this test process's slice (lab/init.py free_ports): a port the kernel
    hands out (bind to 0) may be taken by an outgoing connection before the server that
    is to listen on it starts."""
    return free_ports(1)[0]


def wait_ports(ports: list[int], proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lab serve exited with {proc.returncode}")
        for p in list(pending):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", p)) == 0:
                    pending.discard(p)
        time.sleep(0.05)
    if pending:
        raise RuntimeError(f"lab ports not open: {sorted(pending)}")
