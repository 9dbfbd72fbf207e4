"""Reminders and escalation (docs/operators/notifications.md) under Temporal's
time-skipping test server: a walk waits for hours in seconds, and the real notify activity
delivers each message to a local HTTP sink (Apprise `json://`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest_asyncio
import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.context import DeviceContext
from activities.models import NotifyPlan
from activities.notify import NotifyActivities
from inventory.load import load_inventory
from lab.init import free_ports, init_lab
from tests.support.lab import BIN
from tests.support.notify import HttpSink, http_sink, write_config
from tests.support.notify_walk import NotifyWalk, WalkInput
from workers.worker import activity_methods
from workflows.models import Checklist, Decision, OperatorSignal
from workflows.search import ALL

PLAN = NotifyPlan(console_url="https://amsm.example", remind_every=900, escalate_after=2700)


@pytest_asyncio.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    try:
        # The engine keeps the run's state in a search attribute (workflows/search.py).
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                search_attributes={
                    k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in ALL
                },
                namespace=env.client.namespace,
            )
        )
        yield env
    finally:
        await env.shutdown()


def inventory_with(tmp: Path, urls: dict[str, str]) -> Path:
    """A lab's inventory (nothing served: the walk reaches no device) with `notify`."""
    path = init_lab(tmp / "lab")
    config = write_config(tmp / "lab" / "secrets" / "notify.yaml", urls)
    data = yaml.safe_load(path.read_text())
    data["notify"] = {"config": str(config.relative_to(path.parent)), "remind_every": "15m"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def walk(
    env: WorkflowEnvironment, inv_path: Path, continue_after: int = 10_000
) -> tuple[Worker, WorkflowHandle]:
    inv = load_inventory(inv_path)
    queue = f"notify-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=[NotifyWalk],
        activities=activity_methods(NotifyActivities(DeviceContext(inv, inv_path))),
    )
    handle = await env.client.start_workflow(
        NotifyWalk.run,
        WalkInput(pair=inv.pair, plan=PLAN, continue_after=continue_after),
        id=f"walk-{queue}",
        task_queue=queue,
    )
    return worker, handle


async def told(handle: WorkflowHandle) -> Checklist:
    c = await handle.query(NotifyWalk.progress)
    assert c is not None
    return c


def kinds(c: Checklist, step: str | None = None) -> list[str]:
    return [d.kind for d in c.deliveries if step is None or d.step == step]


async def test_a_waiting_step_is_told_reminded_escalated_and_stops_when_acted_on(
    skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    with http_sink() as sink:
        urls = {sink.url("ops"): "waiting, runs", sink.url("boss"): "escalation"}
        worker, handle = await walk(skipping, inventory_with(tmp_path, urls))
        async with worker:
            await skipping.sleep(timedelta(minutes=50))
            c = await told(handle)
            # Told at once, reminded at 15, 30 and 45 minutes, escalated once at 45.
            assert sorted(kinds(c, "stop-insync")) == [
                "escalation",
                "reminder",
                "reminder",
                "reminder",
                "waiting",
            ], c.deliveries
            since = datetime.fromisoformat(c.step("stop-insync").waiting_since or "")
            assert sorted(
                (datetime.fromisoformat(d.at) - since).total_seconds() // 60
                for d in c.deliveries
                if d.step == "stop-insync"
            ) == [0, 15, 30, 45, 45], c.deliveries
            assert "run" in kinds(c) and all(d.delivered for d in c.deliveries)
            first = _body(sink, "ops", "stop-insync")
            for words in (
                f"Pair {c.pair}, run {c.run_id}",
                "Step stop-insync: Stop InSync on the Control Point PC",
                f"since {since.isoformat()}",
                f"amsm confirm {c.run_id} stop-insync",
                f"https://amsm.example/pairs/{c.pair}/run",
            ):
                assert words in first, first
            assert len([t for t in sink.titles("boss") if "ESCALATION" in t]) == 1

            await handle.execute_update(
                NotifyWalk.confirm_step, OperatorSignal(step="stop-insync", operator="ann")
            )
            await skipping.sleep(timedelta(minutes=20))
            c = await told(handle)
            # Acted on: no word more about it; the gate waits now, with its own text.
            assert len(kinds(c, "stop-insync")) == 5, c.deliveries
            assert kinds(c, "approve-overwrite") == ["waiting", "reminder"], c.deliveries
            gate = _body(sink, "ops", "approve-overwrite")
            assert "What approving it does: Y's database will be overwritten by X's" in gate
            assert f"amsm approve {c.run_id} approve-overwrite" in gate

            await handle.execute_update(
                NotifyWalk.approve_step, OperatorSignal(step="approve-overwrite", operator="ann")
            )
            await skipping.sleep(timedelta(minutes=1))
            failed = _body(sink, "ops", "start-browse")
            assert "The error: Browse did not answer" in failed
            assert f"amsm retry {c.run_id} start-browse" in failed
            await handle.execute_update(
                NotifyWalk.decide_step,
                Decision(step="start-browse", action="retry", operator="ann"),
            )
            c = await handle.result()
            assert c.state == "completed"
            assert c.deliveries[-1].kind == "run" and "completed" in c.deliveries[-1].subject
            assert sink.titles("ops")[-1].endswith("Switch to Y completed")


async def test_a_dead_sink_leaves_the_run_going_and_the_checklist_says_so(
    skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    dead = f"json://127.0.0.1:{free_ports(1)[0]}/nobody"  # nothing listens there
    worker, handle = await walk(skipping, inventory_with(tmp_path, {dead: "waiting, runs"}))
    async with worker:
        await skipping.sleep(timedelta(minutes=16))
        c = await told(handle)
        assert kinds(c, "stop-insync") == ["waiting", "reminder"], c.deliveries
        assert not any(d.delivered for d in c.deliveries)
        assert all("not delivered" in (d.error or "") for d in c.deliveries), c.deliveries
        # The error is Apprise's words, never the service's URL (it may hold a token).
        assert "json://" not in str([d.error for d in c.deliveries]), c.deliveries
        await handle.execute_update(
            NotifyWalk.confirm_step, OperatorSignal(step="stop-insync", operator="ann")
        )
        await handle.execute_update(
            NotifyWalk.approve_step, OperatorSignal(step="approve-overwrite", operator="ann")
        )
        await skipping.sleep(timedelta(seconds=5))
        await handle.execute_update(
            NotifyWalk.decide_step, Decision(step="start-browse", action="retry", operator="ann")
        )
        c = await handle.result()
        assert c.state == "completed", c.message
        assert c.deliveries and not c.deliveries[-1].delivered


async def test_a_run_that_continues_as_new_goes_on_with_its_reminders(
    skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    with http_sink() as sink:
        urls = {sink.url("ops"): "waiting, runs, escalation"}
        worker, handle = await walk(skipping, inventory_with(tmp_path, urls), continue_after=40)
        async with worker:
            await skipping.sleep(timedelta(minutes=50))
            c = await told(skipping.client.get_workflow_handle(handle.id))
            assert c.continued >= 1, c
            # Across the runs: told once, reminded on time, escalated once; nothing twice.
            since = datetime.fromisoformat(c.step("stop-insync").waiting_since or "")
            assert sorted(
                ((datetime.fromisoformat(d.at) - since).total_seconds() // 60, d.kind)
                for d in c.deliveries
                if d.step == "stop-insync"
            ) == [
                (0, "waiting"), (15, "reminder"), (30, "reminder"), (45, "escalation"),
                (45, "reminder"),
            ], c.deliveries  # fmt: skip
            assert len(sink.titles("ops")) == len(c.deliveries) == 6  # and the start
            assert [d.kind for d in c.deliveries].count("run") == 1


def _body(sink: HttpSink, path: str, step: str) -> str:
    bodies = [str(b["message"]) for p, b in sink.posts if p == f"/{path}" and step in b["title"]]
    assert bodies, sink.posts
    return bodies[0]
