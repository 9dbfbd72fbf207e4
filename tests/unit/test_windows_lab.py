"""Windows behaviours of the drivers on the lab's interpreter: registry value names,
uptime across a repeated autumn hour, folder listings, service stops."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from activities.drivers import powershell as ps
from activities.drivers.errors import DeviceError
from activities.drivers.facts import smartbins as smartbins_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.operations import smartbins as smartbins_ops
from inventory.load import load_inventory
from inventory.models import DeviceSettings
from lab.state import LabState
from tests.unit.labdriver import LabDriver

# Names the inventory's value-name rule (SAFE_NAME_RE) accepts that are no bare
# PowerShell word: each must be read and written, never raise outside the error tree.
ODD_VALUE_NAMES = ["Mode Value", "Mode_1", "1Mode", "Mode.Value", "Mode(1)", "Mode-Value", "x"]


@pytest.mark.parametrize("name", ODD_VALUE_NAMES)
async def test_registry_value_names_the_inventory_accepts_are_read_and_written(
    lab: LabState, name: str
) -> None:
    inv = load_inventory(lab.dir / "inventory.yaml")
    dev = DeviceSettings(**{**inv.devices.model_dump(), "smartbins_mode_value": name})
    with lab.transaction() as txn:
        txn.require_host("sb-x1")["registry"][dev.smartbins_registry] = {name: "Normal"}
    drv = LabDriver(lab, "sb-x1")
    assert await smartbins_facts.smartbins_facts(drv, dev) == (True, "Normal")
    await smartbins_ops.smartbins_set(drv, dev, "Pseudo", run=True)
    assert await smartbins_facts.smartbins_facts(drv, dev) == (True, "Pseudo")
    missing = await windows_facts.registry_values(drv, {dev.smartbins_registry: [name, "Gone"]})
    assert missing == {dev.smartbins_registry: ["Gone"]}


@pytest.mark.parametrize("name", ["Mode*", "Mode?", "Mode[1]", "Mo'de", "", "Mode\n"])
def test_registry_value_names_the_driver_cannot_send_are_refused_by_the_inventory(
    name: str,
) -> None:
    with pytest.raises(ValidationError) as e:
        DeviceSettings(smartbins_mode_value=name)
    assert "smartbins_mode_value" in str(e.value) and "is not a valid" in str(e.value)


async def test_a_builder_refusal_is_the_hosts_device_error(lab: LabState) -> None:
    # Whatever a builder refuses to write (ps.UnsafeValue) reaches the caller as the
    # host's CommandFailed, in the error tree, not as a ValueError.
    drv = LabDriver(lab, "sb-x1")
    with pytest.raises(DeviceError) as e:
        await windows_facts.registry_values(drv, {"HKLM:\\SOFTWARE\\GVG": ["Mo*de"]})
    assert e.value.host == "sb-x1" and "Mo*de" in str(e.value)


# 25 October 2026, 00:30 UTC: 01:30 BST, the first (daylight) pass of the hour that
# Europe/London repeats when it goes back to GMT at 02:00 BST.
IN_THE_REPEATED_HOUR = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()


async def test_uptime_is_right_when_the_boot_fell_in_the_repeated_autumn_hour(
    lab: LabState,
) -> None:
    with lab.transaction() as txn:
        host = txn.require_host("ED-01")
        host["time_zone"] = "Europe/London"
        host["boot_time"] = int(IN_THE_REPEATED_HOUR * 1000)
    drv = LabDriver(lab, "ED-01")
    before = time.time()
    up = await windows_facts.uptime(drv)
    after = time.time()
    assert before - IN_THE_REPEATED_HOUR - 1 <= up <= after - IN_THE_REPEATED_HOUR + 1
    clock = await windows_facts.clock(drv)
    assert abs(clock.skew) < 2


def test_the_lab_reads_the_repeated_hour_as_dotnet_does(lab: LabState) -> None:
    # Get-CimInstance | ConvertTo-Json (5.1): the boot, a wall time of the repeated hour,
    # comes back as standard time: an hour late. Get-WmiObject: with its offset, exact.
    with lab.transaction() as txn:
        host = txn.require_host("ED-01")
        host["time_zone"] = "Europe/London"
        host["boot_time"] = int(IN_THE_REPEATED_HOUR * 1000)
    cim = json.loads(lab.run_script("ED-01", ps.script(ps.boot_info())).stdout.split("\n")[0])
    assert ps.parse_datetime(cim["LastBootUpTime"]).timestamp() == IN_THE_REPEATED_HOUR + 3600
    wmi = json.loads(lab.run_script("ED-01", ps.script(ps.os_times())).stdout.split("\n")[0])
    assert wmi["LastBootUpTime"] == "20261025003000.000000+000"
    assert ps.parse_cim_datetime(wmi["LastBootUpTime"]).timestamp() == IN_THE_REPEATED_HOUR
