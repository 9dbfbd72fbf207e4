"""Lab media (clips as folders, InSync and AllSync copying) and faults, on lab.db directly."""

import time

import pytest

from activities.drivers import powershell as ps
from lab import LabError
from lab.faults import set_fault
from lab.hands import set_allsync
from lab.media import ingest, sync_once
from lab.state import NEVER, LabState, read_dsm_faults


def files(lab: LabState, side: str) -> dict[str, str]:
    with lab.transaction() as txn:
        return txn.volume_files(side)


def test_master_clips_are_folders_listed_and_removed(lab: LabState) -> None:
    ingest(lab.dir, "Y", "late-news", "News")
    listed = lab.run_script("sb-y1", ps.script(ps.list_folders("V:\\VibrantAVIFiles", "*.vmf")))
    (text,) = ps.split_output(listed.stdout, 1)
    names = {o["FullName"] for o in ps.parse_json_list(text)}
    assert "V:\\VibrantAVIFiles\\News\\late-news.vmf" in names
    assert "V:\\VibrantAVIFiles\\News" not in names  # a SmartBin folder is not a clip
    gone = lab.run_script(
        "sb-y1", ps.script(ps.remove_tree("V:\\VibrantAVIFiles\\News\\late-news.vmf"))
    )
    assert gone.exit_status == 0
    assert not any("late-news.vmf" in p for p in files(lab, "Y"))
    assert any("late-news.gxf" in p for p in files(lab, "Y"))  # the essence is another folder
    with pytest.raises(LabError, match="already exists"):
        ingest(lab.dir, "X", "clip-001", "News")


def test_insync_copies_master_to_slave_and_leaves_slave_extras(lab: LabState) -> None:
    ingest(lab.dir, "X", "from-x")
    ingest(lab.dir, "Y", "only-y")
    assert any("InSync copied" in m for m in sync_once(lab))  # InSync runs X -> Y in a new lab
    y = files(lab, "Y")
    assert any("from-x.vmf" in p for p in y) and any("only-y.vmf" in p for p in y)
    assert not any("only-y" in p for p in files(lab, "X"))


def test_allsync_mirrors_wip_one_to_one(lab: LabState) -> None:
    with lab.transaction() as txn:
        txn.volume_write("X", "V:\\WIP\\Projects\\new.proj", "cut 1")
        txn.volume_write("Y", "V:\\WIP\\Projects\\stale.proj", "old")
    sync_once(lab)
    y = files(lab, "Y")
    assert y["V:\\WIP\\Projects\\new.proj"] == "cut 1" and "V:\\WIP\\Projects\\stale.proj" not in y
    set_allsync(lab.dir, "X", running=False)
    with lab.transaction() as txn:
        txn.volume_write("X", "V:\\WIP\\Projects\\later.proj", "cut 2")
    sync_once(lab)
    assert "V:\\WIP\\Projects\\later.proj" not in files(lab, "Y")


def test_reboot_faults(lab: LabState) -> None:
    set_fault(lab.dir, "ED-01", "slow-reboot", 7)
    before = time.time()
    assert lab.run_script("ED-01", ps.script(ps.restart_computer())).reboot
    until = lab.down_hosts()["ED-01"]
    assert before + 6.5 < until < time.time() + 7.5
    set_fault(lab.dir, "sb-x1", "no-reboot")
    lab.run_script("sb-x1", ps.script(ps.restart_computer()))
    assert lab.down_hosts()["sb-x1"] >= NEVER
    set_fault(lab.dir, "sb-x1", "clear")
    assert lab.down_hosts()["sb-x1"] <= time.time()  # boots at the next supervisor pass


def test_dsm_fault_and_bad_fault_names(lab: LabState) -> None:
    assert set_fault(lab.dir, "DSM-Y", "replication-fails") == "dsm-y: replication-fails set"
    assert read_dsm_faults(lab) == {"dsm-y": "replication-fails"}
    set_fault(lab.dir, "dsm-y", "clear")
    assert read_dsm_faults(lab) == {}
    with pytest.raises(LabError, match="slow-reboot needs SECONDS"):
        set_fault(lab.dir, "ED-01", "slow-reboot")
    with pytest.raises(LabError, match="a host fault is one of"):
        set_fault(lab.dir, "ED-01", "replication-fails")
