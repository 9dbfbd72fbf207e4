"""Stop the embedded Temporal server mid-run, start it again on the same SQLite file:
the run resumes where it was."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from temporalio.client import Client

from tests.support.cli import cli_json
from tests.support.driving import drive
from tests.support.lab import AMSM, Lab, free_port
from tests.support.servers import start_server
from workers.worker import connect


async def test_run_resumes_after_the_server_restarts(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory(editors=1, ingest=0)
    port = free_port()
    db = tmp_path / "temporal.db"
    server = await start_server(db, port)
    lab.address = f"127.0.0.1:{port}"
    worker = subprocess.Popen(
        [str(AMSM), "worker"], env=lab.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        temporal: Client = await connect(lab.address)
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]

        def at(step_id: str, status: str):  # type: ignore[no-untyped-def]
            return lambda s: next(x for x in s["steps"] if x["id"] == step_id)["status"] == status

        await drive(temporal, lab, run, "Y", until=at("check-projects", "awaiting-confirmation"))

        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        server = await start_server(db, port)
        temporal = await connect(lab.address)
        shown = await cli_json(temporal, lab, "show", run)
        assert shown["state"] == "awaiting-operator"
        assert next(x for x in shown["steps"] if x["id"] == "switch-clients")["status"] == "done"
        final = await drive(temporal, lab, run, "Y", timeout=120)
        assert final["state"] == "completed", final
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")
    finally:
        worker.terminate()
        worker.wait(timeout=15)
        server.terminate()
        server.wait(timeout=30)
