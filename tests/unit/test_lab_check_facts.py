"""What the lab's hosts answer to the site check's reads, as the real hosts do: the
PowerShell version, registry keys, the WinRM service's settings on the WSMan: drive, the
targets a client's initiator discovered (and a bridge that offers its target to the
clients assigned to it only)."""

from __future__ import annotations

import json

import pytest

from activities.drivers import powershell as ps
from lab import LabError
from lab.faults import set_fault
from lab.init import iqn
from lab.powershell import WSMAN_NOT_RUNNING, ScriptResult, Unsupported, parse_script
from lab.serve import _servers
from lab.state import LabState, boot

SB = r"HKLM:\SOFTWARE\GVG\SmartBins"
Y_PORTAL = "198.51.100.131"


def run(lab: LabState, host: str, *statements: str) -> ScriptResult:
    return lab.run_script(host, "\n".join([ps.PREAMBLE[0], *statements]))


def edit(lab: LabState, host: str, **fields: object) -> None:
    with lab.transaction() as txn:
        txn.require_host(host).update(fields)


def test_the_powershell_version_prints_as_bare_numbers(lab: LabState) -> None:
    assert run(lab, "ED-01", *ps.POWERSHELL_VERSION).stdout == "5\n1\n"
    assert set_fault(lab.dir, "ED-01", "powershell", 4.0) == "ED-01: PowerShell 4.0"
    assert run(lab, "ED-01", *ps.POWERSHELL_VERSION).stdout == "4\n0\n"
    # Only the two parts, each alone: nothing else reads a variable.
    for statement in (
        "$PSVersionTable.PSVersion.Major | ConvertTo-Json",
        "$PSVersionTable",
        "$PSVersionTable.PSVersion.Build",
    ):
        with pytest.raises(Unsupported):
            parse_script(f"{ps.PREAMBLE[0]}\n{statement}")
    with pytest.raises(LabError):
        set_fault(lab.dir, "ED-01", "powershell", None)
    # What came later is not there: on 3.0 Get-FileHash (4.0), on 2.0 ConvertTo-Json and
    # Get-CimInstance (3.0); the version itself still prints.
    set_fault(lab.dir, "ED-01", "powershell", 3.0)
    assert run(lab, "ED-01", ps.boot_info()).exit_status == 0
    old = run(lab, "ED-01", ps.file_hash(r"C:\Program Files\StorNext\config\fsnameservers"))
    assert "'Get-FileHash' is not recognized" in old.stderr
    set_fault(lab.dir, "ED-01", "powershell", 2.0)
    assert run(lab, "ED-01", *ps.POWERSHELL_VERSION).stdout == "2\n0\n"
    assert "'Get-CimInstance' is not recognized" in run(lab, "ED-01", ps.boot_info()).stderr
    listed = run(lab, "ED-01", ps.test_path("C:\\"), ps.get_process("AuroraEdit"))
    assert "'ConvertTo-Json' is not recognized" in listed.stderr
    assert listed.stdout == "True\n"


def test_test_path_of_registry_keys(lab: LabState) -> None:
    # about_Registry_Provider: the provider's items are keys; a parent key exists too.
    answers = run(
        lab,
        "sb-x1",
        ps.test_path(SB),
        ps.test_path(r"HKLM:\SOFTWARE\GVG"),
        ps.test_path(r"hklm:\software\gvg\smartbins"),
        ps.test_path(r"HKLM:\SOFTWARE\GVG\Nope"),
    )
    assert answers.stdout.split() == ["True", "True", "True", "False"]
    values = run(lab, "sb-x1", ps.get_registry(SB, ["Mode", "Other"]))
    assert json.loads(values.stdout) == {"Mode": "Normal", "Other": None}


def test_the_wsman_drive_shows_the_winrm_service_settings(lab: LabState) -> None:
    paths = list(ps.WSMAN_SETTINGS.values())

    def read(host: str) -> list[str]:
        out = run(lab, host, *[ps.wsman_setting(p) for p in paths])
        assert out.exit_status == 0, out.stderr
        return [json.loads(line)["Value"] for line in out.stdout.splitlines()]

    # A default service (Microsoft Learn's defaults), NTLM over HTTPS: no Basic.
    assert read("cp-01") == ["30", "1500", "false", "false"]
    # The MediaFrame server was set up for Basic over HTTP.
    assert read("browse-srv") == ["30", "1500", "true", "true"]
    assert set_fault(lab.dir, "cp-01", "shell-quota", 5) == "cp-01: MaxShellsPerUser 5"
    assert read("cp-01")[0] == "5"
    # Without the WinRM service (a host reached over SSH) there is no WSMan: drive.
    ssh = run(lab, "sb-x1", ps.wsman_setting(paths[0]))
    assert ssh.exit_status == 1 and WSMAN_NOT_RUNNING in ssh.stderr
    with pytest.raises(LabError, match="not reached over WinRM"):
        set_fault(lab.dir, "sb-x1", "shell-quota", 5)
    unknown = run(lab, "cp-01", ps.wsman_setting(r"WSMan:\localhost\Shell\Nope"))
    assert unknown.exit_status == 1 and "does not exist" in unknown.stderr


def test_a_bridge_offers_its_target_to_its_assigned_clients_only(lab: LabState) -> None:
    targets = run(lab, "ED-01", ps.iscsi_targets())
    assert json.loads(targets.stdout) == {"NodeAddress": iqn("X"), "IsConnected": True}
    # RFC 7143 SendTargets: only the targets the initiator may access. Y's bridge serves
    # IN-01 only: ED-01 registers Y's portal, and finds nothing behind it.
    edit(lab, "bridge-y", iscsi_clients=["IN-01"])
    assert run(lab, "ED-01", ps.iscsi_add_portal(Y_PORTAL, 3260)).exit_status == 0
    assert json.loads(run(lab, "ED-01", ps.iscsi_targets()).stdout)["NodeAddress"] == iqn("X")
    refused = run(lab, "ED-01", ps.iscsi_connect(iqn("Y"), Y_PORTAL))
    assert "The target name is not found" in refused.stderr
    # Nor at the next boot (the initiator discovers every registered portal again).
    run(lab, "ED-01", ps.restart_computer())
    with lab.transaction() as txn:
        boot(txn, txn.require_host("ED-01"))
        assert txn.require_host("ED-01")["iscsi"]["discovered"] == [iqn("X")]
    # Assigned, it is discovered.
    edit(lab, "bridge-y", iscsi_clients=["IN-01", "ED-01"])
    assert run(lab, "ED-01", ps.iscsi_refresh_portal(Y_PORTAL, 3260)).exit_status == 0
    listed = json.loads(run(lab, "ED-01", ps.iscsi_targets()).stdout)
    assert {t["NodeAddress"] for t in listed} == {iqn("X"), iqn("Y")}


def test_a_lab_made_before_the_winrm_settings_keeps_its_basic_hosts(lab: LabState) -> None:
    # As `lab init` wrote the documents before: no `winrm`, but the MediaFrame server's
    # allow_unencrypted.
    with lab.transaction() as txn:
        for name in txn.host_names():
            doc = txn.require_host(name)
            if doc.get("winrm") is not None:
                doc["winrm"] = {"allow_unencrypted": True} if name == "browse-srv" else None
                if doc["winrm"] is None:
                    del doc["winrm"]
    _servers(lab.dir)
    docs = lab.read()[1]
    assert docs["browse-srv"]["winrm"] == {"allow_unencrypted": True, "basic": True}
    assert docs["cp-01"]["winrm"] == {"basic": False, "allow_unencrypted": False}  # NTLM
    assert "winrm" not in docs["sb-x1"]  # reached over SSH
