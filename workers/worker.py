"""The worker: the pair's workflows and device activities, on the pair's task queue and
the site queues (`--site X` serves one side's; without it, both)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from activities.browse import BrowseActivities
from activities.check import CheckActivities
from activities.clients import ClientActivities
from activities.context import DeviceContext
from activities.dry_run import DryRunActivities
from activities.dsm import DsmActivities
from activities.lost_side import LostSideActivities
from activities.media import MediaActivities
from activities.notify import NotifyActivities, config_problem
from activities.pair import PairActivities
from activities.probe import ProbeActivities
from activities.readiness import ReadinessActivities
from activities.smartbins import SmartBinsActivities
from activities.survey import SurveyActivities
from activities.sync_tools import SyncToolActivities
from inventory.load import load_inventory, resolve_path
from inventory.models import SIDES, Inventory, Side, site_queue
from wire.connection import (  # noqa: F401 - Connection and connect, re-exported
    Connection,
    ConnectionConfigError,
    connect,
    metrics_runtime,
)
from wire.options import BadInventory, add_options, connection, inventory, inventory_path
from workers import version
from workers.interceptors import TIME_TO_SERVE, TIME_TO_SERVE_BUCKETS, RunContextInterceptor
from workers.logs import setup_logging
from workers.resets import NoResetInterceptor, acting_once
from workflows import search
from workflows.registry import workflows
from workflows.watch import WatchInput, watch_workflow_id

# Reboot waits hold an activity slot each; a large facility reboots hundreds at once.
MAX_CONCURRENT_ACTIVITIES = 1000
# Hundreds of client activities are scheduled at once: the pollers scale up to this
# many (the server tells the worker when a backlog waits), instead of a fixed five.
ACTIVITY_POLLERS = 40
WORKFLOW_POLLERS = 10


def activity_methods(*holders: object) -> list[Callable[..., object]]:
    """Every method of `holders` that is an activity (carries `@activity.defn`)."""
    found = []
    for h in holders:
        for name in dir(type(h)):
            method = getattr(h, name)
            # The SDK has no public test for "is an activity"; its Worker reads the same
            # definition that @activity.defn attaches.
            if callable(method) and activity._Definition.from_callable(method) is not None:
                found.append(method)
    return found


def build_workers(
    temporal: Client,
    inventory: Inventory,
    inventory_path: str | Path,
    sites: Sequence[Side] = SIDES,
    task_queue: str | None = None,
    identity: str | None = None,
) -> list[Worker]:
    """The pair's queue (workflows, and the activities that act on no one side) and the
    site queues of `sites` (the activities that act on that side's devices)."""
    ctx = DeviceContext(inventory, inventory_path)
    families = (
        ProbeActivities,
        DsmActivities,
        SmartBinsActivities,
        BrowseActivities,
        SyncToolActivities,
        ClientActivities,
        MediaActivities,
        LostSideActivities,
        CheckActivities,
        SurveyActivities,
        DryRunActivities,
        NotifyActivities,
    )
    activities = activity_methods(
        *(family(ctx) for family in families),
        PairActivities(temporal, inventory),
        ReadinessActivities(temporal, inventory),
    )
    common: dict[str, Any] = {
        "activities": activities,
        # A reset control run (any run, under require_signed) acts on nothing.
        "interceptors": [
            RunContextInterceptor(),
            NoResetInterceptor(temporal, acting_once(inventory)),
        ],
        "max_concurrent_activities": MAX_CONCURRENT_ACTIVITIES,
        "activity_task_poller_behavior": PollerBehaviorAutoscaling(maximum=ACTIVITY_POLLERS),
    }
    if identity:
        common["identity"] = identity
    main_queue = task_queue or inventory.queue
    workers = [
        Worker(
            temporal,
            task_queue=main_queue,
            workflows=workflows(),
            # If this worker dies, its runs' next tasks go to another worker after 2 s
            # instead of the default 10 s.
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
            # A busy worker must still take its sticky tasks within those 2 s (else
            # the run's whole history is replayed): pollers scale with the backlog.
            workflow_task_poller_behavior=PollerBehaviorAutoscaling(maximum=WORKFLOW_POLLERS),
            **common,
        )
    ]
    for side in sites:
        workers.append(Worker(temporal, task_queue=site_queue(main_queue, side), **common))
    return workers


async def start_watch(temporal: Client, inventory: Inventory) -> None:
    """The pair's status watch (workflows/watch.py), unless it already runs."""
    await temporal.start_workflow(
        "pair-watch",
        WatchInput(pair=inventory.pair),
        id=watch_workflow_id(inventory.workflow_id),
        task_queue=inventory.queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def other_builds(temporal: Client, namespace: str, queue: str) -> list[str]:
    """Pollers of `queue` seen lately that run another build than this worker."""
    seen: list[str] = []
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        resp = await temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
            )
        )
        seen += [p.identity for p in resp.pollers]
    return sorted(set(version.others(seen)))


async def missing_search_attributes(temporal: Client, namespace: str) -> list[str]:
    resp = await temporal.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = set(resp.custom_attributes) | set(resp.system_attributes)
    return [k.name for k in search.ALL if k.name not in have]


async def run_worker(
    inventory_path: str | Path,
    conn: Connection,
    metrics: str | None = None,
    site: Side | None = None,
) -> None:
    inventory = load_inventory(inventory_path)
    if inventory.notify is not None:
        # As the console's accounts file: secrets readable by others are refused at start.
        problem = config_problem(resolve_path(inventory_path, inventory.notify.config))
        if problem:
            raise SystemExit(f"worker: {problem} (docs/operators/notifications.md)")
    runtime = metrics_runtime(metrics, {TIME_TO_SERVE: TIME_TO_SERVE_BUCKETS}) if metrics else None
    temporal = await connect(conn, runtime=runtime)
    address, namespace = conn.address, conn.namespace
    missing = await missing_search_attributes(temporal, namespace)
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
    sites: list[Side] = [site] if site else list(SIDES)
    who = (
        f"amsm-worker{'-site-' + site if site else ''}-{os.getpid()}@{socket.gethostname()}"
        f"{version.tag()}"
    )
    workers = build_workers(temporal, inventory, inventory_path, sites=sites, identity=who)
    queues = [inventory.queue, *(inventory.site_queue(s) for s in sites)]
    logging.getLogger("amsm").info(
        "worker %s for pair %s on task queues %s (Temporal %s)",
        who,
        inventory.pair,
        ", ".join(queues),
        address,
    )
    print(
        f"worker: serving pair '{inventory.pair}' on task queues {', '.join(queues)} at {address}"
        + (f" for site {site}" if site else "")
        + (f"; metrics on http://{metrics}/metrics" if metrics else ""),
        flush=True,
    )
    for q in queues:
        mixed = await other_builds(temporal, namespace, q)
        if mixed:
            msg = (
                f"worker: WARNING: task queue {q} is also served by code of another build "
                f"({', '.join(mixed)}; this is build {version.build_id()}). Workers of two "
                "codes on one queue take each other's runs; stop the other, or give this "
                "one its own task_queue (docs/site/production.md)."
            )
            logging.getLogger("amsm").warning(msg)
            print(msg, file=sys.stderr, flush=True)
    if site is None:
        await start_watch(temporal, inventory)
    await asyncio.gather(*(w.run() for w in workers))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amsm worker", description="run a worker for the inventory's pair"
    )
    add_options(p)
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("AMSM_LOG_FORMAT") or "text",
        help="json: one object per line with run id, step and host (env AMSM_LOG_FORMAT)",
    )
    p.add_argument(
        "--site",
        choices=["X", "Y"],
        type=str.upper,
        default=None,
        help="serve only the activities of side X's (or Y's) devices, plus the pair's "
        "workflows: one worker per site, inside its network (default: both sides)",
    )
    p.add_argument(
        "--metrics",
        default=os.environ.get("AMSM_METRICS") or None,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (env AMSM_METRICS)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`amsm worker [--site X|Y] [--log-format json] [--metrics HOST:PORT]`, with the
    inventory and connection options of every program (wire/options.py)."""
    args = parser().parse_args(argv)
    try:
        inventory(args)  # explain a bad inventory before connecting
    except BadInventory as e:
        print(f"amsm: {e}", file=sys.stderr)
        return 2
    try:
        setup_logging(args.log_format)
    except ValueError as e:
        print(f"amsm worker: {e} (--log-format or AMSM_LOG_FORMAT)", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_worker(inventory_path(args), connection(args), args.metrics, args.site))
    except KeyboardInterrupt:
        pass
    except ConnectionConfigError as e:
        print(f"amsm worker: {e}", file=sys.stderr)
        return 2
    return 0
