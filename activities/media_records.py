"""What find-orphans found, as the activities' result (activities/models.py Orphans): one
home for the real restore's find-orphans and the dry run's reading of it."""

from __future__ import annotations

from activities.drivers.facts import media as media_facts
from activities.models import ClipFile, OrphanClip, Orphans, RefusedClip
from inventory.models import Side, other


def orphans_of(found: media_facts.OrphanFinding, main: Side, host: str) -> Orphans:
    return Orphans(
        main=main,
        other=other(main),
        host=host,
        clips=[r.clip for r in found.records],
        found=[
            OrphanClip(
                clip=r.clip,
                size=r.size,
                modified=r.modified,
                files=[ClipFile(name=f.name, size=f.size, modified=f.modified) for f in r.files],
            )
            for r in found.records
        ],
        refused=[RefusedClip(clip=c, reason=why) for c, why in sorted(found.refused.items())],
    )
