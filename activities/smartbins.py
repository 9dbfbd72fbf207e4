"""The SmartBins servers of a side: main (normal mode, running) or backup (stopped, the
side's PseudoSmartBins host in pseudo mode)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from temporalio import activity

from activities.drivers.operations import smartbins as smartbins_ops
from activities.models import SideInput, StepResult
from activities.support import FamilyActivities, device_activity
from inventory.models import Side

if TYPE_CHECKING:
    from activities.context import DeviceContext


class SmartBinsActivities(FamilyActivities):
    @activity.defn(name="smartbins_set_main")
    @device_activity
    async def smartbins_set_main(self, inp: SideInput) -> StepResult:
        """Every SmartBins server of the side: stop, normal mode, start."""
        self.ctx.check_pair(inp.pair)
        servers = self.inv.sides[inp.side].smartbins
        msgs = await asyncio.gather(
            *(
                smartbins_ops.smartbins_set(self.ctx.host(s), self.inv.devices, "Normal", True)
                for s in servers
            )
        )
        return StepResult(message=f"SmartBins on {inp.side} main", details=list(msgs))

    @activity.defn(name="smartbins_set_backup")
    @device_activity
    async def smartbins_set_backup(self, inp: SideInput) -> StepResult:
        """All stopped; the side's PseudoSmartBins host in pseudo mode and started."""
        self.ctx.check_pair(inp.pair)
        return await set_backup(self.ctx, inp.side)


async def set_backup(ctx: DeviceContext, side: Side) -> StepResult:
    """The side's SmartBins to backup (also the fence's, activities/lost_side.py)."""
    servers = ctx.inv.sides[side].smartbins
    devices = ctx.inv.devices
    # Stop the others first so two servers never run in pseudo mode together.
    msgs = list(
        await asyncio.gather(
            *(
                smartbins_ops.smartbins_set(ctx.host(s), devices, "Normal", False)
                for s in servers
                if not s.pseudo_host
            )
        )
    )
    pseudo = ctx.inv.sides[side].pseudo_host
    msgs.append(await smartbins_ops.smartbins_set(ctx.host(pseudo), devices, "Pseudo", True))
    return StepResult(message=f"SmartBins on {side} backup (pseudo on {pseudo.host})", details=msgs)
