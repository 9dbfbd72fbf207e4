"""Facts of the sync tools: whether InSync runs on the Control Point PC, and its direction.

AllSync's one fact is whether its process runs (windows.process_running).
"""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.host import HostDriver, reads_answers
from inventory.models import SIDES, DeviceSettings, Side


@reads_answers
async def insync_facts(drv: HostDriver, dev: DeviceSettings) -> tuple[bool, Side | None]:
    proc_line, reg_line = await drv.run(
        ps.get_process(dev.insync_process),
        ps.get_registry(dev.insync_registry, [dev.insync_direction_value]),
    )
    running = bool(ps.parse_json_list(proc_line))
    value = ps.parse_json_object(reg_line).get(dev.insync_direction_value)
    main: Side | None = value if value in SIDES else None
    return running, main
