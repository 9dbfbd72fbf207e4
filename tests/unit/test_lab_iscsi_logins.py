"""The lab's iSCSI initiator: persistent logins kept apart from sessions (listed by WMI,
removed by iscsicli whether or not a session is up), a portal that stops answering, a
target per portal, a redundant lab (lab/powershell/iscsi.py, lab/state.py, lab/faults.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activities.drivers import powershell as ps
from activities.drivers.facts.clients import parse_persistent_logins
from inventory.load import load_inventory
from lab import LabError
from lab.faults import UNRELATED_TARGET, set_fault, set_side_fault
from lab.init import init_lab, iqn, redundant_portals
from lab.powershell import Unsupported, parse_script
from lab.state import LabState, boot

X_PORTAL = "198.51.100.31"


def run(lab: LabState, host: str, *statements: str):  # type: ignore[no-untyped-def]
    return lab.run_script(host, ps.script(*statements))


def logins(lab: LabState, host: str) -> list[tuple[str, str]]:
    out = run(lab, host, ps.iscsi_persistent_logins())
    assert out.exit_status == 0, out.stderr
    return [
        (lg.target, lg.address) for lg in parse_persistent_logins(ps.split_output(out.stdout, 1)[0])
    ]


def back(lab: LabState) -> None:
    """Side X answers again (what `lab serve` does once `--side X up` is set)."""
    set_side_fault(lab.dir, "X", "up")
    with lab.transaction() as txn:
        for name in ("bridge-x", "sb-x1", "nas-cifs-x", "nas-ftp-x"):
            if txn.host(name) is not None:
                boot(txn, txn.require_host(name))


def test_a_login_outlives_its_session_and_iscsicli_removes_it(lab: LabState) -> None:
    assert logins(lab, "ED-01") == [(iqn("X"), X_PORTAL)]
    set_side_fault(lab.dir, "X", "down")
    # The session through X's portal ended; the login did not, and WMI still lists it.
    assert (
        ps.parse_json_list(
            ps.split_output(run(lab, "ED-01", ps.iscsi_session_details()).stdout, 1)[0]
        )
        == []
    )
    assert logins(lab, "ED-01") == [(iqn("X"), X_PORTAL)]
    # iscsicli names the login exactly; a wrong portal removes nothing and says so.
    wrong = run(
        lab,
        "ED-01",
        ps.iscsi_remove_persistent_login(
            r"ROOT\ISCSIPRT\0000_0", iqn("X"), 4294967295, "198.51.100.99", 3260
        ),
    )
    assert "not found" in wrong.stdout and logins(lab, "ED-01") == [(iqn("X"), X_PORTAL)]
    done = run(
        lab,
        "ED-01",
        ps.iscsi_remove_persistent_login(
            r"ROOT\ISCSIPRT\0000_0", iqn("X"), 4294967295, X_PORTAL, 3260
        ),
    )
    assert done.exit_status == 0 and "The operation completed successfully." in done.stdout
    assert logins(lab, "ED-01") == []
    # With X back, a boot makes no session to X: the login is gone.
    back(lab)
    with lab.transaction() as txn:
        doc = txn.require_host("ED-01")
        boot(txn, doc)
        assert doc["iscsi"]["sessions"] == []


def test_a_login_left_in_place_logs_in_again_at_the_next_boot(lab: LabState) -> None:
    set_side_fault(lab.dir, "X", "down")
    back(lab)
    with lab.transaction() as txn:
        doc = txn.require_host("ED-01")
        assert doc["iscsi"]["sessions"] == []  # not before the boot
        boot(txn, doc)
        assert [s["iqn"] for s in doc["iscsi"]["sessions"]] == [iqn("X")]


def test_only_the_subset_of_iscsicli_and_cim_is_understood(lab: LabState) -> None:
    for statement in (
        "iscsicli ListPersistentTargets",
        r"iscsicli RemovePersistentTarget 'ROOT\ISCSIPRT\0000_0' 'iqn.x'",
        "iscsicli.exe RemovePersistentTarget 'a' 'b' 1 'c' 3260",
        "Get-CimInstance -Namespace 'root\\cimv2' -ClassName Win32_OperatingSystem",
    ):
        with pytest.raises(Unsupported):
            parse_script(f"{ps.PREAMBLE[0]}\n{statement}")
    # The persistent logins live in root\wmi: asked in the default namespace, no class.
    wrong = run(
        lab,
        "ED-01",
        "Get-CimInstance -ClassName MSiSCSIInitiator_PersistentLoginClass | Select-Object TargetName | ConvertTo-Json -Compress",
    )
    assert wrong.exit_status == 1 and "Invalid class" in wrong.stderr


def test_a_dead_portal_fails_discovery_and_login_through_it(tmp_path: Path) -> None:
    init_lab(tmp_path, editors=2, ingest=0, redundant=True)
    lab = LabState(tmp_path)
    inv = load_inventory(tmp_path / "inventory.yaml")
    y_a = redundant_portals("Y", "A")
    # Each client its own TOE on each network, logged in through both.
    for i, c in enumerate(inv.clients):
        assert [(p.name, p.portal, p.target) for p in inv.client_paths(c, "X")] == [
            ("A", redundant_portals("X", "A")[i], iqn("X")),
            ("B", redundant_portals("X", "B")[i], iqn("X", "B")),
        ]
        assert sorted(logins(lab, c.host)) == sorted(
            [
                (iqn("X"), redundant_portals("X", "A")[i]),
                (iqn("X", "B"), redundant_portals("X", "B")[i]),
            ]
        )
    assert set_fault(tmp_path, y_a[1], "unreachable").startswith(f"portal {y_a[1]}")
    dead = run(lab, "ED-02", ps.iscsi_add_portal(y_a[1], 3260))
    assert "Connection Failed." in dead.stderr
    assert run(lab, "ED-02", ps.test_port(y_a[1], 3260)).stdout.startswith("False")
    assert run(lab, "ED-02", ps.test_port(y_a[0], 3260)).stdout.startswith("True")
    # A portal serves its own target only: B's target is not logged in to through A's.
    run(lab, "ED-01", ps.iscsi_add_portal(y_a[0], 3260))
    wrong = run(lab, "ED-01", ps.iscsi_connect(iqn("Y", "B"), y_a[0]))
    assert wrong.exit_status == 1
    set_fault(tmp_path, y_a[1], "clear")
    assert run(lab, "ED-02", ps.iscsi_add_portal(y_a[1], 3260)).exit_status == 0
    with pytest.raises(LabError):
        set_fault(tmp_path, y_a[1], "slow-reboot", 3)


def test_an_unrelated_disk_is_a_login_of_its_own(lab: LabState) -> None:
    set_fault(lab.dir, "ED-01", "unrelated-disk")
    assert (UNRELATED_TARGET, "203.0.113.10") in logins(lab, "ED-01")
    sessions = json.loads(
        ps.split_output(run(lab, "ED-01", ps.iscsi_session_details()).stdout, 1)[0]
    )
    assert {s["TargetNodeAddress"] for s in sessions} == {iqn("X"), UNRELATED_TARGET}
    with pytest.raises(LabError):
        set_fault(lab.dir, "sb-x1", "unrelated-disk")  # no initiator there


def test_iscsicli_is_read_through_out_string_and_takes_star_for_what_a_login_lacks(
    lab: LabState,
) -> None:
    """Review M2 and M3: a bare native command writes in the OEM code page past
    [Console]::OutputEncoding (PowerShell/PowerShell#14945), so the lab refuses it and
    takes it piped into Out-String; a login made with no initiator and no portal is
    listed as it is and removed with `*` for them (iscsicli.c RemovePersistentTarget)."""
    initiator = ps.q("ROOT\\ISCSIPRT\\0000_0")
    bare = (
        f"iscsicli RemovePersistentTarget {initiator} "
        f"{ps.q(iqn('X'))} 4294967295 {ps.q(X_PORTAL)} 3260"
    )
    with pytest.raises(Unsupported):
        parse_script(ps.script(bare))
    with lab.transaction() as txn:
        doc = txn.require_host("ED-01")
        doc["iscsi"]["persistent"].append({"iqn": UNRELATED_TARGET, "portal": "", "initiator": ""})
    out = run(lab, "ED-01", ps.iscsi_persistent_logins())
    listed = parse_persistent_logins(ps.split_output(out.stdout, 1)[0])
    odd = [lg for lg in listed if lg.target == UNRELATED_TARGET]
    assert [(lg.initiator, lg.address) for lg in odd] == [("", "")]
    done = run(
        lab,
        "ED-01",
        ps.iscsi_remove_persistent_login("", UNRELATED_TARGET, None, "", None),
    )
    assert done.exit_status == 0 and "The operation completed successfully." in done.stdout
    assert logins(lab, "ED-01") == [(iqn("X"), X_PORTAL)]
