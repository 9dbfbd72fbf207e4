"""Telling people on a lab (docs/operators/notifications.md): a real switch tells a local
SMTP server (aiosmtpd) and a local HTTP sink (Apprise `json://`) when it starts, each step
that waits for a person, and when it completes; `amsm show` lists every delivery;
`amsm notify test` sends through the worker's config; a dead service leaves the run going."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from inventory.models import readiness_schedule_id
from lab.faults import set_fault, set_side_fault
from lab.init import free_ports
from tests.support.cli import cli, cli_json
from tests.support.driving import drive
from tests.support.fences import fence_on_x
from tests.support.lab import Lab
from tests.support.notify import HttpSink, http_sink, smtp_sink, write_config
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workflows.registry import WORKFLOWS


async def test_a_switch_tells_mail_and_a_webhook(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    with http_sink() as hook, smtp_sink() as mail:
        config = write_config(
            lab.dir / "secrets" / "notify.yaml",
            {hook.url("runs"): "runs", mail.url("night@example.org"): "waiting, escalation"},
        )
        lab.edit_inventory(
            notify={"config": "secrets/notify.yaml", "console_url": "https://amsm.example"}
        )
        async with running_worker(temporal, lab):
            rc, out = await cli(temporal, lab, "notify", "test", "--tag", "runs")
            assert rc == 0 and "delivered" in out, out
            assert hook.titles("runs")[-1] == f"amsm {lab.inventory.pair}: a test message to 'runs'"
            rc, out = await cli(temporal, lab, "notify", "test", "--tag", "readiness", "--json")
            assert rc == 1 and "no service" in out and "'readiness'" in out, out

            run_id = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
            final = await drive(temporal, lab, run_id, "Y")
            assert final["state"] == "completed", final
            # "completed" is told once the checklist says so: the run's result holds it.
            await temporal.get_workflow_handle(lab.inventory.workflow_id).result()
            final = await cli_json(temporal, lab, "show", run_id)
            told = final["deliveries"]
            waited = [d["step"] for d in told if d["kind"] == "waiting"]
            people = [s["id"] for s in final["steps"] if s["kind"] != "auto"]
            assert "approve-overwrite" in people and sorted(waited) == sorted(people), told
            assert all(d["delivered"] for d in told), told
            runs = [d["subject"] for d in told if d["audience"] == "runs"]
            assert any(s.endswith("started") for s in runs) and runs[-1].endswith("completed")

            # The mail (accepted before the activity returned): one per waiting step, with
            # what to type and where to look.
            subjects = mail.subjects()
            assert any("stop-insync" in s for s in subjects), subjects
            text = mail.text("approve-overwrite")
            assert f"amsm approve {run_id} approve-overwrite" in text, text
            assert f"https://amsm.example/pairs/{lab.inventory.pair}/run" in text
            assert "overwritten" in text  # the gate's own words
            assert hook.titles("runs")[-1].endswith("completed")

            rc, shown = await cli(temporal, lab, "show", run_id)
            assert (
                rc == 0 and "Told:" in shown and "waiting (waiting stop-insync): delivered" in shown
            )

            history = await temporal.get_workflow_handle(
                lab.inventory.workflow_id, run_id=run_id
            ).fetch_history()
            await Replayer(
                workflows=WORKFLOWS, data_converter=pydantic_data_converter
            ).replay_workflow(history)
            assert_no_secrets(lab, history)
            record_history(history, "switch-notify.json")  # the patch 'notify' replays in CI
            assert "night@example.org" not in history.to_json()  # the config stays on the worker
        assert config.exists()


async def test_a_dead_service_leaves_the_switch_going(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    dead = f"json://127.0.0.1:{free_ports(1)[0]}/gone"
    write_config(lab.dir / "secrets" / "notify.yaml", {dead: "waiting, runs"})
    lab.edit_inventory(notify={"config": "secrets/notify.yaml"})
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "notify", "test")
        assert rc == 1 and "NOT delivered" in out, out
        run_id = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        final = await drive(temporal, lab, run_id, "Y")
        assert final["state"] == "completed", final
        assert final["deliveries"] and not any(d["delivered"] for d in final["deliveries"])
        rc, shown = await cli(temporal, lab, "show", run_id)
        assert "NOT delivered" in shown


async def _verdict_after(temporal: Client, lab: Lab, before: str | None) -> dict[str, Any]:
    """The readiness `amsm status` shows once a check later than `before` has ended (a
    later one: an earlier verdict shown again is not the check the test waits for)."""
    found: dict[str, Any] = {}

    async def newer() -> bool:
        found.clear()
        found.update((await cli_json(temporal, lab, "status")).get("readiness") or {})
        at = found.get("checked_at")
        if at is None:
            return False
        return before is None or datetime.fromisoformat(at) > datetime.fromisoformat(before)

    await wait_for(newer, f"a readiness check after {before}", timeout=60)
    return found


async def _answers(temporal: Client, lab: Lab, host: str) -> None:
    async def up() -> bool:
        clients = (await cli_json(temporal, lab, "status"))["clients"]
        return any(c["host"] == host and c["side"] for c in clients)

    await wait_for(up, f"{host} answers again", timeout=60)


async def _titled(sink: HttpSink, path: str, ending: str) -> None:
    async def seen() -> bool:
        return any(t.endswith(ending) for t in sink.titles(path))

    await wait_for(seen, f"a message ending {ending!r} at /{path}: {sink.titles()}")


async def _checks(temporal: Client, pair: str) -> list[str]:
    """What each check of the pair's readiness watch read as the verdict before and what
    its telling returned (from the histories): said when a message did not come."""
    desc = await temporal.get_schedule_handle(readiness_schedule_id(pair)).describe()
    said: list[str] = []
    for done in desc.info.recent_actions:
        run = done.action
        if not isinstance(run, ScheduleActionExecutionStartWorkflow):
            continue
        handle = temporal.get_workflow_handle(run.workflow_id, run_id=run.first_execution_run_id)
        history = await handle.fetch_history()
        scheduled: dict[int, str] = {}
        results = []
        for e in history.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                scheduled[e.event_id] = (
                    e.activity_task_scheduled_event_attributes.activity_type.name
                )
            elif e.HasField("activity_task_completed_event_attributes"):
                a = e.activity_task_completed_event_attributes
                name = scheduled.get(a.scheduled_event_id, "?")
                if name in ("last_readiness", "notify"):
                    data = b"".join(p.data for p in a.result.payloads)[:300]
                    results.append(f"{name} -> {data.decode(errors='replace')}")
        said.append(f"{run.workflow_id}: {'; '.join(results) or 'no verdict read'}")
    return said


async def _told(temporal: Client, sink: HttpSink, pair: str, ending: str) -> None:
    """The readiness watch told `ending`; if not, what each check read and told."""
    try:
        await _titled(sink, "ready", ending)
    except AssertionError as e:
        raise AssertionError(f"{e}; the checks: {await _checks(temporal, pair)}") from None


async def test_the_fence_and_the_readiness_watch_tell_their_audiences(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory
) -> None:
    lab = await lab_factory(editors=1, ingest=0)
    pair = lab.inventory.pair
    with http_sink() as hook:
        write_config(
            lab.dir / "secrets" / "notify.yaml",
            {hook.url("runs"): "runs", hook.url("ready"): "readiness"},
        )
        lab.edit_inventory(notify={"config": "secrets/notify.yaml"})
        async with running_worker(temporal, lab):
            # The readiness watch: ready at first (nothing said), then not ready, then
            # ready again: each change told once.
            rc, out = await cli(temporal, lab, "readiness", "on")
            assert rc == 0, out
            schedule = temporal.get_schedule_handle(readiness_schedule_id(pair))
            try:
                first = await _verdict_after(temporal, lab, None)  # `on` checks at once
                assert first["ready"] is True, first
                set_fault(lab.dir, "ED-01", "unreachable")
                await schedule.trigger()
                bad = await _verdict_after(temporal, lab, first["checked_at"])
                assert bad["ready"] is False, bad
                await _told(temporal, hook, pair, "problem(s))")
                body = str(hook.posts[-1][1]["message"])
                assert "ED-01" in body and "amsm check" in body, body
                set_fault(lab.dir, "ED-01", "clear")
                await _answers(temporal, lab, "ED-01")  # booted again before the next check
                await schedule.trigger()
                good = await _verdict_after(temporal, lab, bad["checked_at"])
                assert good["ready"] is True, good
                await _told(temporal, hook, pair, "ready again")
                assert len(hook.titles("ready")) == 2, hook.titles("ready")
            finally:
                await cli(temporal, lab, "readiness", "off")

            # The fence: told when it waits, and when it ended.
            await fence_on_x(temporal, lab, reason="X burnt")
            await _titled(hook, "runs", "a fence waits for X")
            [waits] = [
                str(b["message"])
                for p, b in hook.posts
                if p == "/runs" and str(b.get("title")).endswith("a fence waits for X")
            ]
            assert "X burnt" in waits and 'amsm fence end --reason "..."' in waits, waits
            rc, out = await cli(
                temporal, lab, "fence", "end", "--reason", "rebuilt", "--operator", "jo"
            )
            assert rc == 0, out
            await _titled(hook, "runs", "the fence on X ended")
            set_side_fault(lab.dir, "X", "up")
