"""The media volumes: the orphan master clips found, and the approved ones purged."""

from __future__ import annotations

from temporalio import activity

from activities.drivers.errors import CommandFailed
from activities.drivers.facts import media as media_facts
from activities.drivers.operations import media as media_ops
from activities.media_records import orphans_of
from activities.models import (
    OrphanInput,
    Orphans,
    PurgeInput,
    StepResult,
)
from activities.support import FamilyActivities, device_activity
from inventory.models import other


class MediaActivities(FamilyActivities):
    @activity.defn(name="find_orphans")
    @device_activity
    async def find_orphans(self, inp: OrphanInput) -> Orphans:
        """Master clips on the other side's volume that the main side does not have, each
        with the files, sizes and times the approval will cover; clips that cannot be
        purged safely are listed apart as refused. Fails (naming the host) on a listing
        that cannot be read whole, and above media_facts.MAX_ORPHANS clips."""
        self.ctx.check_pair(inp.pair)
        o = other(inp.main)
        main_host, other_host = self.inv.sides[inp.main].pseudo_host, self.inv.sides[o].pseudo_host
        found = await media_facts.find_orphans(self.ctx.host(main_host), self.ctx.host(other_host))
        return orphans_of(found, inp.main, other_host.host)

    @activity.defn(name="purge_orphans")
    @device_activity
    async def purge_orphans(self, inp: PurgeInput) -> StepResult:
        """Delete the approved orphans on the other side's volume only (driver interlock),
        each only while it is still exactly what was approved; the others are named."""
        self.ctx.check_pair(inp.pair)
        o = other(inp.main)
        if {c.lower() for c in inp.clips} != {r.clip.lower() for r in inp.found}:
            raise CommandFailed(
                "worker",
                "the approval does not record what each clip held (a run approved before "
                "the purge covered content): nothing deleted; start the restore again",
            )
        approved = [
            media_facts.ClipRecord(
                r.clip, tuple(media_facts.ClipFile(f.name, f.size, f.modified) for f in r.files)
            )
            for r in inp.found
        ]
        host = self.inv.sides[o].pseudo_host
        outcome = await media_ops.purge_orphans(
            self.ctx.host(host),
            o,
            inp.main,
            approved,
            self.ctx.host(self.inv.sides[inp.main].pseudo_host),
            progress=activity.heartbeat,
        )
        details = [f"deleted {c}" for c in outcome.deleted]
        details += [f"already gone {c}" for c in outcome.gone]
        details += [f"refused {c}: {why}" for c, why in outcome.refused.items()]
        return StepResult(message=outcome.message, details=details)
