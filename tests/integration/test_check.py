"""`amsm check` on the lab: a clean pair is ready; faults the check must find and name;
and the check changes nothing (the lab's journal of device changes stays empty)."""

from __future__ import annotations

import datetime as dt
import json

import asyncssh
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.client import Client

from activities.drivers.facts.sync_tools import insync_template
from lab.faults import set_fault
from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.worker import running_worker

K2_CONFIG = r"C:\Thomson\MediaFrame\Configuration\K2_MDI_Service.exe.config"
K2_TWIN = r"C:\Thomson\MediaFrame\Configuration\K2_MDI_Service.backup.exe.config"


def by(findings: list[dict], host: str, check: str) -> dict:
    hits = [f for f in findings if f["host"] == host and f["check"] == check]
    assert len(hits) == 1, (host, check, [f for f in findings if f["host"] == host])
    return hits[0]


def break_devices(lab: Lab) -> None:
    """Faults of the real devices the lab does not have as `amsm lab fault`, set in the
    hosts' documents."""
    with LabState(lab.dir).transaction() as txn:
        # A Browse host whose `.backup` twin is gone (deleted by hand, or never copied
        # when the host was installed): Test-Path answers False for a missing file
        # (Microsoft Learn, Test-Path), and a Browse switch would have nothing to swap.
        mdi = txn.require_host("mdi-k2")
        del mdi["files"][K2_TWIN]
        # A SmartBins server whose service was uninstalled: Get-Service -Name of a name
        # the host has not is a non-terminating error (Microsoft Learn, Get-Service).
        sb = txn.require_host("sb-x2")
        del sb["services"][lab.inventory.devices.smartbins_service]
        # One whose service was stopped for good (StartType Disabled): the steps that
        # start it would fail, as Start-Service does on Windows (Microsoft Learn).
        svc = lab.inventory.devices.smartbins_service
        sb1 = txn.require_host("sb-x1")
        sb1["services"][svc] = "Stopped"
        sb1.setdefault("service_info", {}).setdefault(svc, {})["StartType"] = "Disabled"
        # A client on Windows 7 (6.1): no iSCSI module (its first docset: Server 2012).
        ed = txn.require_host("ED-02")
        ed["windows"] = "6.1"


async def test_check_finds_and_names_what_would_stop_a_switch(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=1)
    # Every host once (the lab's Browse components are on hosts of their own), and the DSMs.
    hosts = len({h.host for _, h in lab.inventory.all_hosts()}) + 2
    journal = LabState(lab.dir).journal
    async with running_worker(temporal, lab):
        before = journal()
        rc, out = await cli(temporal, lab, "check")
        assert rc == 0, out
        assert f"pair {lab.inventory.pair}: ready: 0 problems" in out
        assert "hosts read" in out

        clean = await cli_json(temporal, lab, "check", "--json")
        assert clean["ready"] is True and clean["problems"] == []
        assert clean["hosts"] == hosts
        # The lab's inventory names Browse services by display name, as the guides do.
        shown = by(clean["warnings"], "mdi-k2", "browse-service")
        assert "GV K2 MDI" in shown["expected"] and "display name" in shown["found"]
        assert shown["steps"] == []

        break_devices(lab)
        set_fault(lab.dir, "ED-01", "unreachable")
        set_fault(lab.dir, "dsm-y", "unreachable")
        set_fault(lab.dir, "bridge-y", "unreachable")
        set_fault(lab.dir, "cp-01", "clock-step", 90)

        rc, out = await cli(temporal, lab, "check", "--json")
        assert rc == 1, out
        found = json.loads(out.splitlines()[0])
        assert found["ready"] is False and found["hosts"] == hosts
        problems, warnings = found["problems"], found["warnings"]
        for f in problems + warnings:
            assert set(f) == {"host", "check", "expected", "found", "fix", "steps"}

        twin = by(problems, "mdi-k2", "browse-config")
        assert twin["expected"] == K2_TWIN and twin["found"] == "missing"
        assert {"kind": "switch", "step": "switch-browse"} in twin["steps"]
        assert {"kind": "restore", "step": "browse-to-x"} in twin["steps"]
        assert not [f for f in problems if f["expected"] == K2_CONFIG]

        ed1 = by(problems, "ED-01", "client-answers")
        assert ed1["found"].startswith("Unreachable: ") and "ED-01" in ed1["found"]
        assert {"kind": "switch", "step": "switch-clients"} in ed1["steps"]
        assert {"kind": "split-switch", "step": "switch-pilots"} in ed1["steps"]

        dsm = by(problems, "dsm-y", "dsm-answers")
        assert dsm["found"].startswith("Unreachable: ")
        steps = {(s["kind"], s["step"]) for s in dsm["steps"]}
        assert ("switch", "dsm-y-main") in steps and ("switch", "dsm-y-backup") in steps
        assert ("switch", "dsm-x-backup") not in steps  # X's DSM answers

        sb = by(problems, "sb-x2", "smartbins-service")
        assert "SmartBins" in sb["expected"] and "no such service" in sb["found"]
        disabled = by(problems, "sb-x1", "smartbins-service")
        assert disabled["found"] == "StartType Disabled: Start-Service cannot start it"
        assert (
            "Set-Service -Name" in disabled["fix"] and "-StartupType Automatic" in disabled["fix"]
        )
        assert ("switch", "smartbins-x-backup") in {
            (s["kind"], s["step"]) for s in disabled["steps"]
        }
        assert {(s["kind"], s["step"]) for s in sb["steps"]} >= {
            ("switch", "smartbins-x-backup"),
            ("switch", "smartbins-x-main"),
        }

        old = by(problems, "ED-02", "client-iscsi")
        assert "Register-IscsiSession" in old["found"]

        # Y's bridge is down: every client that answers cannot reach Y's portal.
        for c in ("ED-02", "IN-01"):
            portal = by(problems, c, "client-portal")
            assert "Y's iSCSI portal" in portal["expected"]
        by(warnings, "bridge-y", "host-answers")
        clock = by(warnings, "cp-01", "clock")
        assert "ahead of the worker's" in clock["found"]

        # Nothing about the hosts that are fine.
        assert not [f for f in problems if f["host"] in ("dsm-x", "mdi-news")]
        assert [f["check"] for f in problems if f["host"] == "sb-x1"] == ["smartbins-service"]

        rc, out = await cli(temporal, lab, "check")
        assert rc == 1
        assert f"pair {lab.inventory.pair}: not ready: " in out
        assert "would stop switch: stop-browse, switch-browse, start-browse" in out
        assert K2_TWIN in out and "Unreachable" in out

        # The check changed nothing on any host.
        assert journal() == before == []


async def test_check_beside_a_run_for_viewers_and_without_a_site_worker(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(operators=["ann"], viewers=["vic"])
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--operator", "ann")
        # A check never takes the pair's one-workflow id: it runs beside the switch.
        monkeypatch.setenv("AMSM_OPERATOR", "vic")  # a viewer may check
        rc, out = await cli(temporal, lab, "check", "--json")
        assert rc == 0, out
        assert json.loads(out.splitlines()[0])["ready"] is True
        pair = lab.inventory.pair
        checks = [w.id async for w in temporal.list_workflows("WorkflowType = 'pair-check'")]
        mine = [i for i in checks if pair in i]
        assert mine and all(i.startswith(f"{lab.inventory.workflow_id}-check-") for i in mine)
        shown = await cli_json(temporal, lab, "show", run)
        assert shown["state"] == "awaiting-operator"

        monkeypatch.setenv("AMSM_OPERATOR", "mallory")
        rc, out = await cli(temporal, lab, "check")
        assert rc == 1 and "mallory is neither an operator nor a viewer" in out
        monkeypatch.setenv("AMSM_OPERATOR", "ann")
        with pytest.raises(SystemExit) as usage:  # argparse: a usage error exits 2
            await cli(temporal, lab, "check", "--bogus")
        assert usage.value.code == 2

    # Fail closed: with no worker for Y's site, Y's hosts are problems, never "ok".
    from workers.worker import build_workers

    lab.retime(operation_timeout=2)
    main, x = build_workers(temporal, lab.inventory, lab.inventory_path, sites=("X",))
    async with main, x:
        rc, out = await cli(temporal, lab, "check", "--json")
    assert rc == 1, out
    found = json.loads(out.splitlines()[0])
    not_picked = "not read: no worker of its queue picked the check up in time"
    for host in ("dsm-y", "sb-y1", "nas-cifs-y"):
        assert by(found["problems"], host, ANSWERS_OF[host])["found"] == not_picked
    for host in ("nas-ftp-y", "bridge-y"):
        assert by(found["warnings"], host, "host-answers")["found"] == not_picked
    assert not [p for p in found["problems"] if p["host"].endswith("-x") or "-x" in p["host"]]


ANSWERS_OF = {"dsm-y": "dsm-answers", "sb-y1": "smartbins-answers", "nas-cifs-y": "nas-answers"}


def steps(finding: dict) -> set[tuple[str, str]]:
    return {(s["kind"], s["step"]) for s in finding["steps"]}


def break_settings(lab: Lab) -> None:
    """Faults of the real hosts' settings that `amsm lab fault` has not, set in the hosts'
    documents (each as the real host would have it)."""
    dev = lab.inventory.devices
    y = lab.inventory.sides["Y"]
    with LabState(lab.dir).transaction() as txn:
        # A SmartBins server whose mode value was deleted: Get-ItemProperty | Select-Object
        # writes null for a property the key lacks (Microsoft Learn, Select-Object).
        sb = txn.require_host("sb-x1")
        del sb["registry"][dev.smartbins_registry][dev.smartbins_mode_value]
        # A Control Point without InSync's key: Test-Path of a missing key is False
        # (about_Registry_Provider).
        cp = txn.require_host("cp-01")
        del cp["registry"][dev.insync_registry]
        # ... and without the template for Y as master (Test-Path of a missing file).
        del cp["files"][insync_template(dev, "Y")]
        # The MediaFrame server's WinRM service set back to refuse unencrypted messages
        # (AllowUnencrypted=false, its default): Basic over HTTP gets 401.
        mf = txn.require_host("browse-srv")
        mf["winrm"]["allow_unencrypted"] = False
        # A client that registered Y's portal, but Y's bridge serves only the other
        # clients (K2 System Configuration assigns clients to bridges): discovery through
        # Y's portal found no target for it.
        bridge = txn.require_host("bridge-y")
        bridge["iscsi_clients"] = ["ED-01", "ED-02"]
        ingest = txn.require_host("IN-01")
        ingest["iscsi"]["portals"].append(y.portals[0])
        # A WinRM service whose operations per user were lowered (the lab reports the
        # setting; it does not count operations).
        txn.require_host("sb-y2")["winrm"]["max_concurrent_operations_per_user"] = 10
        # A client whose Aurora software lost its DSM pointer (the value deleted).
        ed = txn.require_host("ED-02")
        ed["registry"][dev.aurora_registry] = {}


async def test_check_finds_registry_quota_basic_powershell_and_targets(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    lab = await lab_factory(editors=2, ingest=1)
    journal = LabState(lab.dir).journal
    async with running_worker(temporal, lab):
        clean = await cli_json(temporal, lab, "check", "--json")
        assert clean["ready"] is True and clean["problems"] == []
        # The new checks add no warning to a clean lab (only the display names).
        assert {w["check"] for w in clean["warnings"]} == {"browse-service"}, clean["warnings"]

        break_settings(lab)
        set_fault(lab.dir, "sb-y1", "shell-quota", 5)
        set_fault(lab.dir, "nas-cifs-x", "powershell", 4.0)
        set_fault(lab.dir, "bridge-x", "powershell", 3.0)
        set_fault(lab.dir, "sb-x2", "powershell", 2.0)
        set_fault(lab.dir, "dsm-y", "job-missing")

        rc, out = await cli(temporal, lab, "check", "--json")
        assert rc == 1, out
        found = json.loads(out.splitlines()[0])
        problems, warnings = found["problems"], found["warnings"]

        mode = by(problems, "sb-x1", "smartbins-registry")
        assert "'Mode'" in mode["expected"] and mode["found"] == "no such value"
        assert ("switch", "smartbins-x-backup") in steps(mode)
        assert not [s for s in steps(mode) if "-y-" in s[1]]

        insync = by(problems, "cp-01", "insync-registry")
        assert lab.inventory.devices.insync_registry in insync["expected"]
        assert insync["found"] == "no such key"
        assert ("switch", "insync-y-main") in steps(insync)
        template = by(problems, "cp-01", "insync-config")
        assert template["expected"].endswith("InsyncYtoX.cfg") and template["found"] == "missing"
        assert ("switch", "insync-y-main") in steps(template)

        quota = by(problems, "sb-y1", "winrm-quota")
        assert "MaxShellsPerUser at least 16" in quota["expected"]
        assert quota["found"] == "MaxShellsPerUser 5"
        assert ("switch", "smartbins-y-main") in steps(quota)

        ops = by(problems, "sb-y2", "winrm-quota")
        assert ops["found"] == "MaxConcurrentOperationsPerUser 10"
        assert (
            "Set-Item WSMan:\\localhost\\Service\\MaxConcurrentOperationsPerUser 1500" in ops["fix"]
        )

        basic = by(problems, "browse-srv", "winrm-basic")
        assert "AllowUnencrypted" in basic["expected"]
        assert basic["found"].startswith("AuthenticationFailed: browse-srv")
        assert ("switch", "stop-browse") in steps(basic)
        assert not [f for f in problems if f["host"] == "browse-srv" and f is not basic]

        old = by(problems, "nas-cifs-x", "powershell")
        assert old["found"] == "PowerShell 4.0" and "5.1" in old["expected"]
        assert ("switch", "stop-allsync") in steps(old)
        # PowerShell 2.0 has no ConvertTo-Json: it still says which PowerShell it runs,
        # and the reads that need more fail by name.
        ancient = by(problems, "sb-x2", "powershell")
        assert ancient["found"] == "PowerShell 2.0"
        assert "not recognized" in by(problems, "sb-x2", "smartbins-service")["found"]
        assert not [f for f in problems if f["host"] == "sb-x2" and f["check"].endswith("-answers")]
        # A host no step acts on: a warning.
        assert by(warnings, "bridge-x", "powershell")["found"] == "PowerShell 3.0"

        target = by(problems, "IN-01", "client-target")
        assert lab.inventory.sides["Y"].iscsi_target in target["expected"]
        assert "does not offer it" in target["found"]
        assert ("switch", "switch-clients") in steps(target)
        # The others were assigned to Y's bridge; none of them registered Y's portal.
        assert not [f for f in problems if f["check"] == "client-target" and f["host"] != "IN-01"]

        pointer = by(problems, "ED-02", "client-registry")
        assert f"'{lab.inventory.devices.aurora_dsm_value}'" in pointer["expected"]
        assert pointer["found"] == "no such value"
        assert ("switch", "switch-clients") in steps(pointer)

        job = by(problems, "dsm-y", "dsm-job")
        assert "'AuroraReplication'" in job["expected"] and "master_job" in job["expected"]
        assert ("switch", "dsm-y-main") in steps(job)
        assert ("switch", "dsm-x-backup") not in steps(job)
        # Named once, as the job: not also as a DSM that does not answer.
        assert [f["check"] for f in problems if f["host"] == "dsm-y"] == ["dsm-job"]

        # Nothing about the hosts that are fine.
        fine = ("ED-01", "dsm-x")
        assert not [f for f in problems if f["host"] in fine]
        assert journal() == []


async def test_check_names_a_host_key_or_certificate_that_does_not_verify(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    lab = await lab_factory(editors=1, ingest=0)
    # sb-x1 answers with a key known_hosts does not list for it (a reinstalled host, or
    # another machine at its address): asyncssh refuses it (HostKeyNotVerifiable).
    known = lab.dir / "known_hosts"
    sb = lab.inventory.host("sb-x1")
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    lines = known.read_text().splitlines()
    mark = f"[{sb.address}]:{sb.port} "
    lines = [f"{mark}{' '.join(other.split()[:2])}" if ln.startswith(mark) else ln for ln in lines]
    known.write_text("\n".join(lines) + "\n")
    # cp-01's certificate checked against a CA that did not issue it.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some other CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    (lab.dir / "other-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cp = lab.inventory.control_point.model_dump(exclude_none=True)
    cp["winrm"]["ca_file"] = "other-ca.pem"
    # sb-y2's CA file is not there at all: nothing can verify its certificate.
    sides = {s: v.model_dump(exclude_none=True) for s, v in lab.inventory.sides.items()}
    sb_y2 = next(h for h in sides["Y"]["smartbins"] if h["host"] == "sb-y2")
    sb_y2["winrm"]["ca_file"] = "no-such-ca.pem"
    lab.edit_inventory(control_point=cp, sides=sides)

    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "check", "--json")
    assert rc == 1, out
    assert LabState(lab.dir).journal() == []
    found = json.loads(out.splitlines()[0])
    problems = found["problems"]
    hk = by(problems, "sb-x1", "host-key")
    assert "known_hosts" in hk["expected"] and hk["found"].startswith("AuthenticationFailed: sb-x1")
    assert {"kind": "switch", "step": "smartbins-x-main"} in hk["steps"]
    cert = by(problems, "cp-01", "certificate")
    assert "other-ca.pem" in cert["expected"] and "not trusted" in cert["found"]
    assert {"kind": "switch", "step": "insync-y-main"} in cert["steps"]
    gone = by(problems, "sb-y2", "certificate")
    assert "cannot read the CA file" in gone["found"] and "no-such-ca.pem" in gone["found"]
    # None is also reported as a host that does not answer.
    assert not [p for p in problems if p["check"].endswith("-answers")]
