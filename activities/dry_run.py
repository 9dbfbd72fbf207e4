"""The reads of a dry run (`amsm start KIND ... --dry-run`) beyond the pair's status
(activities/probe.py): each client's reach of either side's iSCSI portals, and a
restore's orphans. Facts only: nothing here changes a device (tests/unit/test_rooms.py
keeps this module away from drivers/operations/ and the families that act)."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.checks.report import READ_ERRORS, not_read
from activities.drivers.errors import DeviceError
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import media as media_facts
from activities.media_records import orphans_of
from activities.models import DryRunFacts, DryRunRead
from activities.support import FamilyActivities
from inventory.models import SIDES, BrowseComponent, Side, SwitchableClient, other
from inventory.names import path_join

# A client that does not answer (a connection that closed, a restart) is read again:
# what a client switch's own retries would give it.
TRIES = 3


class DryRunActivities(FamilyActivities):
    @activity.defn(name="dry_run_facts")
    async def dry_run_facts(self, inp: DryRunRead) -> DryRunFacts:
        """Probe every client's reach of its own portal on each side (path A,
        Inventory.client_paths; Test-NetConnection, one
        round trip a client), look for each Browse config file and its twin (Test-Path)
        and, for a restore, list the orphans. A client that cannot
        be probed is named with why (fail closed: never taken as reaching)."""
        self.ctx.check_pair(inp.pair)
        inv = self.inv
        port = inv.devices.iscsi_port
        facts = DryRunFacts(
            iscsi_port=port,
            bridges={s: inv.sides[s].bridge.host for s in SIDES},
            portals={s: inv.sides[s].portals for s in SIDES},
            nas={s: inv.sides[s].nas.cifs.host for s in SIDES},
            insync_process=inv.devices.insync_process,
            insync_service=inv.devices.insync_service,
            allsync_service=inv.devices.allsync_service,
        )

        async def probe(c: SwitchableClient) -> None:
            # The client's own path A on each side: what client_prepare's interlock asks.
            mine: dict[Side, list[str]] = {s: [inv.client_paths(c, s)[0].portal] for s in SIDES}
            facts.assigned[c.host] = mine
            wanted = [p for s in SIDES for p in mine[s]]
            for tries in range(1, TRIES + 1):
                try:
                    seen = await clients_facts.portals_reachable(self.ctx.host(c), wanted, port)
                    break
                except READ_ERRORS as e:
                    if tries < TRIES and isinstance(e, DeviceError) and e.retryable:
                        await asyncio.sleep(tries)
                        continue
                    facts.unread[c.host] = not_read(e)
                    return
            by_side: dict[Side, list[str]] = {s: [p for p in mine[s] if seen.get(p)] for s in SIDES}
            facts.reached[c.host] = by_side

        async def twins(comp: BrowseComponent) -> None:
            try:
                present = await browse_facts.config_files_present(self.ctx.host(comp.host), comp)
            except READ_ERRORS as e:
                facts.browse_config[comp.name] = [f"its config files not read: {not_read(e)}"]
                return
            missing = [
                browse_facts.twin_missing(comp, f)
                for f in comp.config_files
                if not (
                    present[path_join(comp.config_dir, f)]
                    and present[path_join(comp.config_dir, browse_facts.backup_name(f))]
                )
            ]
            if missing:
                facts.browse_config[comp.name] = missing

        await asyncio.gather(
            *(self.ctx.limited(probe(c)) for c in inv.clients),
            *(self.ctx.limited(twins(b)) for b in inv.browse),
        )
        if inp.orphans_for is not None:
            m, o = inp.orphans_for, other(inp.orphans_for)
            main_host, other_host = inv.sides[m].pseudo_host, inv.sides[o].pseudo_host
            try:
                found = await media_facts.find_orphans(
                    self.ctx.host(main_host), self.ctx.host(other_host)
                )
                facts.orphans = orphans_of(found, m, other_host.host)
            except READ_ERRORS as e:
                facts.orphans_error = not_read(e)
        return facts
