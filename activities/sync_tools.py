"""The sync tools: InSync's direction and whether it runs (on the Control Point PC), and
whether AllSync runs (on a side's CIFS NAS head); started and stopped through their
services where the inventory names them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from temporalio import activity

from activities.drivers.errors import CommandFailed
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.interlocks import Overrides
from activities.drivers.operations import sync_tools as sync_tools_ops
from activities.models import (
    AllSyncState,
    InSyncState,
    PairRef,
    RunInput,
    SideInput,
    SideRunInput,
    StepResult,
)
from activities.support import FamilyActivities, device_activity, forced
from inventory.models import Host

if TYPE_CHECKING:
    from activities.context import DeviceContext


class SyncToolActivities(FamilyActivities):
    @activity.defn(name="insync_set_main")
    @device_activity
    async def insync_set_main(self, inp: SideInput) -> StepResult:
        self.ctx.check_pair(inp.pair)
        cp = self.inv.control_point
        ov = Overrides.of(inp.overrides)
        msg = await sync_tools_ops.insync_set_main(
            self.ctx.host(cp), self.inv.devices, inp.side, ov
        )
        return StepResult(message=msg, forced=forced(ov))

    @activity.defn(name="insync_state")
    @device_activity
    async def insync_state(self, inp: PairRef) -> InSyncState:
        """Whether InSync runs on the Control Point PC, and its direction."""
        self.ctx.check_pair(inp.pair)
        cp = self.inv.control_point
        running, main = await sync_tools_facts.insync_facts(self.ctx.host(cp), self.inv.devices)
        return InSyncState(host=cp.host, running=running, main=main)

    @activity.defn(name="insync_run")
    @device_activity
    async def insync_run(self, inp: RunInput) -> StepResult:
        """Start or stop InSync through its service (only when the inventory names it)."""
        self.ctx.check_pair(inp.pair)
        msg = await set_running(self.ctx, "InSync", self.inv.control_point, inp.running)
        return StepResult(message=msg)

    @activity.defn(name="allsync_state")
    @device_activity
    async def allsync_state(self, inp: SideInput) -> AllSyncState:
        """Whether AllSync runs on the side's CIFS NAS head."""
        self.ctx.check_pair(inp.pair)
        nas = self.inv.sides[inp.side].nas.cifs
        running = await windows_facts.process_running(
            self.ctx.host(nas), self.inv.devices.allsync_process
        )
        return AllSyncState(host=nas.host, side=inp.side, running=running)

    @activity.defn(name="allsync_run")
    @device_activity
    async def allsync_run(self, inp: SideRunInput) -> StepResult:
        """Start or stop AllSync on the side's CIFS NAS head through its service."""
        self.ctx.check_pair(inp.pair)
        nas = self.inv.sides[inp.side].nas.cifs
        return StepResult(message=await set_running(self.ctx, "AllSync", nas, inp.running))


async def set_running(
    ctx: DeviceContext, tool: Literal["InSync", "AllSync"], host: Host, running: bool
) -> str:
    """Start or stop InSync or AllSync on `host` through the service the inventory names
    (also the fence's, activities/lost_side.py); refused where it names none."""
    d = ctx.inv.devices
    if tool == "InSync":
        service, process, setting = d.insync_service, d.insync_process, "insync_service"
    else:
        service, process, setting = d.allsync_service, d.allsync_process, "allsync_service"
    if service is None:
        raise CommandFailed(
            "worker", f"{tool} is started and stopped by hand here (no devices.{setting})"
        )
    return await sync_tools_ops.tool_set(ctx.host(host), tool, service, process, running)
