"""Signed scheduled runs (docs/operators/signed-acts.md#scheduled-runs) on the dev server,
under identity.require_signed: an unsigned filing is refused when filed, saying why; a
filing signed with ann's key starts its run at its time, proven by her key; the run's
input started by hand is refused (no schedule started it), the filing sent again is
refused (its nonce was taken), and a schedule of someone else's code under the same id,
firing the same run with the intent copied, is refused (not amsm's own schedule), and so
is the scheduled run reset to its start; cancels are signed too."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from api import schedule as schedule_api
from api.act import read_key
from inventory import intent
from tests.support.cli import cli, cli_json
from tests.support.console import cancel_scheduled, chromium, console_server, logged_in
from tests.support.lab import Lab
from tests.support.resets import child_completed, reset_after
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.signing import key_file, signed_lab
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workflows.registry import WORKFLOWS
from workflows.schedule import ScheduleState, ScheduleWorkflow, schedule_workflow_id


@workflow.defn(name="pair-schedule", sandboxed=False)
class ForgedSchedule:
    """Someone else's `pair-schedule`, on a queue of their own: it takes no nonce and
    starts the pair's run with the input it is given (the intent copied from a real one)."""

    @workflow.run
    async def run(self, args: list[Any]) -> str:
        queue, kind, run_input, pair_id = args
        handle = await workflow.start_child_workflow(
            kind,
            RawValue(workflow.payload_converter().to_payloads([run_input])[0]),
            id=pair_id,
            task_queue=queue,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        return handle.first_execution_run_id or ""


def _at(seconds: float, lab: Lab) -> str:
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(lab.inventory.zone)
    return at.strftime("%Y-%m-%dT%H:%M:%S%z")


async def _started_input(temporal: Client, workflow_id: str, run_id: str = "") -> dict[str, Any]:
    history = await temporal.get_workflow_handle(workflow_id, run_id=run_id or None).fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes
    data: dict[str, Any] = json.loads(first.input.payloads[0].data)
    return data


async def _refused_run(temporal: Client, lab: Lab, run_id: str) -> str:
    """Why the run was refused; its history replays to the same refusal (the checks a
    replay could answer otherwise, its own run id, are an activity's recorded answer)."""
    handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
        await handle.fetch_history()
    )
    return str(failed.value.cause)


async def _signed_lab(
    lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Lab, str]:  # type: ignore[no-untyped-def]
    """A lab under identity.require_signed, ann with a key; the lab and her key's file."""
    lab, ann_file = await signed_lab(lab_factory, tmp_path, monkeypatch)
    lab.edit_inventory(schedule={"lead": "1s", "window": "2m"})
    return lab, ann_file


async def test_a_filing_and_its_cancel_are_refused_unsigned_and_proven_signed(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await _signed_lab(lab_factory, tmp_path, monkeypatch)
    async with running_worker(temporal, lab):
        # Unsigned: refused when filed, saying why (exit 1); nothing waits.
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(60, lab),
            "--operator", "ann",
        )  # fmt: skip
        assert rc == 1, out
        assert "the scheduled run was refused: unsigned: this pair takes only signed acts" in out
        rc, out = await cli(temporal, lab, "schedule", "list")
        assert rc == 0 and "no scheduled runs" in out, out
        # Signed: filed as ann, proven. A cancel is an act too: unsigned, refused (the
        # schedule still waits); signed with ann's key, done and proven.
        rc, out = await cli(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(3600, lab),
            "--key", ann_file, "--json",
        )  # fmt: skip
        assert rc == 0, out
        later = json.loads(out)["schedule_id"]
        rc, out = await cli(
            temporal, lab, "schedule", "cancel", later, "--reason", "not tonight",
            "--operator", "ann",
        )  # fmt: skip
        assert rc == 1 and "cancel refused: unsigned: this pair takes only signed acts" in out
        listed = await cli_json(temporal, lab, "schedule", "list")
        assert [s["schedule_id"] for s in listed["scheduled"]] == [later], listed
        assert listed["scheduled"][0]["proof"] == "proven by ann's key", listed
        rc, out = await cli(
            temporal, lab, "schedule", "cancel", later, "--reason", "not tonight",
            "--key", ann_file,
        )  # fmt: skip
        assert rc == 0 and "by ann (proven by ann's key): not tonight" in out, out


async def _a_signed_scheduled_run(temporal: Client, lab: Lab, ann_file: str) -> ScheduleState:
    """Filed with ann's key a few seconds ahead, started at its time, its initiator
    proven by her key (the intent rides in the run's own input), then aborted by her
    where it first waits; the schedule's end. Both histories replay and are kept."""
    rc, out = await cli(
        temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(6, lab),
        "--key", ann_file,
    )  # fmt: skip
    assert rc == 0 and "filed by ann (proven by ann's key)" in out, out
    wid = schedule_workflow_id(lab.inventory.pair, out.split("id: ", 1)[1].split()[0])
    done = await temporal.get_workflow_handle_for(ScheduleWorkflow.run, wid).result()
    assert done.status == "started" and done.proof == "proven by ann's key", done
    shown: dict[str, Any] = {}

    async def waits() -> bool:  # at its first manual step, X's DSM in backup by then
        shown.update(await cli_json(temporal, lab, "show", done.run_id or ""))
        return any(s["status"].startswith("awaiting") for s in shown["steps"])

    await wait_for(waits, "the scheduled run waiting at its first manual step")
    assert (shown["initiator"], shown["initiator_proof"]) == ("ann", "proven by ann's key")
    rc, out = await cli(
        temporal, lab, "abort", done.run_id or "", "--reason", "seen", "--key", ann_file
    )
    assert rc == 0, out
    run = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=done.run_id)
    await run.result()
    for history, name in (
        (await temporal.get_workflow_handle(wid).fetch_history(), "schedule-signed.json"),
        (await run.fetch_history(), "switch-scheduled-signed.json"),
    ):
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        assert_no_secrets(lab, history)
        record_history(history, name)
    return done


async def _fired_by_a_reset(temporal: Client, wid: str, filed_run: str) -> str:
    """The schedule's run `filed_run` reset to the workflow task after it took its
    nonce (so it takes none again) and left to fire; the run it starts."""
    taken = await child_completed(temporal, wid, filed_run, "signed-nonce")
    reset = await reset_after(temporal, wid, filed_run, taken, "fire the filing again")
    handle = temporal.get_workflow_handle(wid, run_id=reset, result_type=ScheduleState)
    again = await handle.result()
    assert again.status == "started" and again.run_id, (again.status, again.why)
    return again.run_id


async def test_a_signed_filing_starts_its_run_proven_and_nothing_else_does(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await _signed_lab(lab_factory, tmp_path, monkeypatch)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        done = await _a_signed_scheduled_run(temporal, lab, ann_file)
        wid = schedule_workflow_id(inv.pair, done.schedule_id)
        filed_run = (await temporal.get_workflow_handle(wid).describe()).run_id
        run_input = await _started_input(temporal, inv.workflow_id, done.run_id or "")
        assert run_input["scheduled"]["intent"]["intent"]["action"] == "schedule", run_input

        # The run's input, started by hand as anyone who reaches Temporal could: no
        # schedule started it.
        handle = await temporal.start_workflow(
            "switch", run_input, id=inv.workflow_id, task_queue=inv.queue
        )
        cause = await _refused_run(temporal, lab, handle.result_run_id or "")
        assert "intent refused (misbound)" in cause and "no such schedule started" in cause
        # The scheduled run reset to its start: refused.
        reset = await reset_after(
            temporal, inv.workflow_id, done.run_id or "", 0, "replay the scheduled run"
        )
        cause = await _refused_run(temporal, lab, reset)
        assert "intent refused (replayed): this run is a reset of run" in cause, cause
        # The filing itself sent again under its id: refused, its nonce was taken.
        filing = await _started_input(temporal, wid)
        again = await temporal.execute_workflow(
            ScheduleWorkflow.run, filing, id=wid, task_queue=inv.queue, result_type=ScheduleState
        )
        assert again.status == "dropped" and not again.checked, again
        assert again.why and "intent refused (replayed): its nonce was taken" in again.why
        # Someone else's schedule under the same id, on a queue of its own, firing the
        # same run with the intent copied: not amsm's own schedule, refused.
        queue = f"forged-{uuid.uuid4().hex[:8]}"
        async with Worker(temporal, task_queue=queue, workflows=[ForgedSchedule], debug_mode=True):
            forged = await temporal.execute_workflow(
                "pair-schedule",
                [inv.queue, "switch", run_input, inv.workflow_id],
                id=wid,
                task_queue=queue,
                result_type=str,
            )
        cause = await _refused_run(temporal, lab, forged)
        assert f"intent refused (replayed): the run of {wid} that started this one" in cause
        assert "is not amsm's own pair-schedule on the pair's queue" in cause, cause
        # amsm's own schedule reset to just after it took its nonce: it fires again, and
        # the run it starts is refused (the schedule run that started it is a reset). The
        # pair mirrored again first, or the schedule would drop the run it foresees refused.
        for control in (["dsm", "set-main", "X"], ["replication", "start", "X"]):
            rc, out = await cli(temporal, lab, *control, "--key", ann_file)
            assert rc == 0, out
        fired = await _fired_by_a_reset(temporal, wid, filed_run)
        cause = await _refused_run(temporal, lab, fired)
        assert f"a pair-schedule on {inv.queue}, started as run {filed_run}" in cause, cause


async def test_a_filing_no_worker_has_taken_says_so_and_is_checked_when_one_does(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, ann_file = await _signed_lab(lab_factory, tmp_path, monkeypatch)
    monkeypatch.setattr(schedule_api, "CHECK_WAIT", 1.0)  # not the CLI's 15 s
    rc, out = await cli(
        temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(3600, lab),
        "--key", ann_file,
    )  # fmt: skip
    assert rc == 0 and "no worker has taken it yet" in out, out
    assert "filed by" not in out, out
    sid = out.split("id: ", 1)[1].split()[0]
    async with running_worker(temporal, lab):
        wid = schedule_workflow_id(lab.inventory.pair, sid)

        async def checked() -> bool:
            st = await temporal.get_workflow_handle(wid).query(ScheduleWorkflow.read_state)
            return st.checked

        await wait_for(checked, "the schedule checked by the worker")
        listed = await cli_json(temporal, lab, "schedule", "list")
        assert [(s["schedule_id"], s["proof"]) for s in listed["scheduled"]] == [
            (sid, "proven by ann's key")
        ], listed
        rc, out = await cli(
            temporal, lab, "schedule", "cancel", sid, "--reason", "test over", "--key", ann_file
        )
        assert rc == 0, out


async def test_the_pair_page_shows_a_filing_proven_and_its_cancel_is_signed_for_the_login(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """In the real browser: a filing signed with ann's key reads "asked by ann (proven by
    ann's key)" on the pair page of a viewer; an operator's Cancel is signed by the
    console for its login, and the schedule keeps that proof."""
    lab, ann_file = await _signed_lab(lab_factory, tmp_path, monkeypatch)
    console_file, console_line = key_file(tmp_path, "console")
    ann_line = intent.public_line(read_key(ann_file, "--key").public_key())
    lab.edit_inventory(
        operators=[{"name": "ann", "key": ann_line}, "tester", "operator"],
        viewers=["viewer"],
        console_key=console_line,
    )
    async with (
        running_worker(temporal, lab),
        console_server(lab, "--console-key-file", console_file) as server,
        chromium() as browser,
    ):
        filed = await cli_json(
            temporal, lab, "schedule", "switch", "--to", "Y", "--at", _at(3600, lab),
            "--key", ann_file,
        )  # fmt: skip
        sid = filed["schedule_id"]
        viewer = await logged_in(browser, server, lab, "viewer")
        await viewer.goto(f"{server.url}/pairs/{lab.inventory.pair}")
        await expect(viewer.locator(f"#scheduled-{sid}")).to_contain_text(
            "asked by ann (proven by ann's key)"
        )
        await cancel_scheduled(browser, server, lab, sid, "not tonight")
        wid = schedule_workflow_id(lab.inventory.pair, sid)
        st = await temporal.get_workflow_handle(wid, result_type=ScheduleState).result()
        assert (st.status, st.cancelled_by, st.cancelled_proof) == (
            "cancelled",
            "operator",
            "operator, through the console (proven by the console's key)",
        ), st
