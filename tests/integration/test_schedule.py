"""Scheduled runs (`amsm schedule`, workflows/schedule.py) against the lab: under Temporal's
time-skipping test server, an hour's lead and a half-hour's window pass in seconds (the
lead-time dry run and check recorded, the start at the time as the person who scheduled
it, dropped when another run holds the pair all its
window, cancel); and on the dev server, one real scheduled switch a few seconds ahead."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from playwright.async_api import expect
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.models import PairRef
from activities.pair import PairActivities
from api.schedule import cancel, file
from api.start import start, start_input
from tests.support.cli import cli
from tests.support.console import cancel_scheduled, console_lab, logged_in
from tests.support.lab import BIN, Lab
from tests.support.notify import HttpSink, http_sink, write_config
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workers import worker
from workflows import blackout, search
from workflows.models import SwitchInput
from workflows.schedule import ScheduleState, ScheduleWorkflow, schedule_workflow_id

OPERATOR = "ann"


class NoVisibilityPairActivities(PairActivities):
    """The test server keeps no visibility store (ListWorkflowExecutions is unimplemented),
    so no fence can be listed there: under it, this one read says none waits. Every
    other activity is the worker's own; the dev server's test below lists fences for real."""

    @activity.defn(name="fences_waiting")
    async def fences_waiting(self, inp: PairRef) -> list[str]:
        return []


@pytest_asyncio.fixture
async def skipping(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WorkflowEnvironment]:
    monkeypatch.setattr(worker, "PairActivities", NoVisibilityPairActivities)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    # The search attributes amsm's runs carry, as the dev server registers them.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in search.ALL
            },
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def state(temporal: Client, workflow_id: str) -> ScheduleState:
    return await temporal.get_workflow_handle(workflow_id).query(ScheduleWorkflow.read_state)


async def ended(temporal: Client, workflow_id: str) -> ScheduleState:
    return await temporal.get_workflow_handle_for(ScheduleWorkflow.run, workflow_id).result()


async def until_state(temporal: Client, wid: str, done, what: str) -> ScheduleState:  # type: ignore[no-untyped-def]
    async def reached() -> bool:
        return bool(done(await state(temporal, wid)))

    try:
        await wait_for(reached, what, timeout=60)
    except AssertionError as e:
        raise AssertionError(f"{e}; the schedule: {await state(temporal, wid)}") from None
    return await state(temporal, wid)


async def file_switch(env: WorkflowEnvironment, lab: Lab, ahead: timedelta, **kw: str) -> str:
    now = await env.get_current_time()
    at = (now + ahead).isoformat()
    filed = await file(env.client, lab.inventory, "switch", "Y", OPERATOR, {}, at, now=now, **kw)
    return filed.workflow_id


async def test_lead_time_then_the_start_as_the_one_who_scheduled_it(
    skipping: WorkflowEnvironment, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory()
    env, client = skipping, skipping.client
    async with running_worker(client, lab):
        wid = await file_switch(env, lab, timedelta(hours=2), reason="night of the 3rd")
        st = await state(client, wid)
        assert st.status == "waiting" and st.dry_run is None and st.initiator == OPERATOR
        # An hour before (the inventory's default lead): the dry run and the check.
        await env.sleep(timedelta(hours=1, seconds=1))
        st = await until_state(client, wid, lambda s: s.check, "the lead-time check recorded")
        assert st.dry_run == "the dry run found nothing that would refuse (18 steps)", st
        assert st.check and st.check.startswith("the site check found the pair ready"), st
        assert any("starts soon" in t.text and st.check in t.text for t in st.told), st.told
        assert st.status == "waiting"
        await env.sleep(timedelta(hours=1))
        st = await until_state(client, wid, lambda s: s.status != "waiting", "started")
        assert st.status == "started", st
        # At its time (its reads of the pair take a moment), not later.
        assert st.started_at and st.at <= st.started_at < st.at + timedelta(seconds=30), st
        run = client.get_workflow_handle(lab.inventory.workflow_id)
        desc = await run.describe()
        assert desc.run_id == st.run_id and desc.workflow_type == "switch"
        memo = await desc.memo()
        assert memo["initiator"] == OPERATOR
        assert memo["scheduled"].startswith(f"scheduled by {OPERATOR} at ")
        assert memo["scheduled"].endswith(", started by the schedule")
        first = (await run.fetch_history()).events[0]
        inp = pydantic_data_converter.payload_converter.from_payloads(
            first.workflow_execution_started_event_attributes.input.payloads, [SwitchInput]
        )[0]
        assert inp.initiator == OPERATOR and inp.scheduled is not None
        assert inp.scheduled.by == OPERATOR and inp.scheduled.schedule_id == st.schedule_id
        assert (await ended(client, wid)).status == "started"
        await run.terminate("the test saw it start")


async def test_dropped_when_another_run_holds_the_pair_all_its_window(
    skipping: WorkflowEnvironment, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory()
    lab.edit_inventory(schedule={"lead": "5m", "window": "10m"})
    env, client, inv = skipping, skipping.client, lab.inventory
    async with running_worker(client, lab):
        inp, what = start_input(inv, "switch", "Y", "bob", {})
        other = await start(client, inv, "switch", inp, what, "bob", wait=False)
        wid = await file_switch(env, lab, timedelta(minutes=20))
        await env.sleep(timedelta(minutes=15, seconds=1))
        await until_state(client, wid, lambda s: s.check, "the lead-time check recorded")
        # Its time, then past its window (tried again every minute meanwhile).
        await env.sleep(timedelta(minutes=5, seconds=1))
        await until_state(client, wid, lambda s: s.why, "the first try at its time")
        await env.sleep(timedelta(minutes=10, seconds=1))
        result = await until_state(client, wid, lambda s: s.status != "waiting", "dropped")
        assert result.status == "dropped", result
        assert result.why == f"another run goes on pair {inv.pair} (switch, run {other.run_id})"
        assert result.run_id is None
        assert any("dropped, not started within its window" in t.text for t in result.told)
        # Never started late: the run that held the pair is the only one.
        desc = await client.get_workflow_handle(inv.workflow_id).describe()
        assert desc.run_id == other.run_id
        await client.get_workflow_handle(inv.workflow_id).terminate("test done")


async def test_dropped_when_its_whole_window_is_on_air(
    skipping: WorkflowEnvironment, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    # Rule no-switch-in-blackout at the schedule's time: the run's own sentence, tried again
    # every minute, then dropped at the end of its window, never started on air or late.
    lab: Lab = await lab_factory()
    env, temporal = skipping, skipping.client
    now = await env.get_current_time()
    on_air = (now + timedelta(minutes=19)).astimezone(UTC).replace(microsecond=0)
    lab.edit_inventory(
        schedule={"lead": "5m", "window": "10m"},
        blackout=[
            {
                "name": "News at Six",
                "rrule": f"FREQ=DAILY;BYHOUR={on_air.hour};BYMINUTE={on_air.minute};"
                f"BYSECOND={on_air.second}",
                "duration": "40m",
            }
        ],
    )
    async with running_worker(temporal, lab):
        wid = await file_switch(env, lab, timedelta(minutes=20))
        await env.sleep(timedelta(minutes=20, seconds=1))
        st = await until_state(temporal, wid, lambda s: s.why, "the first try at its time")
        ends = blackout.local(on_air + timedelta(minutes=40))
        refused = f"rule 'no-switch-in-blackout': on air: News at Six until {ends}"
        assert st.why and st.why.startswith(refused), st
        await env.sleep(timedelta(minutes=10, seconds=1))
        result = await until_state(temporal, wid, lambda s: s.status != "waiting", "dropped")
        assert result.status == "dropped" and result.run_id is None, result
        assert result.why and result.why.startswith(refused), result
        with pytest.raises(RPCError):  # no run was ever started on the pair
            await temporal.get_workflow_handle(lab.inventory.workflow_id).describe()


async def test_cancel_ends_it_with_who_and_why(skipping: WorkflowEnvironment, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory()
    env, client, inv = skipping, skipping.client, lab.inventory
    async with running_worker(client, lab):
        wid = await file_switch(env, lab, timedelta(days=2))
        sid = (await state(client, wid)).schedule_id
        st = await cancel(client, inv, sid, "carl", "the newsroom needs the night")
        assert (st.status, st.cancelled_by, st.why) == (
            "cancelled",
            "carl",
            "the newsroom needs the night",
        )
        result = await ended(client, wid)
        assert result.status == "cancelled" and result.run_id is None and result.dry_run is None
        try:
            await cancel(client, inv, sid, "carl", "again")
        except Exception as e:  # noqa: BLE001
            assert "cancelled already" in str(e) or "completed" in str(e), e
        else:
            raise AssertionError("a second cancel was taken")


async def test_a_real_scheduled_switch_on_the_dev_server(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory()
    with http_sink() as hook:
        write_config(lab.dir / "secrets" / "notify.yaml", {hook.url("runs"): "runs"})
        lab.edit_inventory(
            schedule={"lead": "5s", "window": "2m"},
            timezone="Europe/London",
            notify={"config": "secrets/notify.yaml"},
        )
        await _a_real_scheduled_switch(temporal, lab, hook)


async def _a_real_scheduled_switch(temporal: Client, lab: Lab, hook: HttpSink) -> None:
    inv = lab.inventory
    async with running_worker(temporal, lab):
        # Refused before anything is filed, exit 2: a local time the clocks skip, the past.
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", "2027-03-28 01:30"
        )
        assert rc == 2 and "does not exist in Europe/London" in out, out
        assert "2027-03-28T01:30+00:00" in out and "2027-03-28T01:30+01:00" in out, out
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", "2020-01-01T00:00Z"
        )
        assert rc == 2 and "is in the past" in out, out
        at = (datetime.now(UTC) + timedelta(seconds=12)).astimezone(inv.zone)
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y",
            "--at", at.strftime("%Y-%m-%dT%H:%M:%S%z"), "--reason", "the lab's night", "--json",
        )  # fmt: skip
        assert rc == 0, out
        sid = json.loads(out)["schedule_id"]
        rc, out = await cli(temporal, lab, "schedule", "list", "--json")
        assert rc == 0, out
        listed = json.loads(out)["scheduled"]
        assert [s["schedule_id"] for s in listed] == [sid]
        assert listed[0]["reason"] == "the lab's night" and listed[0]["what"] == "switch X -> Y"
        rc, out = await cli(temporal, lab, "status")
        assert rc == 0 and f"{sid}  switch X -> Y at " in out, out
        wid = schedule_workflow_id(inv.pair, sid)
        assert wid == f"{inv.workflow_id}-schedule-{sid}"
        assert (await state(temporal, wid)).dry_run is None  # before its lead time
    # The worker restarts while it waits: a new one takes the schedule on.
    async with running_worker(temporal, lab):
        result = await ended(temporal, wid)
        assert result.status == "started", result
        assert result.dry_run and result.check, result
        run = temporal.get_workflow_handle(inv.workflow_id)
        desc = await run.describe()
        assert desc.run_id == result.run_id and desc.status == WorkflowExecutionStatus.RUNNING
        assert (await desc.memo())["scheduled"].endswith("started by the schedule")
        assert desc.typed_search_attributes.get(search.KIND) == "switch"
        rc, out = await cli(temporal, lab, "schedule", "list")
        assert rc == 0 and "no scheduled runs" in out, out
        # The runs audience was told at the lead time and at the start, each delivered.
        assert [t.delivered for t in result.told] == [True, True], result.told
        bodies = [str(b.get("message")) for p, b in hook.posts if p == "/runs"]
        assert any("starts soon" in b for b in bodies), bodies
        assert any(f"started, run {result.run_id}" in b for b in bodies), bodies
        await run.terminate("the test saw it start")
        history = await temporal.get_workflow_handle(wid).fetch_history()
        assert_no_secrets(lab, history)
        record_history(history, "schedule-started.json")


async def test_the_pair_page_shows_a_scheduled_run_and_an_operator_cancels_it(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory()
    inv = lab.inventory
    async with console_lab(temporal, lab) as (server, browser):
        at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        filed = await file(temporal, inv, "switch", "Y", "ann", {}, at, reason="the lab's night")
        viewer = await logged_in(browser, server, lab, "viewer")
        await viewer.goto(f"{server.url}/pairs/{inv.pair}")
        row = viewer.locator(f"#scheduled-{filed.schedule_id}")
        await expect(row).to_contain_text("switch X -> Y")
        await expect(row).to_contain_text("asked by ann")
        await expect(row).to_contain_text("the lab's night")
        assert await row.get_by_role("button", name="Cancel").count() == 0  # viewers see only
        page = await cancel_scheduled(browser, server, lab, filed.schedule_id, "a newsroom night")
        st = await ended(temporal, filed.workflow_id)
        assert (st.status, st.cancelled_by, st.why) == ("cancelled", "operator", "a newsroom night")
        await page.goto(f"{server.url}/pairs/{inv.pair}")
        assert await page.locator(f"#scheduled-{filed.schedule_id}").count() == 0
