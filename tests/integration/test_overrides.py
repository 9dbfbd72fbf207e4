"""Break-glass overrides on the console controls, on the lab: each overridable rule
forced once with its record checked (the control's JSON answer, its report, its
history); each absolute rule refused, through the CLI and through a control workflow
started without it. One lab and one worker for all of it (the suite's time budget)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from inventory.rules import BY_NAME, RULES
from lab.state import LabState
from records.history import parse_history
from tests.support.cli import cli, cli_json
from tests.support.driving import switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.worker import running_worker
from workflows.control import ControlInput, ControlResult
from workflows.overrides import Override

ABSOLUTE = [r.name for r in RULES if not r.overridable]


async def forced(temporal: Client, lab: Lab, rule: str, *argv: str) -> dict:
    """A control with `--override rule`; returns its one override record (and the answer)."""
    r = await cli_json(
        temporal, lab, *argv, "--operator", "ann", "--override", rule, "--reason", f"test {rule}"
    )
    [rec] = r["overrides"]
    assert (rec["rule"], rec["operator"], rec["reason"]) == (rule, "ann", f"test {rule}"), rec
    return {**rec, "answer": r}


async def refused(temporal: Client, lab: Lab, *argv: str) -> str:
    rc, out = await cli(temporal, lab, *argv)
    assert rc == 1, out
    return out


async def report_json(temporal: Client, lab: Lab, run_id: str) -> dict:
    return await cli_json(temporal, lab, "report", run_id)


def set_probe_blocked(lab: Lab, host: str, blocked: bool) -> None:
    """The bridge's firewall drops the reachability probe; iSCSI itself still connects."""
    with LabState(lab.dir).transaction() as txn:
        txn.require_host(host)["probe_blocked"] = blocked


async def test_overrides_on_the_lab(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        await _absolute_rules_are_refused(temporal, lab)
        await _browse_switch_only_stopped(temporal, lab)
        await _insync_direction_only_while_stopped(temporal, lab)
        await _client_switch_needs_bridge(temporal, lab)
        await _control_alongside_run(temporal, lab)


async def _absolute_rules_are_refused(temporal: Client, lab: Lab) -> None:
    """Absolute rules: the CLI refuses them before anything starts, and the control
    workflow refuses them too, started without the CLI."""
    for rule in ABSOLUTE:
        out = await refused(
            temporal, lab, "replication", "start", "Y", "--override", rule, "--reason", "x"
        )
        assert f"rule '{rule}' cannot be overridden" in out, out
        assert BY_NAME[rule].protects in out, out
    assert (await cli_json(temporal, lab, "runs", "--kind", "control"))["runs"] == []

    # ... and the control workflow refuses them too, started without the CLI.
    with pytest.raises(WorkflowFailureError) as e:
        await temporal.execute_workflow(
            "control",
            ControlInput(
                pair=lab.inventory.pair,
                control="replication-start",
                operator="ann",
                side="Y",
                overrides=[Override(rule="replication-only-from-main", reason="web ui")],
            ),
            id=f"{lab.inventory.workflow_id}-control",
            task_queue=lab.inventory.queue,
            result_type=ControlResult,
        )
    cause = e.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Refused", cause
    assert "rule 'replication-only-from-main' cannot be overridden" in cause.message
    refused_run = (
        e.value.cause
        and (
            await temporal.get_workflow_handle(f"{lab.inventory.workflow_id}-control").describe()
        ).run_id
    )
    rep = await report_json(temporal, lab, refused_run)
    [row] = rep["overrides"]
    assert row["rule"] == "replication-only-from-main" and row["used"] is None
    assert row["outcome"].startswith("unknown: the control failed")
    status = await cli_json(temporal, lab, "status")
    assert (status["dsm"]["Y"]["mode"], status["main"]) == ("backup", "X")


async def _browse_switch_only_stopped(temporal: Client, lab: Lab) -> None:
    """browse-switch-only-stopped: swap the files under running services."""
    rec = await forced(
        temporal, lab, "browse-switch-only-stopped", "browse", "switch", "--to", "Y", "mdi-k2"
    )
    assert rec["used"] is True and rec["overrode"] == [
        "mdi-k2: Browse k2-mdi switches only when stopped; running: GV K2 MDI"
    ], rec
    assert (
        "rule 'browse-switch-only-stopped' overridden: Browse k2-mdi was running (GV K2 MDI)"
        in rec["answer"]["details"][0]
    )
    status = await cli_json(temporal, lab, "status")
    k2 = next(b for b in status["browse"]["components"] if b["host"] == "mdi-k2")
    assert (k2["side"], k2["running"]) == ("Y", True)
    # The record is in the report (JSON and markdown) and in the history.
    run_id = rec["answer"]["run_id"]
    rep = await report_json(temporal, lab, run_id)
    assert rep["initiator"] == "ann" and rep["title"] == "control browse-switch Y mdi-k2"
    assert [(o["rule"], o["operator"], o["reason"], o["used"]) for o in rep["overrides"]] == [
        ("browse-switch-only-stopped", "ann", "test browse-switch-only-stopped", True)
    ]
    rc, text = await cli(temporal, lab, "report", run_id)
    assert rc == 0 and "## Overrides" in text and "browse-switch-only-stopped" in text, text
    handle = temporal.get_workflow_handle(f"{lab.inventory.workflow_id}-control", run_id=run_id)
    history = await handle.fetch_history()
    assert_no_secrets(lab, history)
    record_history(history, "control-browse-switch-override.json")
    hist = parse_history(history)
    assert hist.input["overrides"] == [
        {"rule": "browse-switch-only-stopped", "reason": "test browse-switch-only-stopped"}
    ]
    assert hist.result["overrides"][0]["used"] is True
    rec = await forced(
        temporal, lab, "browse-switch-only-stopped", "browse", "switch", "--to", "X", "mdi-k2"
    )
    assert rec["used"] is True


async def _insync_direction_only_while_stopped(temporal: Client, lab: Lab) -> None:
    """insync-direction-only-while-stopped: re-point InSync while it runs."""
    out = await refused(temporal, lab, "insync", "set-main", "Y")
    assert "insync-direction-only-while-stopped" in out
    rec = await forced(
        temporal, lab, "insync-direction-only-while-stopped", "insync", "set-main", "Y"
    )
    assert rec["used"] is True and "K2InSync is running" in rec["overrode"][0], rec
    assert "rule 'insync-direction-only-while-stopped' overridden" in rec["answer"]["message"]
    assert (await cli_json(temporal, lab, "status"))["insync"]["main"] == "Y"
    await forced(temporal, lab, "insync-direction-only-while-stopped", "insync", "set-main", "X")


async def _client_switch_needs_bridge(temporal: Client, lab: Lab) -> None:
    """client-switch-needs-bridge: the probe is blocked, iSCSI is not."""
    set_probe_blocked(lab, "bridge-y", True)
    out = await refused(temporal, lab, "clients", "switch", "--to", "Y", "ED-01")
    assert "client-switch-needs-bridge" in out and "bridge-y" in out, out
    rec = await forced(
        temporal, lab, "client-switch-needs-bridge", "clients", "switch", "--to", "Y", "ED-01"
    )
    assert (
        rec["used"] is True and "cannot reach Y's bridge K2 server bridge-y" in (rec["overrode"][0])
    ), rec
    assert rec["answer"]["message"] == "1 client(s) switched to Y"
    status = await cli_json(temporal, lab, "status")
    assert {c["host"]: c["side"] for c in status["clients"]} == {"ED-01": "Y"}
    # Back, with the probe answering: the override was not needed, and says so.
    set_probe_blocked(lab, "bridge-y", False)
    rec = await forced(
        temporal, lab, "client-switch-needs-bridge", "clients", "switch", "--to", "X", "ED-01"
    )
    assert (rec["used"], rec["overrode"]) == (False, [])
    assert rec["outcome"] == "not needed: the rule did not refuse"


async def _control_alongside_run(temporal: Client, lab: Lab) -> None:
    """control-alongside-run: a control while a switch waits at a manual step."""
    run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y")
    # dsm-x-backup is done by now, so `dsm set-backup X` changes nothing.
    out = await refused(temporal, lab, "dsm", "set-backup", "X")
    assert "refused by rule 'control-alongside-run'" in out and run in out, out
    rec = await forced(temporal, lab, "control-alongside-run", "dsm", "set-backup", "X")
    assert rec["used"] is True
    assert rec["overrode"] == [
        f"the switch run {run} is running on pair {lab.inventory.pair} and it is at stop-insync"
    ], rec
    assert rec["answer"]["message"] == "DSM dsm-x is already backup"
    # A prefix of a control's run id finds it too.
    rep = await report_json(temporal, lab, rec["answer"]["run_id"][:13])
    assert rep["run_id"] == rec["answer"]["run_id"]
    assert [o["rule"] for o in rep["overrides"]] == ["control-alongside-run"]
    rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over", "--operator", "ann")
    assert rc == 0, out
    for _ in range(100):
        if (await cli_json(temporal, lab, "show", run))["state"] == "aborted":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"run {run} did not abort")
