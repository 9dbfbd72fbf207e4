"""`amsm replay` and `amsm replay --timeline`: no server, the current workflow code, the
worker's data converter; a history that no longer replays is named with its event."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

from activities.models import PairRef
from client.cli import offline
from records.replay import replay_paths
from tests.support.history_cli import amsm, parser
from workflows.client_switch import ClientSwitchWorkflow
from workflows.inputs import read
from workflows.models import Checklist, ClientProgress, ClientSwitchInput, StepState, SwitchInput
from workflows.registry import WORKFLOWS
from workflows.switch import SwitchWorkflow

# The histories these tests were written against (recorded before four patches).
HISTORIES = Path(__file__).parents[1] / "histories" / "v1"


# -- workflows changed after the histories were recorded -----------------------------------
@workflow.defn(name="switch", sandboxed=False)
class SwitchWithAnAuditActivity(SwitchWorkflow):
    """An extra activity before anything else: every old switch history breaks at event 5."""

    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__(raw)

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        inp = read(SwitchInput, raw)
        await workflow.execute_activity(
            "audit_log", PairRef(pair=inp.pair), start_to_close_timeout=timedelta(seconds=5)
        )
        return await super().run(raw)


@workflow.defn(name="switch", sandboxed=False)
class SwitchWithOtherChildIds(SwitchWorkflow):
    """Client switches under a different child workflow id."""

    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__(raw)

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        return await super().run(raw)

    async def move_clients(self, step: StepState, clients: list[ClientProgress]) -> str:
        for cp in clients:
            assert cp.to is not None
            await workflow.execute_child_workflow(
                ClientSwitchWorkflow.run,
                ClientSwitchInput(pair=self.pair, host=cp.host, to=cp.to, timing=self.timing),
                id=f"client-{cp.host}",
            )
        return "moved"


def changed(cls: type) -> list[type]:
    return [cls, *(w for w in WORKFLOWS if w is not SwitchWorkflow)]


def event_of(path: Path, event_id: int) -> dict[str, Any]:
    events = json.loads(path.read_text())["events"]
    return next(e for e in events if int(e["eventId"]) == event_id)


# -- tests ----------------------------------------------------------------------------------
async def test_the_committed_histories_replay_against_todays_code() -> None:
    rc, out = await amsm("replay", str(HISTORIES))
    assert rc == 0, out
    lines = out.splitlines()
    n = len(list(HISTORIES.glob("*.json")))
    assert len(lines) == n + 1 and lines[-1] == f"{n} of {n} histories replay"
    assert f"{HISTORIES / 'switch-x-to-y.json'}: ok (switch, 152 events)" in lines


async def test_an_extra_activity_is_named_with_its_event() -> None:
    path = HISTORIES / "switch-x-to-y.json"
    [o] = await replay_paths([path], changed(SwitchWithAnAuditActivity))
    assert not o.ok and (o.event_id, o.event_type) == (5, "ActivityTaskScheduled")
    assert "'get_timing'" in (o.mismatch or "") and "'audit_log'" in (o.mismatch or "")
    assert o.line == f"{path}: event 5 (ActivityTaskScheduled): {o.mismatch}"
    assert o.line.count("\n") == 0 and "Nondeterminism" in o.line


async def test_a_different_child_id_is_named_with_its_event() -> None:
    """The mismatch is found by replaying ever longer prefixes of the history: it is the
    first child the changed code starts under another id."""
    path = HISTORIES / "switch-with-client-decisions.json"
    [o] = await replay_paths([path], changed(SwitchWithOtherChildIds))
    assert not o.ok and o.event_type == "StartChildWorkflowExecutionInitiated", o.line
    attrs = event_of(path, o.event_id or 0)["startChildWorkflowExecutionInitiatedEventAttributes"]
    assert attrs["workflowId"].endswith("-ED-01")
    assert attrs["workflowId"] in (o.mismatch or "") and "client-ED-01" in (o.mismatch or "")


async def test_a_tampered_history_fails_the_cli_with_the_event(tmp_path: Path) -> None:
    """The history of a run whose workflow code has since changed (here: the history says
    another activity ran at event 19)."""
    data = json.loads((HISTORIES / "switch-x-to-y.json").read_text())
    e = next(x for x in data["events"] if x["eventId"] == "19")
    e["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "dsm_halt_replication"
    bad = tmp_path / "old-switch.json"
    bad.write_text(json.dumps(data))
    good = tmp_path / "split.json"
    good.write_text((HISTORIES / "split-main-x.json").read_text())
    rc, out = await amsm("replay", str(bad), str(good))
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{bad}: event 19 (ActivityTaskScheduled): ")
    assert "'dsm_halt_replication'" in lines[0] and "'dsm_stop_replication'" in lines[0]
    assert lines[1] == f"{good}: ok (split, 68 events)"
    assert lines[2] == "1 of 2 histories replay; 1 do not"


async def test_a_workflow_the_code_no_longer_has(tmp_path: Path) -> None:
    data = json.loads((HISTORIES / "split-main-x.json").read_text())
    start = data["events"][0]["workflowExecutionStartedEventAttributes"]
    start["workflowType"]["name"] = "split-v0"
    p = tmp_path / "retired.json"
    p.write_text(json.dumps(data))
    rc, out = await amsm("replay", str(p))
    assert rc == 1
    assert out.startswith(f"{p}: event 1 (WorkflowExecutionStarted): ")
    assert "split-v0" in out and "not registered" in out
    rc, out = await amsm("replay", str(p), "--json")
    data = json.loads(out)
    assert rc == 1 and data["ok"] is False
    assert (data["histories"][0]["event_id"], data["histories"][0]["file"]) == (1, str(p))


async def test_replay_usage_errors_are_one_line(tmp_path: Path) -> None:
    rc, out = await amsm("replay", str(tmp_path / "nope.json"))
    assert (rc, out.strip()) == (2, f"amsm: {tmp_path / 'nope.json'}: no such file or directory")
    rc, out = await amsm("replay", str(tmp_path))
    assert (rc, out.strip()) == (2, f"amsm: {tmp_path}: no *.json histories in this directory")
    notes = tmp_path / "notes.json"
    notes.write_text('{"hello": 1}')
    rc, out = await amsm("replay", str(notes))
    assert rc == 1 and out.startswith(f"{notes}: not a workflow history")
    assert out.count("\n") == 1


async def test_timeline_from_the_history_alone() -> None:
    path = HISTORIES / "switch-with-client-decisions.json"
    rc, out = await amsm("replay", "--timeline", str(path))
    assert rc == 0, out
    assert out.startswith("Switch X -> Y (t7bbd87fc)   run 01a21211-c6cb-7b8f-a958-3e030ca109e4")
    assert "result: completed: switch complete: mirrored, Y main" in out
    # who decided what, and the device's error of the failed client switches
    assert "09:38:10.0  skip switch-clients ED-03 by jo: broken PSU" in out
    assert "09:38:10.1  retry switch-clients by root" in out
    assert "ED-03: client switch failed after 3.3 s: during rebooting 1/2: ED-03: did not" in out
    assert 'confirmed by tester: "did stop-insync"' in out
    assert "ED-02: done, 2 attempts: ED-02 switched to Y in 1.1 s" in out
    rc, out = await amsm("replay", "--timeline", str(path), "--json")
    data = json.loads(out)
    assert [s["id"] for s in data["steps"]][:2] == ["stop-replication", "dsm-x-backup"]
    assert data["state"] == "completed" and data["run_id"].startswith("01a21211")


def test_the_parser_and_which_commands_need_the_server() -> None:
    p = parser()
    assert offline(p.parse_args(["replay", "x.json"]))
    assert offline(p.parse_args(["replay", "--timeline", "x.json"]))
    assert offline(p.parse_args(["report", "old-run.json", "--format", "html"]))
    assert not offline(p.parse_args(["report", "current"]))
    assert not offline(p.parse_args(["history", "export", "01a2", "-o", "x.json"]))
    args = p.parse_args(["--inventory", "inv.yaml", "report", "01a2b3", "-o", "r.html"])
    assert (args.inventory, args.run, args.output, args.format) == (
        "inv.yaml",
        "01a2b3",
        "r.html",
        None,
    )


async def test_history_without_its_action_says_so() -> None:
    rc, out = await amsm("history")
    assert rc == 2 and out.startswith("amsm: amsm history: choose export")


def test_payloads_in_the_committed_histories_are_json() -> None:
    """The report decodes with the pydantic data converter: json/plain payloads."""
    data = json.loads((HISTORIES / "switch-x-to-y.json").read_text())
    enc = data["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    assert base64.b64decode(enc["metadata"]["encoding"]) == b"json/plain"
