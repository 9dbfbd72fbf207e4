"""SIGKILL the worker while clients reboot; a new worker carries the run to the end."""

from __future__ import annotations

import asyncio
import signal
import subprocess

from temporalio.client import Client

from api.show import client_stages
from tests.support.cli import cli, cli_json
from tests.support.driving import drive
from tests.support.lab import AMSM, Lab
from workflows.models import Checklist


def start_worker(lab: Lab) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(AMSM), "worker"], env=lab.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def child_stages(temporal: Client, lab: Lab, run_id: str, hosts: list[str]) -> dict[str, str]:
    """Each client's stage, asked of its child workflow as `amsm watch` asks it."""
    shown = await cli_json(temporal, lab, "show", run_id)
    asked = await client_stages(temporal, Checklist.model_validate(shown))
    return {h: asked.get(h, "not switching") for h in hosts}


async def test_killed_worker_mid_client_switch(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=3, ingest=1, reboot_seconds=1.5)
    hosts = [c.host for c in lab.inventory.clients]
    worker = start_worker(lab)
    try:
        run_id = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]

        def rebooting(shown: dict) -> bool:
            step = next(s for s in shown["steps"] if s["id"] == "switch-clients")
            return step["status"] == "running"

        await drive(temporal, lab, run_id, "Y", until=rebooting)
        # Wait until the clients are in their reboots, then kill the worker outright.
        for _ in range(100):
            stages = await child_stages(temporal, lab, run_id, hosts)
            if any("rebooting" in s for s in stages.values()):
                break
            await asyncio.sleep(0.1)
        assert any("rebooting" in s for s in stages.values()), stages
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # With no worker the checklist cannot be read, and the CLI says why.
        rc, out = await cli(temporal, lab, "show", run_id)
        assert rc == 1 and "is a worker running" in out

        worker = start_worker(lab)
        final = await drive(temporal, lab, run_id, "Y", timeout=180)
        assert final["state"] == "completed", final
        clients = next(s for s in final["steps"] if s["id"] == "switch-clients")["clients"]
        assert {c["host"]: c["status"] for c in clients} == {h: "done" for h in hosts}
        status = await cli_json(temporal, lab, "status")
        assert status["mode"] == "mirrored" and status["main"] == "Y"
        assert {c["host"]: (c["side"], c["status"]) for c in status["clients"]} == {
            h: ("Y", "online") for h in hosts
        }
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=10)
