"""What the site check reads for InSync on the Control Point PC: its configuration files
(the active `Insync.cfg` and the two it is copied from to set the direction)."""

from __future__ import annotations

from activities.checks.report import READ_ERRORS, Report, not_read
from activities.drivers.facts import sync_tools as sync_facts
from activities.drivers.host import HostDriver
from inventory.models import DeviceSettings


async def insync_config(dev: DeviceSettings, drv: HostDriver, report: Report) -> None:
    try:
        present = await sync_facts.insync_files_present(drv, dev)
    except READ_ERRORS as e:
        report.add(
            "insync-config",
            f"InSync's configuration files in {dev.insync_cfg_dir}",
            not_read(e),
            "see the host's error",
        )
        return
    report.ran("insync-config")
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
