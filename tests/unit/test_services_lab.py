"""Services as Windows runs them, on the lab's interpreter: Get-Service -Name by key or
display name (answering with the key), Stop-Service -Force stopping dependents (started
again afterwards), and a stop that never completes bounded by the driver's timeout."""

from __future__ import annotations

import time

import pytest

from activities.drivers.errors import CommandFailed
from activities.drivers.facts import windows as windows_facts
from activities.drivers.operations import browse as browse_ops
from activities.drivers.operations import smartbins as smartbins_ops
from inventory.load import load_inventory
from lab.state import LabState
from tests.unit.labdriver import LabDriver


def status(lab: LabState, host: str) -> dict[str, str]:
    with lab.transaction() as txn:
        return dict(txn.require_host(host)["services"])


def k2_mdi(lab: LabState):  # type: ignore[no-untyped-def]
    inv = load_inventory(lab.dir / "inventory.yaml")
    return next(c for c in inv.browse if c.name == "k2-mdi")


async def test_display_names_match_without_regard_to_case(lab: LabState) -> None:
    drv = LabDriver(lab, "mdi-k2")
    assert await windows_facts.services(drv, ["gv k2 mdi", "GVK2MDI"]) == {
        "gv k2 mdi": "Running",
        "GVK2MDI": "Running",
    }


async def test_a_stop_stops_dependents_and_the_start_brings_them_back(lab: LabState) -> None:
    drv = LabDriver(lab, "mdi-k2")
    comp = k2_mdi(lab)
    assert comp.services == ["GV K2 MDI"]  # the inventory names it by display name
    msg = await browse_ops.browse_stop(drv, comp)
    assert status(lab, "mdi-k2") == {"GVK2MDI": "Stopped", "GVK2MDIMonitor": "Stopped"}
    assert "dependent services stopped too: GVK2MDIMonitor" in msg, msg
    msg = await browse_ops.browse_start(drv, comp)
    assert status(lab, "mdi-k2") == {"GVK2MDI": "Running", "GVK2MDIMonitor": "Running"}
    assert "dependent services started too: GVK2MDIMonitor" in msg, msg


async def test_a_stuck_stop_is_bounded_and_names_the_service(lab: LabState) -> None:
    with lab.transaction() as txn:
        txn.require_host("mdi-k2")["service_info"]["GVK2MDI"]["stuck"] = True
    drv = LabDriver(lab, "mdi-k2", timeout=0.6)
    began = time.monotonic()
    with pytest.raises(CommandFailed) as e:
        await browse_ops.browse_stop(drv, k2_mdi(lab))
    assert time.monotonic() - began < 5
    assert "not stopped within 0.6 s: GV K2 MDI (StopPending)" in str(e.value)


async def test_smartbins_restart_brings_its_dependents_back(lab: LabState) -> None:
    with lab.transaction() as txn:
        doc = txn.require_host("sb-x1")
        doc["services"]["SBIndexer"] = "Running"
        doc["service_info"] = {
            "SmartBins": {"DisplayName": "SmartBins", "DependentServices": ["SBIndexer"]},
            "SBIndexer": {"DisplayName": "SmartBins Indexer"},
        }
    inv = load_inventory(lab.dir / "inventory.yaml")
    drv = LabDriver(lab, "sb-x1")
    await smartbins_ops.smartbins_set(drv, inv.devices, "Pseudo", run=True)
    assert status(lab, "sb-x1") == {"SmartBins": "Running", "SBIndexer": "Running"}
    with lab.transaction() as txn:
        assert txn.require_host("sb-x1")["registry"][inv.devices.smartbins_registry] == {
            inv.devices.smartbins_mode_value: "Pseudo"
        }


async def test_a_disabled_service_does_not_start_and_the_fact_says_so(lab: LabState) -> None:
    # Stopped for good (StartType Disabled): Start-Service refuses, as Windows does
    # (Microsoft Learn, Start-Service), and the site check's fact reads the StartType.
    with lab.transaction() as txn:
        host = txn.require_host("mdi-k2")
        host["service_info"]["GVK2MDI"]["StartType"] = "Disabled"
    drv = LabDriver(lab, "mdi-k2")
    found = await windows_facts.find_services(drv, ["GV K2 MDI", "GVK2MDIMonitor"])
    assert found["GV K2 MDI"] is not None and found["GV K2 MDI"].start_type == "Disabled"
    assert found["GVK2MDIMonitor"] is not None
    assert found["GVK2MDIMonitor"].start_type != "Disabled"
    await browse_ops.browse_stop(drv, k2_mdi(lab))
    with pytest.raises(CommandFailed) as e:
        await browse_ops.browse_start(drv, k2_mdi(lab))
    assert "cannot be started due to the following error: Cannot start service GVK2MDI" in str(
        e.value
    )
    assert status(lab, "mdi-k2")["GVK2MDI"] == "Stopped"
