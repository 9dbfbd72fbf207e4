"""The DSMs: replication stopped and started (waiting until both DSMs report it), the
mode (main or backup), the asset counts, and waiting until they agree."""

from __future__ import annotations

import asyncio
import time

from temporalio import activity

from activities.drivers.errors import CommandFailed
from activities.drivers.interlocks import Overrides
from activities.models import AssetCounts, DsmModeInput, PairRef, SideInput, StepResult, SyncInput
from activities.support import FamilyActivities, device_activity
from inventory.models import SIDES, other


class DsmActivities(FamilyActivities):
    @activity.defn(name="dsm_stop_replication")
    @device_activity
    async def dsm_stop_replication(self, inp: SideInput) -> StepResult:
        """Stop replication on the side's DSM and its peer's backup replication; wait until
        both DSMs report it stopped, each read from itself."""
        self.ctx.check_pair(inp.pair)
        me, peer = self.ctx.dsm(inp.side), self.ctx.dsm(other(inp.side))
        msg = await asyncio.to_thread(me.stop_replication, peer)

        async def both_stopped() -> bool:
            a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
            return a.replication != "running" and b.replication != "running"

        await self.ctx.wait("both DSMs report replication stopped", both_stopped, peer.name)
        return StepResult(message=f"{msg}; {peer.name} reports stopped too")

    @activity.defn(name="dsm_set_mode")
    @device_activity
    async def dsm_set_mode(self, inp: DsmModeInput) -> StepResult:
        self.ctx.check_pair(inp.pair)
        return StepResult(
            message=await asyncio.to_thread(self.ctx.dsm(inp.side).set_mode, inp.mode)
        )

    @activity.defn(name="dsm_start_replication")
    @device_activity
    async def dsm_start_replication(self, inp: SideInput) -> StepResult:
        """Start replication from the side's DSM (its master, then the peer's backup); wait
        until the peer itself reports running as replication backup."""
        self.ctx.check_pair(inp.pair)
        me, peer = self.ctx.dsm(inp.side), self.ctx.dsm(other(inp.side))
        msg = await asyncio.to_thread(me.start_replication, peer, Overrides.of(inp.overrides))

        settle = self.inv.timing.replication_settle
        held_since: float | None = None

        async def peer_backup() -> bool:
            nonlocal held_since
            a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
            if a.replication == "failed":
                raise CommandFailed(me.name, "replication failed")
            both = (a.replication, a.role, b.replication, b.role)
            if both != ("running", "master", "running", "backup"):
                held_since = None
                return False
            # Each DSM's job reports running the moment it starts; one that fails in
            # its first step has to be seen failing, so the state must hold a while.
            held_since = time.monotonic() if held_since is None else held_since
            return time.monotonic() - held_since >= settle

        await self.ctx.wait(f"{peer.name} running as replication backup", peer_backup, peer.name)
        a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
        return StepResult(
            message=f"{msg}; asset counts {me.name} {a.assets_text}, {peer.name} {b.assets_text}"
        )

    @activity.defn(name="dsm_asset_counts")
    @device_activity
    async def dsm_asset_counts(self, inp: PairRef) -> AssetCounts:
        self.ctx.check_pair(inp.pair)
        st = await asyncio.gather(*(asyncio.to_thread(self.ctx.dsm(s).status) for s in SIDES))
        return AssetCounts(counts={d.host: d.asset_count for d in st})

    @activity.defn(name="dsm_wait_in_sync")
    @device_activity
    async def dsm_wait_in_sync(self, inp: SyncInput) -> StepResult:
        """Wait until the peer's asset count is within `tolerance` of the main DSM's."""
        self.ctx.check_pair(inp.pair)
        me, peer = self.ctx.dsm(inp.side), self.ctx.dsm(other(inp.side))
        seen: dict[str, str] = {}

        async def in_sync() -> bool:
            a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
            seen.update({me.name: a.assets_text, peer.name: b.assets_text})
            if a.replication == "failed":
                raise CommandFailed(me.name, "replication failed")
            # A count that cannot be read (a database restoring) agrees with nothing:
            # the copy is not confirmed, so the wait goes on and fails at its bound.
            if a.asset_count is None or b.asset_count is None:
                return False
            return abs(a.asset_count - b.asset_count) <= inp.tolerance

        try:
            await self.ctx.wait("asset counts agree", in_sync, peer.name)
        except CommandFailed as e:
            raise CommandFailed(e.host, f"{e.message}; last counts {seen}") from None
        return StepResult(message=f"asset counts agree within {inp.tolerance}: {seen}")
