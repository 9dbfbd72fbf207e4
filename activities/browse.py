"""The Browse components: stopped, switched to a side (their config files), started, or
moved to a side in one go."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.drivers.facts import browse as browse_facts
from activities.drivers.interlocks import Overrides
from activities.drivers.operations import browse as browse_ops
from activities.drivers.plans import browse as browse_plans
from activities.models import BrowseInput, BrowseSwitchInput, StepResult
from activities.support import FamilyActivities, device_activity, forced
from inventory.models import BrowseComponent, Side


class BrowseActivities(FamilyActivities):
    async def _stop(self, comps: list[BrowseComponent]) -> StepResult:
        msgs = await asyncio.gather(
            *(browse_ops.browse_stop(self.ctx.host(c.host), c) for c in comps)
        )
        return StepResult(message=f"{len(comps)} Browse component(s) stopped", details=list(msgs))

    async def _switch(
        self, comps: list[BrowseComponent], to: Side, overrides: list[str] | None = None
    ) -> StepResult:
        ov = Overrides.of(overrides)
        msgs = await asyncio.gather(
            *(browse_ops.browse_switch(self.ctx.host(c.host), c, self.inv, to, ov) for c in comps)
        )
        return StepResult(
            message=f"{len(comps)} Browse component(s) point at {to}",
            details=list(msgs),
            forced=forced(ov),
        )

    async def _start(self, comps: list[BrowseComponent]) -> StepResult:
        msgs = await asyncio.gather(
            *(browse_ops.browse_start(self.ctx.host(c.host), c) for c in comps)
        )
        facts = await asyncio.gather(
            *(browse_facts.browse_facts(self.ctx.host(c.host), c, self.inv) for c in comps)
        )
        on = {f.side for f in facts}
        where = f"Active on {on.pop()}" if len(on) == 1 else "pointing at mixed sides"
        return StepResult(
            message=f"{len(comps)} Browse component(s) started, {where}", details=list(msgs)
        )

    @activity.defn(name="browse_stop")
    @device_activity
    async def browse_stop(self, inp: BrowseInput) -> StepResult:
        self.ctx.check_pair(inp.pair)
        return await self._stop(self.ctx.components(inp.components, inp.hosts))

    @activity.defn(name="browse_switch")
    @device_activity
    async def browse_switch(self, inp: BrowseSwitchInput) -> StepResult:
        """Swap config files of stopped components so they point at `to`; does not start them."""
        self.ctx.check_pair(inp.pair)
        comps = self.ctx.components(inp.components, inp.hosts)
        return await self._switch(comps, inp.to, inp.overrides)

    @activity.defn(name="browse_start")
    @device_activity
    async def browse_start(self, inp: BrowseInput) -> StepResult:
        self.ctx.check_pair(inp.pair)
        return await self._start(self.ctx.components(inp.components, inp.hosts))

    @activity.defn(name="browse_move")
    @device_activity
    async def browse_move(self, inp: BrowseSwitchInput) -> StepResult:
        """Make Browse Active on `to`: stop, switch, start; nothing when it already is."""
        self.ctx.check_pair(inp.pair)
        comps = self.ctx.components(inp.components, inp.hosts)
        facts = await asyncio.gather(
            *(browse_facts.browse_facts(self.ctx.host(c.host), c, self.inv) for c in comps)
        )
        there = browse_plans.already_active(inp.to, [(f.side, f.running) for f in facts])
        if there is not None:
            return StepResult(message=there.done)
        steps = [
            await self._stop(comps),
            await self._switch(comps, inp.to),
            await self._start(comps),
        ]
        return StepResult(
            message=f"Browse moved: {steps[-1].message}", details=[x.message for x in steps]
        )
