"""The worker: the pair's workflows and device activities on the pair's task queue."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig
from temporalio.worker import Worker

from activities.devices import DeviceActivities
from activities.pair import PairActivities
from inventory.load import load_inventory
from inventory.models import Inventory
from workers.codec import CodecConfigError, data_converter, load_codec
from workers.interceptors import RunContextInterceptor
from workers.logs import setup_logging
from workflows import search
from workflows.client_switch import ClientSwitchWorkflow
from workflows.control import ControlWorkflow
from workflows.restore import RestoreWorkflow
from workflows.split import SplitWorkflow
from workflows.split_switch import SplitSwitchWorkflow
from workflows.status import PairStatusWorkflow
from workflows.switch import SwitchWorkflow

WORKFLOWS = [
    SwitchWorkflow,
    SplitWorkflow,
    SplitSwitchWorkflow,
    RestoreWorkflow,
    ClientSwitchWorkflow,
    PairStatusWorkflow,
    ControlWorkflow,
]

# Reboot waits hold an activity slot each; a large facility reboots hundreds at once.
MAX_CONCURRENT_ACTIVITIES = 1000


def build_worker(
    client: Client, inventory: Inventory, inventory_path: str | Path, task_queue: str | None = None
) -> Worker:
    acts = DeviceActivities(inventory, inventory_path)
    pair = PairActivities(client, inventory)
    return Worker(
        client,
        task_queue=task_queue or inventory.queue,
        workflows=WORKFLOWS,
        activities=[*acts.all(), pair.pair_run_state],
        interceptors=[RunContextInterceptor()],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        # If this worker dies, its runs' next tasks go to another worker after 2 s
        # instead of the default 10 s.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
    )


@dataclass
class Connection:
    """How to reach Temporal: address, namespace, TLS / mutual TLS, API key, payload codec.

    The API key is read from the environment (TEMPORAL_API_KEY), never from a flag, so it
    stays out of shell histories and process lists.
    """

    address: str = "localhost:7233"
    namespace: str = "default"
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    codec_key_file: str | None = None

    def tls_config(self) -> TLSConfig | bool:
        if not (self.tls or self.tls_ca or self.tls_cert):
            return False
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConnectionConfigError("mutual TLS needs both --tls-cert and --tls-key")

        def read(path: str | None, what: str) -> bytes | None:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as e:
                raise ConnectionConfigError(f"{what} {path}: {e.strerror}") from None

        return TLSConfig(
            server_root_ca_cert=read(self.tls_ca, "TLS CA file"),
            client_cert=read(self.tls_cert, "TLS client certificate"),
            client_private_key=read(self.tls_key, "TLS client key"),
            domain=self.tls_server_name,
        )


class ConnectionConfigError(Exception):
    pass


async def connect(
    conn: Connection | str, namespace: str = "default", runtime: Runtime | None = None
) -> Client:
    if isinstance(conn, str):
        conn = Connection(address=conn, namespace=namespace)
    try:
        codec = load_codec(conn.codec_key_file)
    except CodecConfigError as e:
        raise ConnectionConfigError(str(e)) from None
    return await Client.connect(
        conn.address,
        namespace=conn.namespace,
        tls=conn.tls_config(),
        api_key=os.environ.get("TEMPORAL_API_KEY") or None,
        data_converter=data_converter(codec),
        runtime=runtime,
    )


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = set(resp.custom_attributes) | set(resp.system_attributes)
    return [k.name for k in search.ALL if k.name not in have]


def metrics_runtime(bind: str) -> Runtime:
    """A runtime whose metrics (the SDK's and amsm's) are served for Prometheus."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConnectionConfigError(f"--metrics takes HOST:PORT, like 127.0.0.1:9464, not {bind!r}")
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))


async def run_worker(
    inventory_path: str | Path, conn: Connection, metrics: str | None = None
) -> None:
    inventory = load_inventory(inventory_path)
    runtime = metrics_runtime(metrics) if metrics else None
    client = await connect(conn, runtime=runtime)
    address, namespace = conn.address, conn.namespace
    missing = await missing_search_attributes(client, namespace)
    if missing:
        # Without them every workflow task would fail; say so once, at start.
        cmds = "; ".join(
            f"temporal operator search-attribute create --namespace {namespace} "
            f"--name {n} --type Keyword"
            for n in missing
        )
        raise SystemExit(
            f"worker: search attributes missing on {address}: {', '.join(missing)}. "
            f"Register them: {cmds}"
        )
    worker = build_worker(client, inventory, inventory_path)
    logging.getLogger("amsm").info(
        "worker for pair %s on task queue %s (Temporal %s)",
        inventory.pair,
        inventory.queue,
        address,
    )
    print(
        f"worker: serving pair '{inventory.pair}' on task queue '{inventory.queue}' at {address}"
        + (f"; metrics on http://{metrics}/metrics" if metrics else ""),
        flush=True,
    )
    await worker.run()


def main(
    inventory_path: str, conn: Connection, log_format: str = "text", metrics: str | None = None
) -> int:
    try:
        setup_logging(log_format)
    except ValueError as e:
        print(f"amsm worker: {e} (--log-format or AMSM_LOG_FORMAT)", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_worker(inventory_path, conn, metrics))
    except KeyboardInterrupt:
        pass
    except ConnectionConfigError as e:
        print(f"amsm worker: {e}", file=sys.stderr)
        return 2
    return 0
