"""What the worker knows of the pair as a whole: its timing settings, what the inventory
lets the service automate, and a reading of every device of the pair."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity

from activities.drivers.errors import DeviceError
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import smartbins as smartbins_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.models import Capabilities, NotifyPlan, PairRef
from activities.support import FamilyActivities, translate_errors
from inventory.models import SIDES, BrowseComponent, Inventory, Side, Timing
from inventory.status import (
    AllSyncStatus,
    BrowseStatus,
    ClientStatus,
    InSyncStatus,
    PairStatus,
    SmartBinsStatus,
)


def notify_plan(inv: Inventory) -> NotifyPlan | None:
    """When runs tell people; the config file stays here (activities/notify.py)."""
    n = inv.notify
    if n is None:
        return None
    return NotifyPlan(
        console_url=n.console_url, remind_every=n.remind_every, escalate_after=n.escalate_after
    )


class ProbeActivities(FamilyActivities):
    @activity.defn(name="get_timing")
    async def get_timing(self, inp: PairRef) -> Timing:
        """The worker's timing settings, so workflows size their timeouts from the inventory."""
        self.ctx.check_pair(inp.pair)
        return self.inv.timing

    @activity.defn(name="get_capabilities")
    async def get_capabilities(self, inp: PairRef) -> Capabilities:
        """What the inventory lets the service do itself (which manual steps it automates)."""
        self.ctx.check_pair(inp.pair)
        d = self.inv.devices
        return Capabilities(
            insync_service=d.insync_service is not None,
            allsync_service=d.allsync_service is not None,
            operators=[o.lower() for o in self.inv.operators],
            blackout=self.ctx.blackout_windows(),
            notify=notify_plan(self.inv),
            operator_keys=dict(self.inv.operator_keys),
            console_key=self.inv.console_key,
            require_signed=self.inv.identity.require_signed,
            approvals=dict(self.inv.approvals),
        )

    @activity.defn(name="probe_pair")
    @translate_errors
    async def probe_pair(self, inp: PairRef) -> PairStatus:
        """Read every device of the pair in parallel. Unreachable devices are reported, not raised."""
        self.ctx.check_pair(inp.pair)
        inv = self.inv

        async def smartbins(side: Side, i: int) -> SmartBinsStatus:
            s = inv.sides[side].smartbins[i]
            st = SmartBinsStatus(host=s.host, side=side, pseudo_host=s.pseudo_host)
            try:
                st.running, st.mode = await smartbins_facts.smartbins_facts(
                    self.ctx.host(s), inv.devices
                )
            except DeviceError as e:
                st.reachable, st.error = False, str(e)
            return st

        async def browse(c: BrowseComponent) -> BrowseStatus:
            st = BrowseStatus(name=c.name, role=c.role, host=c.host.host)
            try:
                f = await browse_facts.browse_facts(self.ctx.host(c.host), c, inv)
                st.services, st.side, st.running = f.services, f.side, f.running
            except DeviceError as e:
                st.reachable, st.error = False, str(e)
            return st

        async def client(i: int) -> ClientStatus:
            c = inv.clients[i]
            try:
                return await clients_facts.client_facts(self.ctx.host(c), c, inv)
            except DeviceError as e:
                return ClientStatus(host=c.host, kind=c.kind, status="unreachable", error=str(e))

        async def insync() -> InSyncStatus:
            cp = inv.control_point
            st = InSyncStatus(host=cp.host)
            try:
                st.running, st.main = await sync_tools_facts.insync_facts(
                    self.ctx.host(cp), inv.devices
                )
            except DeviceError as e:
                st.reachable, st.error = False, str(e)
            return st

        async def allsync(side: Side) -> tuple[Side, bool | None, str | None]:
            nas = inv.sides[side].nas.cifs
            try:
                return (
                    side,
                    await windows_facts.process_running(
                        self.ctx.host(nas), inv.devices.allsync_process
                    ),
                    None,
                )
            except DeviceError as e:
                return side, None, str(e)

        dsm_x, dsm_y = await asyncio.gather(
            *(asyncio.to_thread(self.ctx.dsm(s).status) for s in SIDES)
        )
        sb = [
            self.ctx.limited(smartbins(side, i))
            for side in SIDES
            for i in range(len(inv.sides[side].smartbins))
        ]
        results = await asyncio.gather(
            asyncio.gather(*sb),
            asyncio.gather(*(self.ctx.limited(browse(c)) for c in inv.browse)),
            asyncio.gather(*(self.ctx.limited(client(i)) for i in range(len(inv.clients)))),
            insync(),
            asyncio.gather(*(allsync(s) for s in SIDES)),
        )
        sb_st, browse_st, client_st, insync_st, allsync_raw = results
        allsync_st = AllSyncStatus(
            running_on=[s for s, running, _ in allsync_raw if running],
            errors={inv.sides[s].nas.cifs.host: err for s, _, err in allsync_raw if err},
        )
        return PairStatus(
            pair=inv.pair,
            read_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dsm={"X": dsm_x, "Y": dsm_y},
            smartbins=list(sb_st),
            browse=list(browse_st),
            clients=list(client_st),
            insync=insync_st,
            allsync=allsync_st,
        )
