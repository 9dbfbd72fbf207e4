"""The console controls, each a short durable workflow, on the lab; their interlocks."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from lab.faults import set_fault
from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step, switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.worker import running_worker

ALLSYNC_SERVICE = "AllSync Scheduler"


def enable_allsync_service(lab: Lab) -> None:
    """Give the lab's CIFS NAS heads an AllSync service and tell the inventory its name."""
    with LabState(lab.dir).transaction() as txn:
        for side in ("X", "Y"):
            doc = txn.require_host(f"nas-cifs-{side.lower()}")
            running = "AllSync" in doc.get("processes", [])
            doc.setdefault("services", {})[ALLSYNC_SERVICE] = "Running" if running else "Stopped"
            doc["service_processes"] = {ALLSYNC_SERVICE: "AllSync"}
    lab.edit_inventory(devices={"allsync_service": ALLSYNC_SERVICE})


async def ok(temporal: Client, lab: Lab, *argv: str) -> dict:
    return await cli_json(temporal, lab, *argv, "--operator", "ctl-op")


async def refused(temporal: Client, lab: Lab, *argv: str) -> str:
    rc, out = await cli(temporal, lab, *argv)
    assert rc != 0, out
    return out


async def test_every_control_on_the_lab(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=0)
    enable_allsync_service(lab)
    async with running_worker(temporal, lab):
        # Interlocks answer through the controls too, naming the rule.
        out = await refused(temporal, lab, "replication", "start", "Y")
        assert "replication-only-from-main" in out and "dsm-y is backup" in out
        out = await refused(temporal, lab, "insync", "set-main", "Y")
        assert "insync-direction-only-while-stopped" in out
        out = await refused(temporal, lab, "insync", "stop")
        assert "started and stopped by hand here" in out
        out = await refused(temporal, lab, "browse", "switch", "--to", "Y", "browse-srv")
        assert "browse-switch-only-stopped" in out
        out = await refused(temporal, lab, "clients", "switch", "--to", "Y", "ED-99")
        assert "not among the switchable clients" in out

        r = await ok(temporal, lab, "browse", "stop", "mdi-k2")
        assert r["message"] == "1 Browse component(s) stopped" and r["operator"] == "ctl-op"
        r = await ok(temporal, lab, "browse", "switch", "--to", "Y", "mdi-k2")
        assert "point at Y" in r["message"]
        status = await cli_json(temporal, lab, "status")
        k2 = next(b for b in status["browse"]["components"] if b["host"] == "mdi-k2")
        assert (
            k2["side"] == "Y" and k2["running"] is False and status["browse"]["active_on"] is None
        )
        await ok(temporal, lab, "browse", "switch", "--to", "X", "mdi-k2")
        r = await ok(temporal, lab, "browse", "start")
        assert "Active on X" in r["message"]

        r = await ok(temporal, lab, "reboot", "ED-01")
        assert r["message"].startswith("ED-01 restarted in")
        r = await ok(temporal, lab, "clients", "switch", "--to", "Y", "ED-01")
        assert r["message"] == "1 client(s) switched to Y"
        status = await cli_json(temporal, lab, "status")
        assert {c["host"]: c["side"] for c in status["clients"]} == {"ED-01": "Y", "ED-02": "X"}
        await ok(temporal, lab, "clients", "switch", "--to", "X", "ED-01")

        r = await ok(temporal, lab, "allsync", "stop", "X")
        assert r["message"] == f"AllSync stopped on nas-cifs-x (service {ALLSYNC_SERVICE})"
        assert "already stopped" in (await ok(temporal, lab, "allsync", "stop", "X"))["message"]

        # The whole switch by hand, button by button.
        await ok(temporal, lab, "replication", "stop", "X")
        await ok(temporal, lab, "dsm", "set-backup", "X")
        await ok(temporal, lab, "smartbins", "set-backup", "X")
        await ok(temporal, lab, "dsm", "set-main", "Y")
        await ok(temporal, lab, "smartbins", "set-main", "Y")
        r = await ok(temporal, lab, "replication", "start", "Y")
        assert "replication started from DSM dsm-y" in r["message"]
        await ok(temporal, lab, "allsync", "start", "Y")
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")
        assert status["allsync"]["running_on"] == ["Y"]
        sb = {s["host"]: (s["running"], s["mode"]) for s in status["smartbins"]}
        assert sb["sb-y1"] == (True, "Normal") and sb["sb-x1"] == (True, "Pseudo")


async def test_controls_refused_while_a_run_goes_on_unless_they_mend_it(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    enable_allsync_service(lab)
    lab.retime(max_attempts=1, replication_timeout=2)
    async with running_worker(temporal, lab):
        set_fault(lab.dir, "dsm-y", "replication-fails")
        run, shown = await switch_waiting_at_stop_insync(temporal, lab, "Y")
        # AllSync's steps are automatic here: the inventory names its service.
        out = await refused(temporal, lab, "dsm", "set-main", "Y")
        assert f"the switch run {run} is running" in out and "it is at stop-insync" in out

        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "start-replication")["status"] == "failed",
        )
        assert step(shown, "stop-allsync")["operator"] == "amsm (automatic)"
        assert "AllSync stopped on nas-cifs-x" in step(shown, "stop-allsync")["message"]
        # Waiting on a failed DSM step: a browse control does not mend it, a DSM control does.
        out = await refused(temporal, lab, "browse", "stop")
        assert "waits on failed step(s) start-replication, which browse-stop does not mend" in out
        set_fault(lab.dir, "dsm-y", "clear")
        r = await ok(temporal, lab, "replication", "start", "Y")
        assert "replication" in r["message"]
        rc, out = await cli(temporal, lab, "retry", run, "start-replication")
        assert rc == 0, out
        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        assert "already runs" in step(final, "start-replication")["message"]
        assert step(final, "start-allsync")["operator"] == "amsm (automatic)"
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")
        assert status["allsync"]["running_on"] == ["Y"]


async def test_one_control_at_a_time(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0, reboot_seconds=1.5)
    async with running_worker(temporal, lab):
        first = asyncio.create_task(cli(temporal, lab, "reboot", "ED-01"))
        await asyncio.sleep(0.8)
        out = await refused(temporal, lab, "reboot", "sb-x1")
        assert "another control is running" in out
        rc, out = await first
        assert rc == 0 and "ED-01 restarted" in out
