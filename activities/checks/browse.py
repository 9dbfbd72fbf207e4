"""What the site check reads on a Browse host: each component's services, and its config
files with their `.backup` twins."""

from __future__ import annotations

from activities.checks.hosts import services
from activities.checks.report import Report
from activities.drivers.facts import browse as browse_facts
from activities.drivers.host import HostDriver
from inventory.models import BrowseComponent


async def browse(components: list[BrowseComponent], drv: HostDriver, report: Report) -> None:
    for comp in components:
        await services(
            "browse-service", drv, comp.services, report, f"browse {comp.name}: services"
        )
        present = await report.read(
            "browse-config",
            f"browse {comp.name}: its config files and their .backup twins",
            browse_facts.config_files_present(drv, comp),
        )
        if present is None:
            continue
        for path, there in present.items():
            if not there:
                report.add(
                    "browse-config",
                    path,
                    "missing",
                    "a Browse switch swaps each config file with its .backup twin: "
                    "both must exist (the twin points at the other side)",
                )
