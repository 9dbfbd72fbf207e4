"""What the site check reads for InSync on the Control Point PC: its configuration files
(the active `Insync.cfg` and the two it is copied from to set the direction)."""

from __future__ import annotations

from activities.checks.report import Report
from activities.drivers.facts import sync_tools as sync_facts
from activities.drivers.host import HostDriver
from inventory.models import DeviceSettings


async def insync_config(dev: DeviceSettings, drv: HostDriver, report: Report) -> None:
    present = await report.read(
        "insync-config",
        f"InSync's configuration files in {dev.insync_cfg_dir}",
        sync_facts.insync_files_present(drv, dev),
    )
    if present is None:
        return
    for path, there in present.items():
        if not there:
            report.add(
                "insync-config",
                path,
                "missing",
                "setting InSync's direction compares Insync.cfg with InsyncXtoY.cfg or "
                "InsyncYtoX.cfg and copies one over it: all three must exist "
                "(devices.insync_cfg_dir)",
            )
