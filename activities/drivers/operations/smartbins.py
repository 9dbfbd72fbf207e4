"""Operations on a SmartBins server: its mode (normal or pseudo), running or stopped."""

from __future__ import annotations

from typing import Literal

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts.smartbins import smartbins_facts
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.operations.windows import start_services, stop_services
from activities.drivers.plans import smartbins as plans
from inventory.models import DeviceSettings


@reads_answers
async def smartbins_set(
    drv: HostDriver, dev: DeviceSettings, mode: Literal["Normal", "Pseudo"], run: bool
) -> str:
    """Put one SmartBins server in `mode`, running or stopped. No-op when it already is."""
    running, current = await smartbins_facts(drv, dev)
    plan = plans.smartbins_set(drv.name, running, current, mode, run)
    if plan.nothing_to_do:
        return plan.done
    dependents: list[str] = []
    if running:
        dependents = await stop_services(drv, [dev.smartbins_service])
    if run:
        await drv.run(ps.set_registry(dev.smartbins_registry, dev.smartbins_mode_value, mode))
        # Started without waiting on the host and polled within the timeout.
        await start_services(drv, [dev.smartbins_service])
        await start_services(drv, dependents)  # what the stop stopped with it
    running, current = await smartbins_facts(drv, dev)
    if running != run or (run and current != mode):
        raise CommandFailed(
            drv.name,
            f"SmartBins did not take the new state: running={running}, mode={current}",
        )
    return plan.done
