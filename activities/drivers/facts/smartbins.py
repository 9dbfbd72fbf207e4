"""Facts of a SmartBins server: whether its service runs, and its mode (normal or pseudo)."""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts.windows import by_name
from activities.drivers.host import HostDriver, reads_answers
from inventory.models import DeviceSettings


@reads_answers
async def smartbins_facts(drv: HostDriver, dev: DeviceSettings) -> tuple[bool, str | None]:
    svc_line, reg_line = await drv.run(
        ps.get_services([dev.smartbins_service]),
        ps.get_registry(dev.smartbins_registry, [dev.smartbins_mode_value]),
    )
    svc = by_name([dev.smartbins_service], svc_line).get(dev.smartbins_service)
    if svc is None:
        raise CommandFailed(
            drv.name, f"no service {dev.smartbins_service!r} in Get-Service's answer"
        )
    reg = ps.parse_json_object(reg_line)
    running = ps.parse_service_status(svc.get("Status")) == "Running"
    mode = reg.get(dev.smartbins_mode_value)
    return running, (str(mode) if mode is not None else None)
