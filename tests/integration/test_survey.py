"""`amsm survey` on the lab: every host surveyed, its answers written as fact files that
this amsm's facts read again (`amsm survey verify`), no secret of the lab in any file,
the register's verdicts reported; a client whose fsnameservers file is elsewhere is
reported as contradicting the inventory, with what to set. The survey changes nothing
(the lab's journal of device changes stays empty)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

from lab.powershell import new_session
from lab.state import LabState, write_filter_on
from tests.support.cli import cli
from tests.support.lab import Lab
from tests.support.secrets import assert_no_secrets_in_pair, lab_secrets, record_history
from tests.support.worker import running_worker
from workers.worker import build_workers

MOVED = r"C:\SNFS\config\fsnameservers"
# A disk of another iSCSI target, not the K2 SAN's (a backup volume, say).
UNRELATED = "iqn.1991-05.com.microsoft:backup-target"
# Win32-OpenSSH's default shell (PowerShell/Win32-OpenSSH wiki, "DefaultShell").
OPENSSH = r"HKLM:\SOFTWARE\OpenSSH"
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
ROOT = Path(__file__).resolve().parents[2]


def assumption(summary: dict, host: str, id: str) -> dict:
    hits = [a for a in summary["assumptions"] if a["host"] == host and a["id"] == id]
    assert len(hits) == 1, (
        host,
        id,
        [a["id"] for a in summary["assumptions"] if a["host"] == host],
    )
    return hits[0]


async def test_survey_of_the_lab(temporal: Client, lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=1)
    out = tmp_path / "survey"
    async with running_worker(temporal, lab):
        files = await _a_survey_reads_every_host_and_changes_nothing(temporal, lab, out)
        await _the_survey_is_read_again(temporal, lab, out, tmp_path, files)
        await _a_survey_names_what_contradicts_the_inventory(temporal, lab, tmp_path)


async def _a_survey_reads_every_host_and_changes_nothing(
    temporal: Client, lab: Lab, out: Path
) -> int:
    """The survey's files: every host's facts, no secret, the register's verdicts; read
    by this amsm's parsers again. The number of fact files."""
    inv = lab.inventory
    journal = LabState(lab.dir).journal
    before = journal()
    rc, text = await cli(temporal, lab, "survey", str(out))
    assert journal() == before, "the survey changed a device"
    summary = json.loads((out / "survey.json").read_text())
    # Every host once, and both DSMs; each surveyed.
    hosts = {h.host for _, h in inv.all_hosts()} | {inv.sides[s].dsm.host for s in "XY"}
    assert {h["host"] for h in summary["hosts"]} == hosts
    assert [h for h in summary["hosts"] if h["error"]] == []
    assert "hosts read" in text and "survey.md" in text
    # The drivers' facts, per host, in the facts format.
    for _, h in inv.all_hosts():
        case = json.loads((out / "facts" / "powershell_version" / f"{h.host}.json").read_text())
        assert case["command"] and case["exit_code"] == 0 and case["expected"] == [5, 1]
        assert case["host"] == h.host and case["powershell"] == "5.1" and case["time"]
    ed = inv.clients[0].host
    verify_case = json.loads((out / "facts" / "client_verify" / f"{ed}--X.json").read_text())
    assert verify_case["expected"] == f"{ed} sees X's V: volume"
    pseudo = inv.sides["X"].pseudo_host.host
    listing = json.loads((out / "facts" / "media_listing" / f"{pseudo}.json").read_text())
    assert "clips" in listing["expected"]
    dsm = json.loads((out / "facts" / "dsm_status" / f"{inv.sides['X'].dsm.host}.json").read_text())
    assert dsm["statements"] and dsm["expected"]["mode"] == "main"
    # Read by this amsm's parsers again, as at the survey.
    rc_v, verified = await cli(temporal, lab, "survey", "verify", str(out), "--json")
    report = json.loads(verified)
    assert rc_v == 0 and report["problems"] == [] and report["agree"] == report["files"] > 50
    # No secret of the lab in any file written.
    secrets = lab_secrets(lab)
    for path in out.rglob("*"):
        if path.is_file():
            body = path.read_text()
            assert not [s for s in secrets if s in body], path
    # Of the ODBC strings only Driver= and Database=, never the server or options.
    site_inv = json.loads((out / "inventory.json").read_text())
    for s in "XY":
        kept = site_inv["sides"][s]["dsm"]["odbc"]
        assert [a.split("=")[0].lower() for a in kept.split(";")] == ["driver", "database"]
        assert "server" not in kept.lower()
    # The register's verdicts, with their evidence.
    assert assumption(summary, ed, "fsnameservers-file")["verdict"] == "verified"
    assert assumption(summary, ed, "dsm-pointer")["verdict"] == "verified"
    assert assumption(summary, ed, "write-filter")["verdict"] == "verified"
    assert assumption(summary, ed, "iscsi-targets")["verdict"] == "verified"
    assert assumption(summary, ed, "dsm-pointer-view")["verdict"] == "verified"
    ssh_host = next(h.host for _, h in inv.all_hosts() if h.transport == "ssh")
    assert assumption(summary, ssh_host, "ssh-default-shell")["verdict"] == "verified"
    tls = assumption(summary, inv.sides["X"].dsm.host, "tls-versions")
    assert tls["verdict"] == "could not be read" and "TDS" in tls["evidence"]
    assert (out / "survey.md").read_text().startswith(f"# Site survey of pair {inv.pair}")
    return int(report["files"])


async def _the_survey_is_read_again(
    temporal: Client, lab: Lab, out: Path, tmp_path: Path, files: int
) -> None:
    """By the lab (a site answer the lab does not model is named), by the project's fact
    tests, and by this amsm once an answer has changed."""
    ed = lab.inventory.clients[0].host
    # The lab reads the lab's answers alike; a site answer the lab does not model
    # (an OS version where the lab refuses the statement) is named.
    rc_v, against = await cli(
        temporal, lab, "survey", "verify", str(out), "--lab", str(lab.dir), "--json"
    )
    assert rc_v == 0 and json.loads(against)["lab"] == [], against
    site = tmp_path / "site"
    site_os = site / "facts" / "os_version" / f"{ed}.json"
    site_os.parent.mkdir(parents=True)
    (site / "inventory.json").write_text((out / "inventory.json").read_text())
    case = json.loads((out / "facts" / "os_version" / f"{ed}.json").read_text())
    case.pop("expected_error")
    case.update(
        stdout='{"Caption":"Microsoft Windows 7 Professional","Version":"6.1.7601"}\r\n#amsm 1/1\r\n',
        stderr="", exit_code=0,
        expected={"caption": "Microsoft Windows 7 Professional", "version": "6.1.7601"},
    )  # fmt: skip
    site_os.write_text(json.dumps(case))
    rc_v, against = await cli(temporal, lab, "survey", "verify", str(site), "--lab", str(lab.dir))
    assert rc_v == 0 and f"facts/os_version/{ed}.json: the lab ({ed}) raises" in against
    assert "0 fact files answered otherwise" not in against and "1 of 1 fact files read" in against
    # The project's fact tests take the survey folder as extra data.
    env = {**os.environ, "AMSM_SURVEY": str(out)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit/test_facts.py", "-k", "survey_fact",
         "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0 and f"{files} passed" in run.stdout, run.stdout[-2000:]
    # An answer that this amsm reads otherwise than at the survey is named.
    changed = out / "facts" / "powershell_version" / f"{ed}.json"
    case = json.loads(changed.read_text())
    case["stdout"] = case["stdout"].replace("5", "4", 1)
    changed.write_text(json.dumps(case))
    rc_v, verified = await cli(temporal, lab, "survey", "verify", str(out))
    assert rc_v == 1 and f"facts/powershell_version/{ed}.json: reads [4, 1]" in verified


async def _a_survey_names_what_contradicts_the_inventory(
    temporal: Client, lab: Lab, tmp_path: Path
) -> None:
    inv = lab.inventory
    ed = inv.clients[0].host
    ssh_host = next(h.host for _, h in inv.all_hosts() if h.transport == "ssh")
    # A client that keeps its fsnameservers file elsewhere (StorNext's older folder)
    # and holds an unrelated iSCSI disk; another whose file shows a password the
    # worker holds (a comment line): that answer is withheld, never written.
    ingest = inv.clients[1].host
    password = (lab.dir / "secrets" / "winrm-password").read_text().strip()
    with LabState(lab.dir).transaction() as txn:
        doc = txn.require_host(ed)
        path = inv.devices.snfs_nameservers_file
        doc["files"][MOVED] = doc["files"].pop(path)
        new_session(doc, UNRELATED, "192.0.2.77", persistent=True)
        # UWF on over C: (lab/state.py write_filter_on, as on a K2 client shipped so).
        write_filter_on(doc, "UWF")
        txn.require_host(ingest)["files"][path] += f"# {password}\n"
        # A 32-bit Aurora's pointer, in the 32-bit registry view (Microsoft Learn,
        # "Registry Redirector"); an sshd whose default shell is PowerShell.
        registry = txn.require_host(ingest)["registry"]
        key = inv.devices.aurora_registry
        registry[key.replace("SOFTWARE", "SOFTWARE\\WOW6432Node", 1)] = registry.pop(key)
        txn.require_host(ssh_host)["registry"][OPENSSH] = {"DefaultShell": POWERSHELL}
    again = tmp_path / "again"
    rc, text = await cli(temporal, lab, "survey", str(again), "--json")
    summary = json.loads(text)
    assert rc == 1
    moved = assumption(summary, ed, "fsnameservers-file")
    assert moved["verdict"] == "contradicted"
    assert moved["setting"] == "devices.snfs_nameservers_file" and moved["value"] == MOVED
    assert "devices.snfs_nameservers_file" in (again / "survey.md").read_text()
    disk = assumption(summary, ed, "iscsi-targets")
    assert disk["verdict"] == "contradicted" and disk["value"] == [UNRELATED]
    assert disk["setting"] == "sides.X.iscsi_targets"
    uwf = assumption(summary, ed, "write-filter")
    assert uwf["verdict"] == "contradicted" and "UWF on" in uwf["evidence"]
    assert uwf["setting"] == "devices.uwf_off_for_switch" and uwf["value"] is True
    view = assumption(summary, ingest, "dsm-pointer-view")
    assert view["verdict"] == "contradicted" and "32-bit" in view["evidence"]
    assert view["setting"] == "devices.aurora_registry"
    assert view["value"] == r"HKLM:\SOFTWARE\WOW6432Node\GVG\Aurora"
    shell = assumption(summary, ssh_host, "ssh-default-shell")
    assert shell["verdict"] == "contradicted" and POWERSHELL in shell["evidence"]
    withheld = {n["file"] for n in summary["not_written"]}
    assert f"facts/fsnameservers/{ingest}.json" in withheld
    assert not (again / "facts" / "fsnameservers" / f"{ingest}.json").exists()
    for path in again.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(), path
    assert "withheld" in (again / "survey.md").read_text()
    # A survey folder is never overwritten.
    rc, text = await cli(temporal, lab, "survey", str(again))
    assert rc == 2 and "not an empty folder" in text
    # Nor is any secret in the runs' histories (the answers are activity results).
    # Nor is any secret in the runs' histories (the answers are activity results).
    await assert_no_secrets_in_pair(temporal, lab)


async def test_survey_for_viewers_and_without_a_site_worker(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(operators=["ann"], viewers=["vic"])
    lab.retime(operation_timeout=2)
    monkeypatch.setenv("AMSM_OPERATOR", "mallory")
    rc, out = await cli(temporal, lab, "survey", str(tmp_path / "refused"))
    assert rc == 1 and "mallory is neither an operator nor a viewer" in out
    assert not (tmp_path / "refused").exists()
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error exits 2
        await cli(temporal, lab, "survey")
    assert usage.value.code == 2
    rc, out = await cli(temporal, lab, "survey", "check", str(tmp_path / "x"))
    assert rc == 2 and "DIR or `verify DIR`" in out
    rc, out = await cli(temporal, lab, "survey", "verify", str(tmp_path))
    assert rc == 2 and "not a survey folder" in out

    # A viewer may survey. With no worker for Y's site, Y's hosts are said not surveyed,
    # never left out, and the survey does not pass.
    monkeypatch.setenv("AMSM_OPERATOR", "vic")
    main, x = build_workers(temporal, lab.inventory, lab.inventory_path, sites=("X",))
    async with main, x:
        rc, text = await cli(temporal, lab, "survey", str(tmp_path / "s"), "--json")
    assert rc == 1, text
    summary = json.loads(text)
    [run] = [
        w
        async for w in temporal.list_workflows(
            f"WorkflowId STARTS_WITH '{lab.inventory.workflow_id}-survey-'"
        )
    ]
    record_history(
        await temporal.get_workflow_handle(run.id).fetch_history(), "survey-without-site-y.json"
    )
    hosts = {h["host"]: h for h in summary["hosts"]}
    not_picked = "no worker of its queue picked the survey up in time"
    for host in ("dsm-y", "sb-y1", "nas-cifs-y", "nas-ftp-y", "bridge-y"):
        assert hosts[host]["error"] == not_picked, hosts[host]
    assert all(h["error"] is None for name, h in hosts.items() if name.endswith("-x"))
    await assert_no_secrets_in_pair(temporal, lab)
    md = (tmp_path / "s" / "survey.md").read_text()
    assert "| dsm-y | dsm | Y | " in md and f"| {not_picked} |" in md


async def test_survey_of_a_redundant_lab(temporal: Client, lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A redundant K2 SAN (media networks A and B, a TOE per client on each): every
    client's connections go through its own portals and to the side's targets, and no
    login of the other side is kept; a client moved to a TOE that is not its own is
    named, with the setting that says which is."""
    lab = await lab_factory(editors=2, ingest=0, redundant=True)
    inv = lab.inventory
    out = tmp_path / "survey"
    async with running_worker(temporal, lab):
        rc, _ = await cli(temporal, lab, "survey", str(out), "--json")
        summary = json.loads((out / "survey.json").read_text())
        for c in inv.clients:
            for id in ("iscsi-portal", "iscsi-targets", "iscsi-one-side", "persistent-logins"):
                got = assumption(summary, c.host, id)
                assert got["verdict"] == "verified", (c.host, id, got["evidence"])
            portal = assumption(summary, c.host, "iscsi-portal")
            for p in inv.client_paths(c, "X"):
                assert p.portal in portal["evidence"]
        # ED-01's path A moved to the TOE the inventory gives ED-02: named, with the setting.
        first, second = inv.clients[0], inv.clients[1]
        theirs = inv.client_paths(second, "X")[0].portal
        with LabState(lab.dir).transaction() as txn:
            doc = txn.require_host(first.host)
            mine = inv.client_paths(first, "X")[0]
            for s in doc["iscsi"]["sessions"]:
                if s.get("portal") == mine.portal:
                    s["portal"] = theirs
        again = tmp_path / "again"
        rc, _ = await cli(temporal, lab, "survey", str(again), "--json")
        moved = assumption(
            json.loads((again / "survey.json").read_text()), first.host, "iscsi-portal"
        )
        assert rc == 1 and moved["verdict"] == "contradicted" and theirs in moved["evidence"]
        assert moved["setting"] == f"clients[{first.host}].iscsi.X.a"
