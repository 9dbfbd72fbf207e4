"""Restore with real orphans; failed client switches decided per client; lab faults."""

from __future__ import annotations

import asyncio
import socket

import pytest
from temporalio.client import Client

from activities.context import DeviceContext
from activities.drivers.errors import RULE_PURGE_BACKUP_ONLY, InterlockRefused
from activities.drivers.facts import media as media_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.operations import media as media_ops
from lab.faults import set_fault
from lab.media import ingest
from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.lab import Lab
from tests.support.secrets import record_run
from tests.support.waiting import host_up, wait_for
from tests.support.worker import running_worker


def volume(lab: Lab, side: str) -> dict[str, str]:
    with LabState(lab.dir).transaction() as txn:
        return txn.volume_files(side)


def clips(lab: Lab, side: str) -> set[str]:
    return {
        p.split("\\")[2] + "\\" + p.split("\\")[3]
        for p in volume(lab, side)
        if p.lower().startswith("v:\\vibrantavifiles\\")
    }


async def test_restore_purges_real_orphans_on_the_backup_side_only(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "split", "--main", "X"))["run_id"]
        assert (await drive(temporal, lab, run, "X", stop_allsync_on="X"))["state"] == "completed"

        # While split, each side records on its own.
        ingest(lab.dir, "X", "x-only", "News")
        for i in range(12):
            ingest(lab.dir, "Y", f"y-only-{i:02d}", "Sports")
        x_before = volume(lab, "X")
        assert "News\\x-only.vmf" in clips(lab, "X") and "News\\x-only.vmf" not in clips(lab, "Y")

        # The purge never runs on the main side's volume: the driver refuses it.
        a = DeviceContext(lab.inventory, lab.inventory_path)
        with pytest.raises(InterlockRefused) as e:
            x_host = a.host(lab.inventory.sides["X"].pseudo_host)
            await media_ops.purge_orphans(
                x_host, "X", "X", [media_facts.ClipRecord("News\\x-only.vmf", ())], x_host
            )
        assert e.value.rule == RULE_PURGE_BACKUP_ONLY

        run = (await cli_json(temporal, lab, "start", "restore", "--main", "X"))["run_id"]
        shown = await drive(
            temporal,
            lab,
            run,
            "X",
            until=lambda s: step(s, "approve-purge")["status"] == "awaiting-approval",
        )
        orphans = [f"Sports\\y-only-{i:02d}.vmf" for i in range(12)]
        assert step(shown, "find-orphans")["items"] == orphans
        gate = step(shown, "approve-purge")
        assert gate["items"] == orphans  # all of them in --json
        assert (
            "12 clip(s) will be deleted on Y only" in gate["message"]
            and "(+2 more)" in gate["message"]
        )
        rc, text = await cli(temporal, lab, "show", run)
        assert "Sports\\y-only-09.vmf" in text and "Sports\\y-only-10.vmf" not in text

        final = await drive(temporal, lab, run, "X")
        assert final["state"] == "completed", final
        assert "12 orphan clip(s) deleted on sb-y1 (Y)" in step(final, "purge-orphans")["message"]
        await record_run(temporal, lab, run, "restore-with-orphans-main-x.json")

        # X's files are untouched; Y lost its orphans and, once InSync runs X -> Y again,
        # gets what X recorded while split.
        assert {k: v for k, v in volume(lab, "X").items() if k in x_before} == x_before

        async def y_caught_up() -> bool:
            return "News\\x-only.vmf" in clips(lab, "Y")

        await wait_for(y_caught_up, "InSync copies X's new clip to Y")
        assert not any(c.startswith("Sports\\y-only") for c in clips(lab, "Y"))
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "X")
        assert status["dsm"]["X"]["asset_count"] == status["dsm"]["Y"]["asset_count"]


async def clients_settled(
    temporal: Client, lab: Lab, run: str, want: dict[str, str]
) -> tuple[dict, dict[str, dict]]:
    """Drive the switch into switch-clients, then wait until each client of `want` has
    its status (one failure does not stop the others); (shown, clients by host)."""
    await drive(
        temporal, lab, run, "Y", until=lambda s: step(s, "switch-clients")["status"] != "pending"
    )
    by_host: dict[str, dict] = {}
    for _ in range(300):
        shown = await cli_json(temporal, lab, "show", run)
        by_host = {c["host"]: c for c in step(shown, "switch-clients").get("clients") or []}
        if all(by_host.get(h, {}).get("status") == st for h, st in want.items()):
            return shown, by_host
        await asyncio.sleep(0.1)
    raise AssertionError(f"clients not {want}: {by_host}")


async def test_failed_client_is_retried_or_skipped_on_its_own(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=3, ingest=0, reboot_seconds=0.3)
    lab.retime(reboot_timeout=3, max_attempts=1)
    set_fault(lab.dir, "ED-02", "no-reboot")
    set_fault(lab.dir, "ED-03", "no-reboot")
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        shown, by_host = await clients_settled(
            temporal, lab, run, {"ED-01": "done", "ED-02": "failed", "ED-03": "failed"}
        )
        assert "did not come back" in (by_host["ED-02"]["error"] or ""), by_host["ED-02"]
        assert shown["state"] == "awaiting-operator"
        rc, text = await cli(temporal, lab, "show", run)
        assert f"amsm retry {run} switch-clients" in text and "ED-02: failed" in text

        rc, out = await cli(
            temporal, lab, "skip", run, "switch-clients", "--client", "ED-01", "--reason", "x"
        )
        assert rc == 1 and "not a failed client" in out
        # ED-03 stays behind on purpose; ED-02's reboot is fixed and retried.
        rc, out = await cli(
            temporal,
            lab,
            "skip",
            run,
            "switch-clients",
            "--client",
            "ED-03",
            "--reason",
            "broken PSU",
            "--operator",
            "jo",
        )
        assert rc == 0, out
        set_fault(lab.dir, "ED-02", "clear")
        # As an operator would: retry once the host answers again.
        await wait_for(host_up(lab, "ED-02"), "ED-02 back up")
        rc, out = await cli(temporal, lab, "retry", run, "switch-clients")
        assert rc == 0, out

        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        by_host = {c["host"]: c for c in step(final, "switch-clients")["clients"]}
        assert by_host["ED-02"]["status"] == "done" and by_host["ED-02"]["attempts"] == 2
        assert (
            by_host["ED-03"]["status"] == "skipped" and "broken PSU" in by_host["ED-03"]["message"]
        )
        assert "left behind on purpose: ED-03" in step(final, "switch-clients")["message"]
        assert [(d["action"], d["client"]) for d in final["decisions"]] == [
            ("skip", "ED-03"),
            ("retry", None),
        ]
        await record_run(temporal, lab, run, "switch-with-client-decisions.json")


async def test_failed_step_waits_then_retry_succeeds(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    lab.retime(max_attempts=2, replication_timeout=2)
    async with running_worker(temporal, lab):
        set_fault(lab.dir, "dsm-y", "replication-fails")
        # Drive a switch to its end: replication from Y fails, the run waits for a decision.
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "start-replication")["status"] == "failed",
        )
        s = step(shown, "start-replication")
        assert "replication failed" in s["error"] and shown["state"] == "awaiting-operator"
        set_fault(lab.dir, "dsm-y", "clear")
        # The failed master must be stopped before it starts again: the activity is idempotent.
        rc, out = await cli(temporal, lab, "retry", run, "start-replication")
        assert rc == 0, out
        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        assert [d["action"] for d in final["decisions"]] == ["retry"]


async def test_unreachable_fault_closes_the_port_and_clear_reopens_without_a_reboot(
    lab_factory,
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    ed = lab.inventory.client("ED-01")
    boot = await windows_facts.boot(a.host(ed))

    def port_open() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", ed.port)) == 0

    set_fault(lab.dir, "ED-01", "unreachable")

    async def closed() -> bool:
        return not port_open()

    await wait_for(closed, "port closed")
    set_fault(lab.dir, "ED-01", "clear")

    async def opened() -> bool:
        return port_open()

    await wait_for(opened, "port open again")
    assert not (await windows_facts.boot(a.host(ed))).after(boot.latest, 0.05)


async def test_nas_head_down_while_a_manual_step_is_verified(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    from lab.hands import set_allsync, set_insync

    lab = await lab_factory(editors=1, ingest=0)
    lab.retime(max_attempts=2)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "stop-allsync")["status"] == "awaiting-confirmation",
        )
        set_insync(lab.dir, running=False)
        set_allsync(lab.dir, "X", running=False)
        set_fault(lab.dir, "nas-cifs-x", "unreachable")
        rc, out = await cli(temporal, lab, "confirm", run, "stop-allsync")
        assert rc == 0, out
        for _ in range(200):
            shown = await cli_json(temporal, lab, "show", run)
            if step(shown, "stop-allsync")["status"] == "failed":
                break
            await asyncio.sleep(0.1)
        s = step(shown, "stop-allsync")
        # Bounded retries, then the run waits and says why, naming the host.
        assert s["status"] == "failed" and "nas-cifs-x" in s["error"], s
        assert shown["state"] == "awaiting-operator"
        set_fault(lab.dir, "nas-cifs-x", "clear")
        rc, out = await cli(temporal, lab, "retry", run, "stop-allsync")
        assert rc == 0, out
        shown = await drive(
            temporal, lab, run, "Y", until=lambda s: step(s, "stop-allsync")["status"] == "done"
        )
        assert step(shown, "stop-allsync")["message"] == "confirmed and verified"
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over")
        assert rc == 0, out


async def test_dsm_that_stops_answering_mid_switch(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    lab.retime(max_attempts=2)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "approve-overwrite")["status"] == "awaiting-approval",
        )
        set_fault(lab.dir, "dsm-y", "unreachable")
        status = await cli_json(temporal, lab, "status")
        assert status["dsm"]["Y"]["state"] == "Not Responding" and status["mode"] == "inconsistent"
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "start-replication")["status"] == "failed",
            timeout=60,
        )
        s = step(shown, "start-replication")
        assert s["error"].startswith("dsm-y: ") and "ODBC" in s["error"], s
        set_fault(lab.dir, "dsm-y", "clear")
        rc, out = await cli(temporal, lab, "retry", run, "start-replication")
        assert rc == 0, out
        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")


async def test_client_in_a_boot_loop_fails_with_its_reason_and_a_retry_after_clear_succeeds(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=0, reboot_seconds=0.3)
    lab.retime(settle_time=1.5)
    # From its next restart on, every boot of ED-02 lasts 0.4 s: shorter than the settle time.
    assert "boot loop" in set_fault(lab.dir, "ED-02", "flapping", 0.4)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        shown, by_host = await clients_settled(
            temporal, lab, run, {"ED-01": "done", "ED-02": "failed"}
        )
        # Not stuck and not retried blindly: the run waits and its checklist says why.
        error = by_host["ED-02"]["error"] or ""
        assert "ED-02: keeps restarting by itself after the restart (1/2)" in error, error
        assert "boot loop" in error and by_host["ED-02"]["attempts"] == 1
        assert shown["state"] == "awaiting-operator"
        # Every client has finished and one failed: the step reads failed, not running.
        assert step(shown, "switch-clients")["status"] == "failed", step(shown, "switch-clients")
        rc, text = await cli(temporal, lab, "show", run)
        assert "ED-02: failed" in text and "keeps restarting" in text, text

        set_fault(lab.dir, "ED-02", "clear")
        await wait_for(host_up(lab, "ED-02"), "ED-02 back up")
        rc, out = await cli(temporal, lab, "retry", run, "switch-clients")
        assert rc == 0, out
        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        by_host = {c["host"]: c for c in step(final, "switch-clients")["clients"]}
        assert by_host["ED-02"]["status"] == "done" and by_host["ED-02"]["attempts"] == 2
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")
