"""`amsm start KIND ... --dry-run` on the lab: every kind walked against the devices as
they are now, changing nothing (the lab's journal of device changes stays empty, the
DSMs as they were); the would of a switch's and a split-switch's steps matched by what
the real runs then do; what would refuse a step named with its rule; a dry run beside
a running switch, which goes on undisturbed."""

from __future__ import annotations

import json

import pytest
from temporalio.client import Client

from lab.faults import set_fault, set_side_fault
from lab.media import ingest
from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step, switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.waiting import port_open, wait_for
from tests.support.worker import running_worker
from workflows.kinds import KINDS

DSM_HOSTS = {"dsm-x", "dsm-y"}  # changed over ODBC: not in the journal of Windows changes
K2_TWIN = r"C:\Thomson\MediaFrame\Configuration\K2_MDI_Service.backup.exe.config"


async def dry(temporal: Client, lab: Lab, *argv: str) -> tuple[int, dict]:
    rc, out = await cli(temporal, lab, "start", *argv, "--dry-run", "--json")
    assert rc in (0, 1), out
    return rc, json.loads(out)


async def keep(temporal: Client, lab: Lab, shown: dict, name: str) -> None:
    """No secret in the dry run's history; kept for tests/histories/ when recording."""
    history = await temporal.get_workflow_handle(shown["workflow_id"]).fetch_history()
    assert_no_secrets(lab, history)
    record_history(history, name)


async def dsms(temporal: Client, lab: Lab) -> dict:
    st = await cli_json(temporal, lab, "status")
    return {s: (d["mode"], d["mode_since"], d["replication"]) for s, d in st["dsm"].items()}


def would(shown: dict, step_id: str) -> dict:
    return step(shown, step_id)


def journaled(lab: Lab, since: int = 0) -> set[str]:
    return {host for _, host, _, _ in LabState(lab.dir).journal()[since:]}


async def test_a_dry_run_of_every_kind_changes_nothing_and_a_switch_does_what_it_said(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    lab = await lab_factory(editors=2, ingest=1)
    journal = LabState(lab.dir).journal
    async with running_worker(temporal, lab):
        before = await dsms(temporal, lab)
        sw = await _a_dry_run_of_every_kind(temporal, lab)

        # Nothing changed anywhere.
        assert journal() == []
        assert await dsms(temporal, lab) == before

        await _the_switch_does_what_it_said(temporal, lab, sw)
        await _the_split_does_what_it_said(temporal, lab)
        await _the_restore_does_what_it_said(temporal, lab)
        assert await dsms(temporal, lab) != before  # (the real runs did change the DSMs)


async def _a_dry_run_of_every_kind(temporal: Client, lab: Lab) -> dict:
    """Each kind's dry run, what it would do or what would refuse it. The switch's."""
    rc, sw = await dry(temporal, lab, "switch", "--to", "Y")
    assert rc == 0, sw
    assert sw["dry_run"] is True and sw["refused"] is None
    assert [s["id"] for s in sw["steps"]] == [s.id for s in KINDS["switch"].steps("Y")]
    for s in sw["steps"]:
        assert s["status"] == "pending" and s["refused"] is None, s
        assert s["would"], s
    assert would(sw, "dsm-x-backup")["would"] == "would set DSM dsm-x to backup"
    assert would(sw, "dsm-x-backup")["hosts"] == ["dsm-x"]
    clients = would(sw, "switch-clients")
    assert clients["would"] == "would switch 3 clients: ED-01, ED-02, IN-01 from X to Y"
    assert "dsm-y 120, dsm-x 120" in would(sw, "approve-overwrite")["would"]
    await keep(temporal, lab, sw, "dry-run-switch-x-to-y.json")

    rc, text = await cli(temporal, lab, "start", "switch", "--to", "Y", "--dry-run")
    assert rc == 0, text
    assert text.splitlines()[0].startswith("DRY RUN (nothing changed): Switch X -> Y")
    assert "would set DSM dsm-x to backup" in text
    assert text.rstrip().endswith("DRY RUN: nothing was changed. No step would be refused.")

    rc, sp = await dry(temporal, lab, "split", "--main", "X")
    assert rc == 0 and sp["refused"] is None, sp
    assert would(sp, "dsm-y-main")["would"] == "would set DSM dsm-y to main"
    assert "move-editors" in would(sp, "move-editors")["would"]

    rc, ss = await dry(temporal, lab, "split-switch", "--to", "Y", "--pilot", "ED-01")
    assert rc == 0 and ss["refused"] is None, ss
    assert would(ss, "switch-pilots")["hosts"] == ["ED-01"]
    assert would(ss, "switch-clients")["hosts"] == ["ED-02", "IN-01"]

    rc, un = await dry(temporal, lab, "switch", "--to", "Y", "--unplanned", "--reason", "drill")
    assert rc == 0, un
    assert un["title"].startswith("DRY RUN (nothing changed): Unplanned switch X -> Y")
    for s in ("approve-overwrite", "start-replication", "start-insync", "start-allsync"):
        assert would(un, s)["status"] == "skipped", s
        assert would(un, s)["would"].startswith("would pass it over: not in an unplanned")
    assert "tried once" in would(un, "dsm-x-backup")["would"]

    # Refused by the precondition, as `amsm start` would be (the pair is mirrored).
    rc, rs = await dry(temporal, lab, "restore", "--main", "X")
    assert rc == 1
    assert rs["refused"].startswith("restore with X main refused: the pair must be split")
    assert {s["refused"]["rule"] for s in rs["steps"]} == {"precondition"}
    rc, back = await dry(temporal, lab, "switch", "--to", "X")
    assert rc == 1 and "X is already main" in back["refused"]
    rc, out = await cli(temporal, lab, "start", "switch", "--to", "X", "--dry-run")
    assert rc == 1 and "The run would be refused: switch to X refused" in out
    return sw


async def _the_switch_does_what_it_said(temporal: Client, lab: Lab, sw: dict) -> None:
    """The real switch does what the dry run `sw` said, on the hosts it named."""
    journal = LabState(lab.dir).journal
    clients = would(sw, "switch-clients")
    run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
    done = await drive(temporal, lab, run, "Y")
    assert done["state"] == "completed", done
    real = step(done, "switch-clients")
    assert sorted(c["host"] for c in real["clients"]) == clients["hosts"]
    assert "dsm-x" in step(done, "dsm-x-backup")["message"]
    told = {h for s in sw["steps"] for h in s["hosts"]}
    assert journaled(lab) == told - DSM_HOSTS
    for s in sw["steps"]:
        if not s["hosts"]:
            continue
        changed = {h for _, h, _, _ in journal()} & set(s["hosts"])
        assert changed or set(s["hosts"]) <= DSM_HOSTS, s


async def _the_split_does_what_it_said(temporal: Client, lab: Lab) -> None:
    """The split does what its dry run said, on the hosts it named."""
    journal = LabState(lab.dir).journal
    rc, sp2 = await dry(temporal, lab, "split", "--main", "Y")
    assert rc == 0, sp2
    seen = len(journal())
    run = (await cli_json(temporal, lab, "start", "split", "--main", "Y"))["run_id"]
    split = await drive(temporal, lab, run, "Y", stop_allsync_on="Y")
    assert split["state"] == "completed", split
    told = {h for s in sp2["steps"] for h in s["hosts"]}
    assert journaled(lab, seen) == told - DSM_HOSTS == {"sb-x1", "sb-x2"}
    assert would(sp2, "dsm-x-main")["would"] == "would set DSM dsm-x to main"
    assert step(split, "dsm-x-main")["message"] == "DSM dsm-x set to main"


async def _the_restore_does_what_it_said(temporal: Client, lab: Lab) -> None:
    journal = LabState(lab.dir).journal
    # While split, X records on its own: the restore with Y main would purge it.
    for name in ("night-1", "night-2"):
        ingest(lab.dir, "X", name, "News")
    seen = len(journal())
    rc, rs = await dry(temporal, lab, "restore", "--main", "Y")
    assert rc == 0 and rs["refused"] is None, rs
    orphans = ["News\\night-1.vmf", "News\\night-2.vmf"]
    assert would(rs, "find-orphans")["items"] == orphans
    assert would(rs, "approve-purge")["would"].startswith(
        "would wait for your approval: 2 clip(s) would be deleted on X only: News\\night-1"
    )
    assert "asset counts now: dsm-y" in would(rs, "approve-overwrite")["would"]
    assert "asset counts agree within 0" in would(rs, "start-replication")["would"]
    assert len(journal()) == seen  # the dry run changed nothing, not even listed clips
    await keep(temporal, lab, rs, "dry-run-restore-with-orphans-main-y.json")

    run = (await cli_json(temporal, lab, "start", "restore", "--main", "Y"))["run_id"]
    restored = await drive(temporal, lab, run, "Y", timeout=180)
    assert restored["state"] == "completed", restored
    assert step(restored, "find-orphans")["items"] == orphans
    assert step(restored, "purge-orphans")["items"] == orphans
    told = {h for s in rs["steps"] for h in s["hosts"]}
    assert journaled(lab, seen) == told - DSM_HOSTS


async def test_a_dry_run_names_what_would_refuse_and_leaves_a_running_switch_alone(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = await lab_factory(editors=2, ingest=0)
    lab.edit_inventory(operators=["ann", "tester"], viewers=["vic"])  # tester: drive()
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    async with running_worker(temporal, lab):
        # Bad input is a usage error, as for `amsm start` (before anything runs).
        rc, out = await cli(
            temporal, lab, "start", "switch", "--to", "Y", "--unplanned", "--dry-run"
        )
        assert rc == 2 and "an unplanned switch needs a reason" in out
        # A viewer may look (their own run would be refused: they are not an operator).
        monkeypatch.setenv("AMSM_OPERATOR", "vic")
        rc, seen = await dry(temporal, lab, "switch", "--to", "Y")
        assert (
            rc == 1
            and seen["refused"]
            == f"switch refused: vic is not an operator of pair {lab.inventory.pair}"
        )
        monkeypatch.setenv("AMSM_OPERATOR", "mallory")
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--dry-run")
        assert rc == 1 and "mallory is neither an operator nor a viewer" in out
        monkeypatch.setenv("AMSM_OPERATOR", "ann")

        # Y's bridge is down: no client reaches Y's portal; the client driver would refuse.
        set_fault(lab.dir, "bridge-y", "unreachable")
        rc, sw = await dry(temporal, lab, "switch", "--to", "Y")
        assert rc == 1 and sw["refused"] is None, sw
        refused = would(sw, "switch-clients")["refused"]
        assert refused["rule"] == "client-switch-needs-bridge"
        assert "ED-01 cannot reach Y's bridge K2 server bridge-y" in refused["why"]
        assert "refused for 2: ED-01, ED-02" in would(sw, "switch-clients")["would"]
        assert [s["id"] for s in sw["steps"] if s["refused"]] == ["switch-clients"]
        rc, text = await cli(temporal, lab, "start", "switch", "--to", "Y", "--dry-run")
        assert rc == 1 and "REFUSED by client-switch-needs-bridge: ED-01 cannot" in text
        assert "1 step(s) would be refused." in text
        set_fault(lab.dir, "bridge-y", "clear")
        await wait_for(port_open(lab.inventory.sides["Y"].bridge.port), "bridge-y listens again")

        # A Browse host whose `.backup` twin is gone: the swap would fail on it.
        with LabState(lab.dir).transaction() as txn:
            twin = txn.require_host("mdi-k2")["files"].pop(K2_TWIN)
        rc, sw = await dry(temporal, lab, "switch", "--to", "Y")
        assert rc == 1, sw
        assert [s["id"] for s in sw["steps"] if s["refused"]] == ["switch-browse"]
        assert would(sw, "switch-browse")["refused"] == {
            "rule": "browse-config",
            "why": "k2-mdi: expected both K2_MDI_Service.exe.config and "
            "K2_MDI_Service.backup.exe.config in C:\\Thomson\\MediaFrame\\Configuration",
        }
        with LabState(lab.dir).transaction() as txn:
            txn.require_host("mdi-k2")["files"][K2_TWIN] = twin

        # A DSM that does not answer: a planned switch is refused, with the way out.
        set_fault(lab.dir, "dsm-x", "unreachable")
        rc, sw = await dry(temporal, lab, "switch", "--to", "Y")
        assert rc == 1 and "--unplanned" in sw["refused"]
        set_fault(lab.dir, "dsm-x", "clear")

        # X lost: the unplanned switch's dry run tries the lost side's steps, refuses none.
        set_side_fault(lab.dir, "X", "down")
        rc, un = await dry(temporal, lab, "switch", "--to", "Y", "--unplanned", "--reason", "fire")
        assert rc == 0 and un["refused"] is None, un
        for s in ("stop-replication", "dsm-x-backup", "smartbins-x-backup", "stop-allsync"):
            assert would(un, s)["refused"] is None, s
            assert "; X does not answer now: " in would(un, s)["would"], would(un, s)
        assert would(un, "dsm-y-main")["would"] == "would set DSM dsm-y to main"
        assert would(un, "switch-clients")["hosts"] == ["ED-01", "ED-02"]
        set_side_fault(lab.dir, "X", "up")
        assert LabState(lab.dir).journal() == []

        # Beside a running switch: its own id, no lock; the run goes on undisturbed.
        run, shown = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--operator", "ann")
        seen = len(LabState(lab.dir).journal())
        rc, beside = await dry(temporal, lab, "switch", "--to", "Y")
        assert rc == 1 and "the pair must be mirrored with X main" in beside["refused"]
        assert beside["workflow_id"] != f"amsm-{lab.inventory.pair}"
        assert len(LabState(lab.dir).journal()) == seen
        now = await cli_json(temporal, lab, "show", run)
        assert step(now, "stop-insync")["status"] == "awaiting-confirmation"
        assert (await drive(temporal, lab, run, "Y"))["state"] == "completed"
