"""A client switch on the lab's interpreter (no transport): write filters that discard
the switch at the restart, the Aurora DSM pointer as a site writes it, and what a
client shows in the seconds after it answers. Over SSH and through the activities:
tests/integration/test_client_boot.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed, InterlockRefused
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.interlocks import Overrides
from activities.drivers.operations import clients as clients_ops
from inventory.load import load_inventory
from inventory.models import Inventory
from lab.faults import set_fault
from lab.init import iqn
from lab.state import LabState
from tests.unit.labdriver import LabDriver

ED = "ED-01"


def inventory(lab: LabState, **sides: dict[str, object]) -> Inventory:
    """The lab's inventory, with settings merged into `sides.S`."""
    path = Path(lab.dir) / "inventory.yaml"
    data = yaml.safe_load(path.read_text())
    for side, settings in sides.items():
        data["sides"][side].update(settings)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_inventory(path)


def doc(lab: LabState, host: str = ED) -> dict:  # type: ignore[type-arg]
    with lab.transaction() as txn:
        return dict(txn.require_host(host))


def reboot(lab: LabState, host: str = ED) -> None:
    """Restart the host and boot it at once (what the serve loop does when it is due)."""
    lab.run_script(host, ps.script(ps.restart_computer()))
    with lab.transaction() as txn:
        txn.require_host(host)["down_until"] = txn.now()
    assert lab.boot_due([host]) == [host]


def changes(lab: LabState, since: int) -> list[str]:
    return [c for _, h, c, _ in lab.journal()[since:] if h == ED]


# -- the lab's write filters -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["uwf", "fbwf", "ewf"])
async def test_a_write_filter_discards_what_a_session_wrote_on_c(lab: LabState, kind: str) -> None:
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    dev = inv.devices
    set_fault(lab.dir, ED, kind)
    drv = LabDriver(lab, ED)
    await drv.run(
        ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, "dsm-y"),
        ps.set_content(dev.snfs_nameservers_file, ["10.9.9.9"]),
    )
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-y"
    reboot(lab)
    after = doc(lab)
    assert after["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-x"
    assert "10.9.9.9" not in after["files"][dev.snfs_nameservers_file]
    # Cleared (the filter removed), what a session writes stays.
    set_fault(lab.dir, ED, "clear")
    await drv.run(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, "dsm-y"))
    reboot(lab)
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-y"


async def test_uwf_answers_its_wmi_classes_and_a_host_without_it_has_no_namespace(
    lab: LabState,
) -> None:
    drv = LabDriver(lab, ED)
    with pytest.raises(CommandFailed) as e:
        await drv.run(ps.uwf_filter())
    assert "Invalid namespace" in str(e.value)
    set_fault(lab.dir, ED, "uwf")
    f, v = await drv.run(ps.uwf_filter(), ps.uwf_volumes())
    assert ps.parse_json_object(f) == {"CurrentEnabled": True, "NextEnabled": True}
    vols = ps.parse_json_list(v)
    assert {(o["CurrentSession"], o["DriveLetter"], o["Protected"]) for o in vols} == {
        (True, "C:", True),
        (False, "C:", True),
    }


# -- the driver: refused before anything changes (defect 9) -------------------------------------
@pytest.mark.parametrize("kind", ["uwf", "fbwf", "ewf"])
async def test_a_client_under_a_write_filter_is_refused_before_anything_changes(
    lab: LabState, kind: str
) -> None:
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    client = inv.clients[0]
    set_fault(lab.dir, ED, kind)
    before = doc(lab)
    mark = len(lab.journal())
    with pytest.raises(InterlockRefused) as e:
        await clients_ops.client_prepare(LabDriver(lab, ED), client, inv, "Y")
    text = str(e.value)
    assert e.value.host == ED and e.value.rule == "client-switch-not-under-write-filter"
    assert kind.upper() in text and "C:" in text, text
    assert changes(lab, mark) == []
    assert doc(lab)["iscsi"] == before["iscsi"] and doc(lab)["registry"] == before["registry"]


async def test_an_operator_who_checked_fbwf_is_off_overrides(lab: LabState) -> None:
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    set_fault(lab.dir, ED, "fbwf")
    with lab.transaction() as txn:  # installed, but off in this session
        txn.require_host(ED)["write_filter"]["current"] = False
    ov = Overrides.of(["client-switch-not-under-write-filter"])
    msg = await clients_ops.client_prepare(LabDriver(lab, ED), inv.clients[0], inv, "Y", ov)
    assert "reconfigured for Y" in msg
    assert "rule 'client-switch-not-under-write-filter' overridden: FBWF is installed" in msg
    assert [f.rule for f in ov.forced] == ["client-switch-not-under-write-filter"]


async def test_uwf_off_in_this_session_does_not_refuse(lab: LabState) -> None:
    """UWF installed, turned off for this session (its Disable() took effect at the last
    boot): what the switch writes now is kept."""
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    set_fault(lab.dir, ED, "uwf")
    with lab.transaction() as txn:
        txn.require_host(ED)["write_filter"]["next"] = False
    reboot(lab)
    msg = await clients_ops.client_prepare(LabDriver(lab, ED), inv.clients[0], inv, "Y")
    assert "reconfigured for Y" in msg
    reboot(lab)
    assert [s["iqn"] for s in doc(lab)["iscsi"]["sessions"]] == [iqn("Y")]


async def test_uwf_that_cannot_be_read_refuses_naming_the_host(lab: LabState) -> None:
    """uwfmgr.exe is there but UWF's WMI namespace does not answer: the state of the
    filter is unknown, so nothing is changed (fail closed)."""
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    with lab.transaction() as txn:
        txn.require_host(ED)["files"][r"C:\Windows\System32\uwfmgr.exe"] = ""
    mark = len(lab.journal())
    with pytest.raises(CommandFailed) as e:
        await clients_ops.client_prepare(LabDriver(lab, ED), inv.clients[0], inv, "Y")
    assert e.value.host == ED and "Invalid namespace" in str(e.value)
    assert changes(lab, mark) == []


# -- the Aurora DSM pointer (defect 10) ------------------------------------------------------
async def test_the_pointer_is_written_as_the_site_names_it_and_compared_without_case(
    lab: LabState,
) -> None:
    inv = inventory(lab, Y={"aurora_dsm_pointer": "DSM-Y\\AURORA"})
    dev = inv.devices
    client = inv.clients[0]
    drv = LabDriver(lab, ED)
    msg = await clients_ops.client_prepare(drv, client, inv, "Y")
    assert "DSM-Y\\AURORA" in msg, msg
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "DSM-Y\\AURORA"
    # The client's own spelling of the same name counts (Windows names ignore case).
    await drv.run(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, "dsm-y\\aurora"))
    assert await clients_ops.client_prepare(drv, client, inv, "Y") == (
        f"{client.host} is already configured for Y"
    )
    reboot(lab)
    assert await clients_facts.check_dsm_pointer(drv, client, inv, "Y") == (
        f"{client.host} uses Y's DSM (dsm-y\\aurora)"
    )
    st = await clients_facts.client_facts(drv, client, inv)
    assert st.side == "Y"


async def test_verify_reads_the_pointer_after_the_restarts(lab: LabState) -> None:
    inv = inventory(lab, Y={"aurora_dsm_pointer": "dsm-y.example.net"})
    dev = inv.devices
    client = inv.clients[0]
    drv = LabDriver(lab, ED)
    await clients_ops.client_prepare(drv, client, inv, "Y")
    reboot(lab)
    # Something put X's DSM back (a policy, an Aurora installer): V: is Y's, the
    # pointer is not.
    await drv.run(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, "dsm-x"))
    assert "sees Y's V: volume" in await clients_facts.client_verify(drv, client, inv, "Y")
    with pytest.raises(CommandFailed) as e:
        await clients_facts.check_dsm_pointer(drv, client, inv, "Y")
    assert e.value.host == ED
    assert "names dsm-x, not Y's dsm-y.example.net" in str(e.value), str(e.value)


def test_pointer_values_the_inventory_accepts_and_refuses(lab: LabState) -> None:
    for good in ("DSM-Y\\AURORA", "dsm-y.example.net", "10.1.0.5", "dsm-y\\_inst$1"):
        assert inventory(lab, Y={"aurora_dsm_pointer": good}).sides["Y"].dsm_pointer == good
    for bad in ("DSM-Y\\", "DSM-Y\\1abc", "DSM-Y\\A\\B", "dsm y", "DSM-Y\\" + "a" * 17, "x'y"):
        with pytest.raises(Exception) as e:
            inventory(lab, Y={"aurora_dsm_pointer": bad})
        assert "not a valid Aurora DSM pointer" in str(e.value), bad
    with pytest.raises(Exception) as e:
        inventory(lab, X={"aurora_dsm_pointer": "DSM-Q"}, Y={"aurora_dsm_pointer": "dsm-q"})
    assert "same Aurora DSM pointer" in str(e.value)


# -- after a restart: sessions and V: come late (defect 18) ------------------------------------
async def test_a_slow_mount_shows_no_session_and_no_v_until_its_time(lab: LabState) -> None:
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    drv = LabDriver(lab, ED)
    set_fault(lab.dir, ED, "slow-mount", 0.5)
    reboot(lab)
    seen = await clients_facts.mount_state(drv, inv, "X")
    assert (seen.volume, seen.sessions) == (False, [])
    with lab.transaction() as txn:
        txn.require_host(ED)["mount_at"] = txn.now()
    seen = await clients_facts.mount_state(drv, inv, "X")
    assert (seen.volume, seen.sessions) == (True, [iqn("X")])


async def test_wmi_and_the_iscsi_cmdlets_fail_early_in_a_boot(lab: LabState) -> None:
    inv = load_inventory(Path(lab.dir) / "inventory.yaml")
    drv = LabDriver(lab, ED)
    set_fault(lab.dir, ED, "slow-providers", 60)
    await clients_facts.mount_state(drv, inv, "X")  # until the next boot, all is well
    reboot(lab)
    for read in (
        lambda: windows_facts.uptime(drv),
        lambda: clients_facts.mount_state(drv, inv, "X"),
    ):
        with pytest.raises(CommandFailed) as e:
            await read()
        assert "Provider load failure" in str(e.value), str(e.value)
    with lab.transaction() as txn:
        txn.require_host(ED)["providers_at"] = txn.now()
    assert await windows_facts.uptime(drv) >= 0
    seen = await clients_facts.mount_state(drv, inv, "X")
    assert (seen.volume, seen.sessions) == (True, [iqn("X")])


# -- Aurora stopped, and seen stopped, before anything changes -------------------------------
def quick(inv: Inventory) -> Inventory:
    """The inventory with an operation timeout of 8 s: Wait-Process waits 2 s."""
    timing = inv.timing.model_copy(update={"operation_timeout": 8})
    return inv.model_copy(update={"timing": timing})


async def test_aurora_that_does_not_stop_fails_the_prepare_naming_host_and_process(
    lab: LabState,
) -> None:
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    dev = inv.devices
    assert clients_ops.stop_wait(inv) == 2
    set_fault(lab.dir, ED, "unkillable")  # killed, its termination hangs (pending I/O)
    mark = len(lab.journal())
    with pytest.raises(CommandFailed) as e:
        await clients_ops.client_prepare(LabDriver(lab, ED), inv.clients[0], inv, "Y")
    said = str(e.value)
    assert e.value.host == ED and said.startswith(f"{ED}: Aurora did not stop: AuroraEdit ("), said
    assert "still running after Stop-Process -Force and up to 2 s of Wait-Process" in said, said
    assert "nothing was reconfigured" in said, said
    # Only the stop went out; nothing of the switch.
    assert changes(lab, mark) == ["Stop-Process"]
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-x"
    assert doc(lab)["processes"] == ["AuroraEdit"]
    # Once it can stop, the retry stops it (only what runs) and reconfigures.
    set_fault(lab.dir, ED, "clear")
    mark = len(lab.journal())
    msg = await clients_ops.client_prepare(LabDriver(lab, ED), inv.clients[0], inv, "Y")
    assert "reconfigured for Y" in msg and "Aurora stopped (AuroraEdit (" in msg, msg
    assert changes(lab, mark)[0] == "Stop-Process" and changes(lab, mark).count("Stop-Process") == 1
    assert doc(lab)["processes"] == []


async def test_aurora_the_host_will_not_end_fails_the_prepare_in_the_hosts_words(
    lab: LabState,
) -> None:
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    dev = inv.devices
    set_fault(lab.dir, ED, "kill-denied")  # Stop-Process: access denied; it runs on
    drv = LabDriver(lab, ED)
    with pytest.raises(CommandFailed) as e:
        await clients_ops.client_prepare(drv, inv.clients[0], inv, "Y")
    said = str(e.value)
    assert e.value.host == ED, said
    assert said.startswith(f"{ED}: Aurora did not stop: AuroraEdit ("), said
    assert (
        "still running after Stop-Process -Force and up to 2 s of Wait-Process (the host: "
        "Cannot stop process" in said
    ), said
    assert "Access is denied)" in said and "nothing was reconfigured" in said, said
    # The stop was the last script sent: nothing of the switch went out.
    assert "Stop-Process" in drv.scripts[-1] and "iscsicli" not in drv.scripts[-1]
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-x"


async def test_aurora_already_ending_is_refused_access_but_stopped(lab: LabState) -> None:
    """An Aurora process already terminating when Stop-Process comes: TerminateProcess
    answers access denied (Microsoft Learn, TerminateProcess), and the process exits while
    Wait-Process takes it, which throws (terminating, not silenced by -ErrorAction). Both
    are caught on the host; the read after them finds it gone: the prepare goes on."""
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    dev = inv.devices
    set_fault(lab.dir, ED, "exiting")
    drv = LabDriver(lab, ED)
    msg = await clients_ops.client_prepare(drv, inv.clients[0], inv, "Y")
    assert "reconfigured for Y" in msg, msg
    assert "Aurora stopped (AuroraEdit (" in msg and "Access is denied" in msg, msg
    assert doc(lab)["processes"] == []
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-y"
    # One Stop-Process per Id read, one Wait-Process for all of them, then every
    # configured name read.
    stop = next(s for s in drv.scripts if "Stop-Process" in s)
    assert stop.count("Wait-Process") == 1 and "catch { }" in stop, stop
    assert "Get-Process -Name 'AuroraIngest' -ErrorAction SilentlyContinue | Select" in stop
    assert "| Stop-Process" not in stop and "| Wait-Process" not in stop, stop


async def test_a_refused_aurora_process_does_not_spare_the_next_of_its_name(
    lab: LabState,
) -> None:
    """Two AuroraEdit processes; the host refuses to end the first only (kill-denied on
    its Id): the second is still stopped, and the prepare fails naming only the first,
    with the host's words for that Id."""
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    drv = LabDriver(lab, ED)
    with lab.transaction() as txn:
        txn.require_host(ED)["processes"] = ["AuroraEdit", "AuroraEdit"]
    listed = json.loads((await drv.run(ps.get_process("AuroraEdit")))[0])
    first, second = (o["Id"] for o in listed)
    with lab.transaction() as txn:
        txn.require_host(ED)["fault"] = {"kind": "kill-denied", "ids": [first]}
    with pytest.raises(CommandFailed) as e:
        await clients_ops.client_prepare(drv, inv.clients[0], inv, "Y")
    said = str(e.value)
    assert said.startswith(f"{ED}: Aurora did not stop: AuroraEdit ({first}) still running"), said
    assert f'(the host: Cannot stop process "AuroraEdit ({first})"' in said, said
    assert str(second) not in said, said
    assert doc(lab)["processes"] == ["AuroraEdit"]
    stop = drv.scripts[-1]
    again = json.loads((await drv.run(ps.get_process("AuroraEdit")))[0])
    assert again["Id"] == first
    assert f"try {{ Stop-Process -Id {first} -Force }} catch {{ $_.Exception.Message }}" in stop
    assert f"try {{ Stop-Process -Id {second} -Force }} catch {{ $_.Exception.Message }}" in stop
    assert f"Wait-Process -Id {first},{second} -Timeout 2 -ErrorAction SilentlyContinue" in stop


async def test_aurora_running_on_a_configured_client_is_stopped_on_a_retry(
    lab: LabState,
) -> None:
    """A retry after the prepare, with Aurora started again meanwhile: the client is
    already configured, and Aurora is stopped all the same before the restart."""
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    drv = LabDriver(lab, ED)
    client = inv.clients[0]
    assert "reconfigured for Y" in await clients_ops.client_prepare(drv, client, inv, "Y")
    with lab.transaction() as txn:
        txn.require_host(ED)["processes"] = ["AuroraIngest"]
    mark = len(lab.journal())
    msg = await clients_ops.client_prepare(drv, client, inv, "Y")
    assert msg.startswith(f"{client.host} is already configured for Y; Aurora stopped "), msg
    assert "AuroraIngest (" in msg, msg
    assert changes(lab, mark) == ["Stop-Process"]
    assert doc(lab)["processes"] == []
    # Nothing running: the answer is as before, nothing sent to stop.
    assert await clients_ops.client_prepare(drv, client, inv, "Y") == (
        f"{client.host} is already configured for Y"
    )


async def test_aurora_started_again_fails_the_prepare_naming_the_new_id(lab: LabState) -> None:
    """Stopped, and started again by a launcher (or a service's recovery): the read after
    the stop lists a new Id; the prepare fails and says so, nothing reconfigured."""
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    dev = inv.devices
    set_fault(lab.dir, ED, "respawns")
    with pytest.raises(CommandFailed) as e:
        await clients_ops.client_prepare(LabDriver(lab, ED), inv.clients[0], inv, "Y")
    said = str(e.value)
    assert said.startswith(f"{ED}: Aurora did not stop: AuroraEdit started again (new Id "), said
    assert "still running" not in said and "nothing was reconfigured" in said, said
    assert doc(lab)["registry"][dev.aurora_registry][dev.aurora_dsm_value] == "dsm-x"


async def test_aurora_not_running_is_not_stopped(lab: LabState) -> None:
    inv = quick(load_inventory(Path(lab.dir) / "inventory.yaml"))
    with lab.transaction() as txn:
        txn.require_host(ED)["processes"] = []
    mark = len(lab.journal())
    drv = LabDriver(lab, ED)
    msg = await clients_ops.client_prepare(drv, inv.clients[0], inv, "Y")
    assert "reconfigured for Y" in msg and "Aurora stopped" not in msg, msg
    assert "Aurora not running (AuroraEdit, AuroraIngest)" in msg, msg
    assert "Stop-Process" not in changes(lab, mark)
    assert not any("Wait-Process" in s for s in drv.scripts)
