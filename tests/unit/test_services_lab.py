"""Services as Windows runs them, on the lab's interpreter: Get-Service -Name by key or
display name (answering with the key), the stop of dependents first (started
again afterwards), and a stop that never completes bounded by the driver's timeout."""

from __future__ import annotations

import time

import pytest

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed, Unreachable
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import ExecResult
from activities.drivers.operations import browse as browse_ops
from activities.drivers.operations import smartbins as smartbins_ops
from inventory.load import load_inventory
from lab.powershell import SERVICE_TIMEOUT
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
    assert "Cannot start service GVK2MDI on computer" in str(e.value), str(e.value)
    assert status(lab, "mdi-k2")["GVK2MDI"] == "Stopped"


def _slow(lab: LabState, **seconds: float) -> None:
    with lab.transaction() as txn:
        info = txn.require_host("mdi-k2")["service_info"]
        for key, s in seconds.items():
            info[key]["stop_seconds"] = s


def test_the_lab_stops_services_as_powershell_and_dotnet_do(lab: LabState) -> None:
    # Without -Force: refused while a dependent is not Stopped (Service.cs DoStopService).
    r = lab.run_script("mdi-k2", ps.script("Stop-Service -Name 'GVK2MDI' -NoWait"))
    assert r.exit_status == 1 and "because it has dependent services" in r.stderr
    # -Force: ServiceController.Stop() waits for each running dependent, 30 s at most,
    # then throws; -NoWait is only about the service itself.
    _slow(lab, GVK2MDIMonitor=45)
    r = lab.run_script("mdi-k2", ps.script("Stop-Service -Name 'GVK2MDI' -Force -NoWait"))
    assert r.exit_status == 1 and SERVICE_TIMEOUT in r.stderr and r.waited == 30
    assert status(lab, "mdi-k2") == {"GVK2MDI": "Running", "GVK2MDIMonitor": "StopPending"}
    _slow(lab, GVK2MDIMonitor=2, GVK2MDI=5)
    with lab.transaction() as txn:
        host = txn.require_host("mdi-k2")
        host["services"]["GVK2MDIMonitor"] = "Running"
        host.pop("stopping", None)
    r = lab.run_script("mdi-k2", ps.script("Stop-Service -Name 'GVK2MDI' -Force -NoWait"))
    assert r.exit_status == 0 and r.waited == pytest.approx(2, abs=0.1)
    assert status(lab, "mdi-k2") == {"GVK2MDI": "StopPending", "GVK2MDIMonitor": "Stopped"}


async def test_a_stop_never_waits_on_the_host_for_a_dependent(lab: LabState) -> None:
    # A dependent that takes 1.5 s to stop: Stop-Service -Force would hold the command
    # that long on the host (30 s each at most); the driver asks each service to stop
    # without waiting and polls, so no command waits on the host.
    _slow(lab, GVK2MDIMonitor=1.5, GVK2MDI=0.5)
    drv = LabDriver(lab, "mdi-k2", timeout=10)
    msg = await browse_ops.browse_stop(drv, k2_mdi(lab))
    assert status(lab, "mdi-k2") == {"GVK2MDI": "Stopped", "GVK2MDIMonitor": "Stopped"}
    assert "dependent services stopped too: GVK2MDIMonitor" in msg, msg
    assert max(drv.waits) == 0, drv.waits


async def test_a_dependent_slower_than_the_deadline_is_named(lab: LabState) -> None:
    # Slower than .NET's 30 s: Stop-Service -Force throws after waiting 30 s; the
    # driver's own deadline (its timeout) names what is still not stopped.
    _slow(lab, GVK2MDIMonitor=45)
    drv = LabDriver(lab, "mdi-k2", timeout=1)
    began = time.monotonic()
    with pytest.raises(CommandFailed) as e:
        await browse_ops.browse_stop(drv, k2_mdi(lab))
    assert time.monotonic() - began < 5
    assert "not stopped within 1 s" in str(e.value), str(e.value)
    assert "GVK2MDIMonitor (StopPending)" in str(e.value), str(e.value)


async def test_a_chain_of_dependents_is_stopped_from_the_end(lab: LabState) -> None:
    # GVK2MDI <- GVK2MDIMonitor <- MonitorAgent: each asked to stop once the services
    # that depend on it are Stopped, none waited for on the host.
    with lab.transaction() as txn:
        host = txn.require_host("mdi-k2")
        host["services"]["MonitorAgent"] = "Running"
        host["service_info"]["MonitorAgent"] = {"DisplayName": "Agent", "stop_seconds": 0.4}
        host["service_info"]["GVK2MDIMonitor"]["DependentServices"] = ["MonitorAgent"]
    _slow(lab, GVK2MDIMonitor=0.4)
    drv = LabDriver(lab, "mdi-k2", timeout=10)
    msg = await browse_ops.browse_stop(drv, k2_mdi(lab))
    assert set(status(lab, "mdi-k2").values()) == {"Stopped"}
    assert "GVK2MDIMonitor" in msg and "MonitorAgent" in msg, msg
    assert max(drv.waits) == 0, drv.waits


def _dependents(lab: LabState, **start_types: str) -> None:
    """mdi-k2: GVK2MDIMonitor, and a second dependent GVK2MDIAudit, with these types."""
    with lab.transaction() as txn:
        host = txn.require_host("mdi-k2")
        host["services"]["GVK2MDIAudit"] = "Stopped"
        host["service_info"]["GVK2MDIAudit"] = {"DisplayName": "GV K2 MDI Audit"}
        host["service_info"]["GVK2MDI"]["DependentServices"] = ["GVK2MDIMonitor", "GVK2MDIAudit"]
        for key, kind in start_types.items():
            host["service_info"][key]["StartType"] = kind


async def test_the_start_brings_back_exactly_the_dependents_the_stop_found_running(
    lab: LabState,
) -> None:
    # The Monitor runs but starts by hand (Manual); the Audit starts automatically but
    # an administrator has stopped it. The start brings back the Monitor, not the Audit.
    _dependents(lab, GVK2MDIMonitor="Manual", GVK2MDIAudit="Automatic")
    drv = LabDriver(lab, "mdi-k2")
    await browse_ops.browse_stop(drv, k2_mdi(lab))
    assert set(status(lab, "mdi-k2").values()) == {"Stopped"}
    msg = await browse_ops.browse_start(LabDriver(lab, "mdi-k2"), k2_mdi(lab))
    assert status(lab, "mdi-k2") == {
        "GVK2MDI": "Running",
        "GVK2MDIMonitor": "Running",
        "GVK2MDIAudit": "Stopped",
    }
    assert "dependent services started too: GVK2MDIMonitor" in msg, msg
    # Started once: the record is gone, and a second start changes nothing.
    assert "already running" in await browse_ops.browse_start(drv, k2_mdi(lab))


async def test_a_stop_retried_after_it_stopped_the_dependents_still_brings_them_back(
    lab: LabState,
) -> None:
    _dependents(lab, GVK2MDIMonitor="Manual")

    class CutAfterTheDependents(LabDriver):
        """The worker dies once the dependents are stopped, before the MDI is."""

        async def _execute(self, script_text: str) -> ExecResult:
            if "Stop-Service -Name 'GVK2MDI' " in script_text:
                raise Unreachable(self.name, "the worker went away")
            return await super()._execute(script_text)

    with pytest.raises(Unreachable):
        await browse_ops.browse_stop(CutAfterTheDependents(lab, "mdi-k2"), k2_mdi(lab))
    assert status(lab, "mdi-k2")["GVK2MDIMonitor"] == "Stopped"
    assert status(lab, "mdi-k2")["GVK2MDI"] == "Running"
    drv = LabDriver(lab, "mdi-k2")
    await browse_ops.browse_stop(drv, k2_mdi(lab))  # the retry: the Monitor is stopped now
    await browse_ops.browse_start(drv, k2_mdi(lab))
    assert status(lab, "mdi-k2")["GVK2MDIMonitor"] == "Running"


def _slow_start(lab: LabState, **seconds: float) -> None:
    with lab.transaction() as txn:
        info = txn.require_host("mdi-k2")["service_info"]
        for key, s in seconds.items():
            info[key]["start_seconds"] = s


def test_the_lab_starts_services_as_powershell_and_dotnet_do(lab: LabState) -> None:
    # Start-Service waits for as long as the service stays StartPending (Service.cs
    # DoStartService -> DoWaitForStatus, no bound); ServiceController.Start() returns
    # once the service is StartPending and refuses a service that is not Stopped.
    with lab.transaction() as txn:
        txn.require_host("mdi-k2")["services"].update(GVK2MDI="Stopped", GVK2MDIMonitor="Stopped")
    _slow_start(lab, GVK2MDI=7)
    r = lab.run_script("mdi-k2", ps.script("Start-Service -Name 'GVK2MDI'"))
    assert r.exit_status == 0 and r.waited == pytest.approx(7, abs=0.1)
    assert status(lab, "mdi-k2")["GVK2MDI"] == "Running"
    r = lab.run_script("mdi-k2", ps.script(ps.start_service("GVK2MDI")))
    assert r.exit_status == 1 and "Cannot start service GVK2MDI on computer '.'" in r.stderr
    with lab.transaction() as txn:
        txn.require_host("mdi-k2")["services"]["GVK2MDIMonitor"] = "Stopped"
    _slow_start(lab, GVK2MDIMonitor=7)
    r = lab.run_script("mdi-k2", ps.script("(Get-Service -Name 'GVK2MDIMonitor').Start()"))
    assert r.exit_status == 0 and r.waited == 0
    assert status(lab, "mdi-k2")["GVK2MDIMonitor"] == "StartPending"


async def test_a_slow_start_is_bounded_and_names_the_service(lab: LabState) -> None:
    # A service that stays StartPending longer than the driver's timeout: Start-Service
    # would hold the command on the host until the transport gives up ("no answer", the
    # host called unreachable); the driver starts without waiting and names it.
    drv = LabDriver(lab, "mdi-k2", timeout=0.8)
    await browse_ops.browse_stop(drv, k2_mdi(lab))
    _slow_start(lab, GVK2MDI=60)
    began = time.monotonic()
    with pytest.raises(CommandFailed) as e:
        await browse_ops.browse_start(drv, k2_mdi(lab))
    assert time.monotonic() - began < 5
    assert "not started within 0.8 s: GV K2 MDI (StartPending)" in str(e.value), str(e.value)


async def test_a_start_never_waits_on_the_host(lab: LabState) -> None:
    drv = LabDriver(lab, "mdi-k2", timeout=10)
    await browse_ops.browse_stop(drv, k2_mdi(lab))
    _slow_start(lab, GVK2MDI=0.5, GVK2MDIMonitor=0.5)
    drv = LabDriver(lab, "mdi-k2", timeout=10)
    msg = await browse_ops.browse_start(drv, k2_mdi(lab))
    assert status(lab, "mdi-k2") == {"GVK2MDI": "Running", "GVK2MDIMonitor": "Running"}
    assert "dependent services started too: GVK2MDIMonitor" in msg, msg
    assert max(drv.waits) == 0, drv.waits


async def test_a_recorded_dependent_now_disabled_is_reported_and_the_others_start(
    lab: LabState,
) -> None:
    _dependents(lab, GVK2MDIMonitor="Manual")
    with lab.transaction() as txn:
        txn.require_host("mdi-k2")["services"]["GVK2MDIAudit"] = "Running"
    drv = LabDriver(lab, "mdi-k2")
    await browse_ops.browse_stop(drv, k2_mdi(lab))
    with lab.transaction() as txn:
        txn.require_host("mdi-k2")["service_info"]["GVK2MDIAudit"]["StartType"] = "Disabled"
    msg = await browse_ops.browse_start(drv, k2_mdi(lab))
    assert status(lab, "mdi-k2") == {
        "GVK2MDI": "Running",
        "GVK2MDIMonitor": "Running",
        "GVK2MDIAudit": "Stopped",
    }
    assert "dependent services started too: GVK2MDIMonitor" in msg, msg
    assert "disabled since the stop, not started: GVK2MDIAudit" in msg, msg
