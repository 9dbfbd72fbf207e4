"""The registry values the steps read and write, per role (README, "Device settings"):
a SmartBins server's mode, the Control Point's InSync direction, a client's DSM pointer.
A key or value that is missing is a problem: the step that reads it cannot tell the
device's state."""

from __future__ import annotations

from activities.checks.report import READ_ERRORS, Report, not_read
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.models import CheckRole
from inventory.models import DeviceSettings

# The check of each role's registry values, and the settings that name them.
REGISTRY_CHECKS: dict[CheckRole, str] = {
    "smartbins": "smartbins-registry",
    "control-point": "insync-registry",
    "client": "client-registry",
}


def wanted(role: CheckRole, dev: DeviceSettings) -> tuple[dict[str, list[str]], str]:
    """{key: [value names]} of a role, and the inventory settings that name them."""
    if role == "smartbins":
        return {dev.smartbins_registry: [dev.smartbins_mode_value]}, (
            "devices.smartbins_registry, devices.smartbins_mode_value"
        )
    if role == "control-point":
        return {dev.insync_registry: [dev.insync_direction_value]}, (
            "devices.insync_registry, devices.insync_direction_value"
        )
    return {dev.aurora_registry: [dev.aurora_dsm_value]}, (
        "devices.aurora_registry, devices.aurora_dsm_value"
    )


async def registry(role: CheckRole, dev: DeviceSettings, drv: HostDriver, report: Report) -> None:
    check = REGISTRY_CHECKS.get(role)
    if check is None:
        return
    keys, settings = wanted(role, dev)
    shown = "; ".join(f"{k} {', '.join(v)}" for k, v in keys.items())
    try:
        missing = await windows_facts.registry_values(drv, keys)
    except READ_ERRORS as e:
        report.add(check, f"the registry values {shown}", not_read(e), "see the host's error")
        return
    report.ran(check)
    for key, lacking in missing.items():
        if lacking is None:
            report.add(
                check,
                f"the registry key {key}",
                "no such key",
                f"install the software that owns it, or name the host's key in the "
                f"inventory ({settings})",
            )
            continue
        for value in lacking:
            report.add(
                check,
                f"the value {value!r} under {key}",
                "no such value",
                f"set it on the host, or name the host's value in the inventory ({settings})",
            )
