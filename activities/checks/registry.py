"""The registry values the steps read and write, per role (docs/site/inventory.md):
a SmartBins server's mode, the Control Point's InSync direction, a client's DSM pointer.
A key or value that is missing is a problem: the step that reads it cannot tell the
device's state."""

from __future__ import annotations

from activities.checks.report import Report
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.models import CheckRole
from inventory.models import DeviceSettings

# The check of each role's registry values.
REGISTRY_CHECKS: dict[CheckRole, str] = {
    "smartbins": "smartbins-registry",
    "control-point": "insync-registry",
    "client": "client-registry",
}


def wanted(role: CheckRole, dev: DeviceSettings) -> tuple[str, str, str] | None:
    """(key, value name, the inventory settings that name them) of a role, if any."""
    table: dict[CheckRole, tuple[str, str, str]] = {
        "smartbins": (
            dev.smartbins_registry,
            dev.smartbins_mode_value,
            "devices.smartbins_registry, devices.smartbins_mode_value",
        ),
        "control-point": (
            dev.insync_registry,
            dev.insync_direction_value,
            "devices.insync_registry, devices.insync_direction_value",
        ),
        "client": (
            dev.aurora_registry,
            dev.aurora_dsm_value,
            "devices.aurora_registry, devices.aurora_dsm_value",
        ),
    }
    return table.get(role)


async def registry(role: CheckRole, dev: DeviceSettings, drv: HostDriver, report: Report) -> None:
    check, what = REGISTRY_CHECKS.get(role), wanted(role, dev)
    if check is None or what is None:
        return
    key, value, settings = what
    shown = f"{key} {value}"
    missing = await report.read(
        check, f"the registry values {shown}", windows_facts.registry_values(drv, {key: [value]})
    )
    if missing is None:
        return
    for path, lacking in missing.items():
        if lacking is None:
            report.add(
                check,
                f"the registry key {path}",
                "no such key",
                f"install the software that owns it, or name the host's key in the "
                f"inventory ({settings})",
            )
            continue
        for name in lacking:
            report.add(
                check,
                f"the value {name!r} under {path}",
                "no such value",
                f"set it on the host, or name the host's value in the inventory ({settings})",
            )
