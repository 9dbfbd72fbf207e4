"""Live views, the one-line notice of a waiting run, and `runs` from visibility."""

from __future__ import annotations

import json

from temporalio.client import Client

from tests.support.cli import cli, cli_json
from tests.support.driving import drive, switch_waiting_at_stop_insync
from tests.support.worker import running_worker


async def test_watch_notice_and_runs(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--operator", "ann")

        # Every command says, in one line, that a run waits for the operator.
        rc, out = await cli(temporal, lab, "status")
        assert rc == 0
        assert (
            f"note: the switch run {run} waits for you at stop-insync: amsm confirm {run} stop-insync"
            in out
        )

        # watch stops when the run needs the operator and says what to type.
        rc, out = await cli(temporal, lab, "watch", run, "--interval", "0.2")
        assert rc == 0 and f"The run waits for you: amsm confirm {run} stop-insync" in out
        assert "stop-replication" in out and "dsm-x-backup" in out

        rows = (await cli_json(temporal, lab, "runs"))["runs"]
        assert [(r["run_id"], r["kind"], r["initiator"]) for r in rows][0] == (run, "switch", "ann")
        assert rows[0]["state"] == "awaiting-operator"

        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed"
        await cli_json(temporal, lab, "dsm", "set-main", "Y", "--operator", "bob")  # a control run

        rc, out = await cli(temporal, lab, "watch", run)
        # Its last frame is the run as `amsm show` prints it (client/render.py render_run).
        assert rc == 0 and "The run ended: completed" in out
        assert "clients: 1 done, 0 pending, 0 failed, 1 in all" in out

        done = (await cli_json(temporal, lab, "runs", "--kind", "switch", "--state", "completed"))[
            "runs"
        ]
        assert [r["run_id"] for r in done] == [run] and done[0]["duration_s"] > 0
        controls = (await cli_json(temporal, lab, "runs", "--kind", "control"))["runs"]
        assert [r["initiator"] for r in controls] == ["bob"]
        assert (await cli_json(temporal, lab, "runs", "--operator", "nobody"))["runs"] == []
        rc, out = await cli(temporal, lab, "runs")
        assert rc == 0 and "switch" in out and "control" in out and "ann" in out
        rc, out = await cli(temporal, lab, "runs", "--operator", "x'; drop")
        assert rc == 2 and "--operator" in out
        assert (
            json.loads((await cli(temporal, lab, "runs", "--json"))[1])["pair"]
            == lab.inventory.pair
        )
