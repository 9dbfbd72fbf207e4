"""split, restore and split-switch in both directions; decisions, verification, abort."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from lab.hands import set_insync
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step, switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.secrets import record_run
from tests.support.worker import running_worker


def sides(status: dict) -> dict[str, str | None]:
    return {c["host"]: c["side"] for c in status["clients"]}


async def test_split_and_restore_both_ways(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=1)
    async with running_worker(temporal, lab):
        # restore needs a split pair
        rc, out = await cli(temporal, lab, "start", "restore", "--main", "X")
        assert rc == 1 and "the pair must be split" in out and "found mirrored" in out

        # split, X stays main; ED-02 moves to Y in the confirmation of move-editors
        run = (await cli_json(temporal, lab, "start", "split", "--main", "X"))["run_id"]
        final = await drive(
            temporal, lab, run, "X", stop_allsync_on="X",
            extra={"move-editors": ["--client", "ED-02"]},
        )  # fmt: skip
        assert final["state"] == "completed", final
        assert [s["id"] for s in final["steps"]] == [
            "stop-replication", "stop-insync", "stop-allsync", "dsm-y-main",
            "smartbins-y-main", "move-editors",
        ]  # fmt: skip
        assert [c["host"] for c in step(final, "move-editors")["clients"]] == ["ED-02"]
        await record_run(temporal, lab, run, "split-main-x.json")
        status = await cli_json(temporal, lab, "status")
        assert status["mode"] == "split" and status["main"] is None
        assert sides(status) == {"ED-01": "X", "ED-02": "Y", "IN-01": "X"}
        assert status["browse"]["active_on"] == "X"  # Browse stays on A
        assert status["insync"]["running"] is False and status["allsync"]["running_on"] == []

        # a second split is refused: the pair is not mirrored
        rc, out = await cli(temporal, lab, "start", "split", "--main", "X")
        assert rc == 1 and "found split" in out

        # restore with Y main: Y's material wins, every client goes to Y, Browse follows
        run = (await cli_json(temporal, lab, "start", "restore", "--main", "Y"))["run_id"]
        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        assert step(final, "approve-purge")["status"] == "skipped"  # no orphans in this lab
        await record_run(temporal, lab, run, "restore-main-y.json")
        assert "asset counts now" in step(final, "approve-overwrite")["message"]
        assert "agree" in step(final, "start-replication")["message"]
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")
        assert set(sides(status).values()) == {"Y"}
        assert status["browse"]["active_on"] == "Y"
        assert status["insync"]["main"] == "Y" and status["allsync"]["running_on"] == ["Y"]

        # and the other way round: split with Y main, restore with X main
        run = (await cli_json(temporal, lab, "start", "split", "--main", "Y"))["run_id"]
        final = await drive(temporal, lab, run, "Y", stop_allsync_on="Y")
        assert final["state"] == "completed", final
        assert step(final, "move-editors")["message"] == "no clients moved"
        run = (await cli_json(temporal, lab, "start", "restore", "--main", "X"))["run_id"]
        final = await drive(temporal, lab, run, "X")
        assert final["state"] == "completed", final
        assert step(final, "browse-to-x")["status"] == "done"
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "X")
        assert status["browse"]["active_on"] == "X"


async def test_split_switch_both_ways(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=1)
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "start", "split-switch", "--to", "Y", "--pilot", "ED-09")
        assert rc == 1 and "unknown pilot client(s): ED-09" in out

        run = (
            await cli_json(temporal, lab, "start", "split-switch", "--to", "Y", "--pilot", "ED-01")
        )["run_id"]

        def pilots_verified_pending(shown: dict) -> bool:
            return step(shown, "verify-pilots")["status"] == "awaiting-confirmation"

        shown = await drive(temporal, lab, run, "Y", until=pilots_verified_pending)
        # While the pilots are verified the pair is split, with only the pilot on Y.
        status = await cli_json(temporal, lab, "status")
        assert status["mode"] == "split"
        assert sides(status) == {"ED-01": "Y", "ED-02": "X", "IN-01": "X"}
        assert step(shown, "verify-pilots")["waiting_since"]
        final = await drive(temporal, lab, run, "Y")
        assert final["state"] == "completed", final
        assert sorted(c["host"] for c in step(final, "switch-clients")["clients"]) == [
            "ED-02",
            "IN-01",
        ]
        await record_run(temporal, lab, run, "split-switch-x-to-y.json")
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "Y")
        assert set(sides(status).values()) == {"Y"} and status["browse"]["active_on"] == "Y"

        run = (
            await cli_json(temporal, lab, "start", "split-switch", "--to", "X", "--pilot", "IN-01")
        )["run_id"]
        final = await drive(temporal, lab, run, "X")
        assert final["state"] == "completed", final
        status = await cli_json(temporal, lab, "status")
        assert (status["mode"], status["main"]) == ("mirrored", "X")
        assert set(sides(status).values()) == {"X"}


async def test_unverified_confirmation_skip_and_abort(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y")
        # Confirmed, but InSync still runs: the service sees it and waits again.
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--operator", "jo")
        assert rc == 0, out
        for _ in range(50):
            shown = await cli_json(temporal, lab, "show", run)
            s = step(shown, "stop-insync")
            if s["status"] == "awaiting-confirmation" and "not verified" in (s["message"] or ""):
                break
            await asyncio.sleep(0.1)
        assert s["message"] == "confirmed but not verified: InSync is still running on cp-01", s
        rc, text = await cli(temporal, lab, "show", run)
        assert "confirmed but not verified" in text and f"amsm confirm {run} stop-insync" in text
        set_insync(lab.dir, running=False)
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--operator", "jo")
        assert rc == 0, out

        # Skipping needs a reason (argparse refuses without one); with one it is recorded.
        await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "stop-allsync")["status"] == "awaiting-confirmation",
        )
        rc, out = await cli(
            temporal,
            lab,
            "skip",
            run,
            "stop-allsync",
            "--reason",
            "AllSync is not installed here",
            "--operator",
            "al",
        )
        assert rc == 0, out
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "check-projects")["status"] == "awaiting-confirmation",
        )
        s = step(shown, "stop-allsync")
        assert (s["status"], s["operator"], s["note"]) == (
            "skipped",
            "al",
            "skipped: AllSync is not installed here",
        )
        assert shown["decisions"][0]["reason"] == "AllSync is not installed here"

        # A retry of a step that has not failed is refused with the reason.
        rc, out = await cli(temporal, lab, "retry", run, "check-projects")
        assert rc == 1 and "only a failed step" in out

        rc, out = await cli(temporal, lab, "abort", run, "--reason", "drill over")
        assert rc == 0, out
        for _ in range(100):
            shown = await cli_json(temporal, lab, "show", run)
            if shown["state"] == "aborted":
                break
            await asyncio.sleep(0.1)
        assert shown["state"] == "aborted" and "drill over" in shown["message"]
        assert step(shown, "check-projects")["status"] == "skipped"
        assert any("clients on Y: ED-01" in x for x in shown["final_state"])


async def test_abort_during_client_switches_leaves_no_client_half_done(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory(editors=3, ingest=1, reboot_seconds=1.0)
    # One client at a time, so an abort finds clients in flight and clients not started.
    lab.retime(max_parallel_clients=1)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "switch-clients")["status"] == "running",
        )
        await asyncio.sleep(0.5)
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "X is fine after all")
        assert rc == 0, out
        for _ in range(300):
            shown = await cli_json(temporal, lab, "show", run)
            if shown["state"] == "aborted":
                break
            await asyncio.sleep(0.1)
        assert shown["state"] == "aborted", shown
        clients = {c["host"]: c["status"] for c in step(shown, "switch-clients")["clients"]}
        assert "done" in clients.values() and "pending" in clients.values(), clients
        status = await cli_json(temporal, lab, "status")
        # Every client is whole on one side: switched ones on Y, the others untouched on X.
        for c in status["clients"]:
            assert c["status"] == "online", c
            assert c["side"] == ("Y" if clients[c["host"]] == "done" else "X"), (c, clients)
