"""Operations on the sync tools: InSync and AllSync started or stopped through their
services, and the InSync direction (interlock: only while InSync is stopped)."""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts.sync_tools import insync_active_cfg, insync_facts, insync_template
from activities.drivers.facts.windows import process_running
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from activities.drivers.operations.windows import start_services, stop_services
from activities.drivers.plans import sync_tools as plans
from inventory.models import DeviceSettings, Side


@reads_answers
async def tool_set(drv: HostDriver, label: str, service: str, process: str, running: bool) -> str:
    """Start or stop InSync/AllSync through the service that runs it; no-op when it already is.

    Checked by the process, which is what the tool's own work depends on.
    """
    plan = plans.tool_set(label, drv.name, service, await process_running(drv, process), running)
    if plan.nothing_to_do:
        return plan.done
    if running:
        await start_services(drv, [service])
    else:
        await stop_services(drv, [service])
    if await process_running(drv, process) != running:
        state = "is not running" if running else "still runs"
        raise CommandFailed(drv.name, f"{label}: service {service} changed but {process} {state}")
    return plan.done


@reads_answers
async def insync_set_main(
    drv: HostDriver, dev: DeviceSettings, main: Side, overrides: Overrides | None = None
) -> str:
    """Set the InSync direction main -> other. Refused while InSync runs (overridable)."""
    ov = overrides or Overrides()
    running, current = await insync_facts(drv, dev)
    target = insync_active_cfg(dev)
    template = insync_template(dev, main)
    h_target, h_template = await drv.run(ps.file_hash(target), ps.file_hash(template))
    same_cfg = ps.parse_json_object(h_target).get("Hash") == ps.parse_json_object(h_template).get(
        "Hash"
    )
    plan = plans.insync_set_main(drv.name, dev.insync_process, running, current, main, same_cfg)
    if plan.nothing_to_do:
        return plan.done
    forced = None
    no = plan.refusal
    if no is not None:
        forced = ov.refuse(drv.name, no.rule, no.refusal, no.forced)
    await drv.run(
        ps.set_registry(dev.insync_registry, dev.insync_direction_value, main),
        ps.copy_file(template, target),
    )
    _, current = await insync_facts(drv, dev)
    h_target, h_template = await drv.run(ps.file_hash(target), ps.file_hash(template))
    if current != main or h_target != h_template:
        raise CommandFailed(drv.name, f"InSync direction did not take (registry says {current})")
    return with_forced(plan.done, forced)
