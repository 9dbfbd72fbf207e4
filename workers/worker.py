"""The worker: the pair's workflows and device activities on the pair's task queue."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.devices import DeviceActivities
from activities.pair import PairActivities
from inventory.load import load_inventory
from inventory.models import Inventory
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
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
    )


async def connect(address: str, namespace: str = "default") -> Client:
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = set(resp.custom_attributes) | set(resp.system_attributes)
    return [k.name for k in search.ALL if k.name not in have]


async def run_worker(inventory_path: str | Path, address: str, namespace: str = "default") -> None:
    inventory = load_inventory(inventory_path)
    client = await connect(address, namespace)
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
        f"worker: serving pair '{inventory.pair}' on task queue '{inventory.queue}' at {address}",
        flush=True,
    )
    await worker.run()


def main(inventory_path: str, address: str, namespace: str = "default") -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one line per connection otherwise
    try:
        asyncio.run(run_worker(inventory_path, address, namespace))
    except KeyboardInterrupt:
        pass
