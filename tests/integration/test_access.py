"""Who may act: operators act, viewers read, everyone else is refused; refusals are
recorded in the run."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import Client

from tests.support.cli import cli, cli_json
from tests.support.driving import step, switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.worker import running_worker
from workers.worker import start_watch


async def test_operators_act_viewers_read_others_are_refused(
    temporal: Client,
    lab_factory,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    lab: Lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(operators=["ann"], viewers=["vic"])
    async with running_worker(temporal, lab):
        await start_watch(temporal, lab.inventory)  # as `amsm worker` does
        monkeypatch.setenv("AMSM_OPERATOR", "vic")
        for _ in range(100):  # a viewer reads what the pair's watch read (a query)
            rc, out = await cli(temporal, lab, "status", "--json")
            if rc == 0:
                break
            await asyncio.sleep(0.2)
        assert rc == 0 and json.loads(out)["mode"] == "mirrored", out
        # A viewer's start is refused by the workflow itself, so the refusal is on record.
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--operator", "vic")
        assert rc == 1 and "vic is not an operator of pair" in out
        rows = (await cli_json(temporal, lab, "runs", "--operator", "vic"))["runs"]
        assert [r["state"] for r in rows] == ["failed"]
        rc, out = await cli(temporal, lab, "dsm", "set-main", "Y", "--operator", "vic")
        assert rc == 1 and "dsm-set-main refused: vic is not an operator" in out

        monkeypatch.setenv("AMSM_OPERATOR", "mallory")
        rc, out = await cli(temporal, lab, "status")
        assert rc == 1 and "mallory is neither an operator nor a viewer" in out

        monkeypatch.setenv("AMSM_OPERATOR", "ann")
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--operator", "ann")
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--operator", "vic")
        assert rc == 1 and "vic is not an operator of this pair" in out
        shown = await cli_json(temporal, lab, "show", run)
        assert [(r["operator"], r["reason"]) for r in shown["rejected"]] == [
            ("vic", "vic is not an operator of this pair")
        ]
        assert step(shown, "stop-insync")["status"] == "awaiting-confirmation"
        rc, out = await cli(
            temporal, lab, "abort", run, "--reason", "test over", "--operator", "ann"
        )
        assert rc == 0, out
        for _ in range(100):
            if (await cli_json(temporal, lab, "show", run))["state"] == "aborted":
                break
            await asyncio.sleep(0.1)
        await temporal.get_workflow_handle(f"{lab.inventory.workflow_id}-watch").terminate("done")
