"""Activities for a side that is lost (down or unreachable): the unplanned switch and
the fence that keeps the lost side from coming back as a second main.

`dsm_stop_own_replication` stops one DSM's own replication processes without waiting
for its peer (the peer is the lost side). `fence_side` puts the lost side's DSM and
SmartBins in backup mode (and stops AllSync on its NAS head where the inventory names
the service); it fails, retryable, as long as the side does not answer, so the fencing
workflow's retry policy is the backoff, and the history does not grow per try.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.drivers.errors import DeviceError
from activities.models import SideInput, StepResult
from activities.smartbins import set_backup
from activities.support import FamilyActivities, device_activity
from activities.sync_tools import set_running
from inventory.models import other


class LostSideActivities(FamilyActivities):
    @activity.defn(name="dsm_stop_own_replication")
    @device_activity
    async def dsm_stop_own_replication(self, inp: SideInput) -> StepResult:
        """Stop replication on this side's DSM only; its peer is not asked (it is lost)."""
        self.ctx.check_pair(inp.pair)
        me = self.ctx.dsm(inp.side)
        return StepResult(message=await asyncio.to_thread(me.stop_replication))

    @activity.defn(name="fence_side")
    async def fence_side(self, inp: SideInput) -> StepResult:
        """Fence the side: stop its DSM's replication, DSM to backup, SmartBins to backup,
        AllSync stopped (when automated). Idempotent; every failure is retryable."""
        self.ctx.check_pair(inp.pair)
        try:
            return await self._fence(inp)
        except (DeviceError, OSError) as e:
            host = getattr(e, "host", "")
            activity.logger.info("fence %s: not yet: %s", inp.side, e)
            raise ApplicationError(
                f"{inp.side} not fenced yet: {e}",
                {"host": host},
                type="SideLost",
                non_retryable=False,
            ) from None

    async def _fence(self, inp: SideInput) -> StepResult:
        side = inp.side
        me = self.ctx.dsm(side)
        done: list[str] = []
        st = await asyncio.to_thread(me.read)  # Unreachable while the side is down
        # Fencing puts `side` in backup: that is only right while the other side is main
        # (an unplanned switch made it so). A fence started against the one main side
        # of a healthy pair would leave it with no main: refuse, for good.
        peer = await asyncio.to_thread(self.ctx.dsm(other(side)).read)
        if peer.mode != "main":
            raise ApplicationError(
                f"{side} not fenced: the other side's DSM {peer.host} is {peer.mode}, not main; "
                f"putting {side} in backup would leave the pair with no main",
                type="Refused",
                non_retryable=True,
            )
        if st.replication != "stopped":
            done.append(await asyncio.to_thread(me.stop_replication))
        done.append(await asyncio.to_thread(me.set_mode, "backup"))
        sb = await set_backup(self.ctx, side)
        done += sb.details
        if self.inv.devices.allsync_service is not None:
            done.append(
                await set_running(self.ctx, "AllSync", self.inv.sides[side].nas.cifs, False)
            )
        return StepResult(
            message=f"{side} fenced: DSM {me.name} backup, SmartBins on {side} backup", details=done
        )
