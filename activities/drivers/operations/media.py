"""Operations on the media volume: deleting approved orphan master clips (interlock: only
on the backup side's volume, each only while it is still what was approved)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from activities.drivers import powershell as ps
from activities.drivers.errors import RULE_PURGE_BACKUP_ONLY, CommandFailed, InterlockRefused
from activities.drivers.facts.media import (
    CLIP_ROOT,
    MAX_ORPHANS,
    ClipRecord,
    Entry,
    clip_path,
    clip_problem,
    empty_main,
    folder_entries,
    media_listing,
    record_of,
    unread_on_main,
)
from activities.drivers.host import HostDriver, reads_answers
from inventory.models import Side


@dataclass
class PurgeOutcome:
    host: str
    side: Side
    deleted: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        msg = f"{len(self.deleted)} orphan clip(s) deleted on {self.host} ({self.side})"
        if self.gone:
            msg += f"; {len(self.gone)} already gone"
        if self.refused:
            shown = ", ".join(f"{c} ({why})" for c, why in list(self.refused.items())[:10])
            more = len(self.refused) - 10
            msg += f"; {len(self.refused)} refused, not deleted: {shown}"
            msg += f" (+{more} more)" if more > 0 else ""
        return msg


def _changes(approved: ClipRecord, entries: list[Entry]) -> str | None:
    """Why the clip folder is no longer what was approved (None: unchanged, or only some
    of its approved files already deleted by an earlier attempt)."""
    now = record_of(approved.clip, entries)
    if isinstance(now, str):
        return f"changed since approval: {now}"
    was = {f.name.lower(): f for f in approved.files}
    for f in now.files:
        old = was.get(f.name.lower())
        if old is None:
            return f"changed since approval: new file {f.name!r}"
        if (old.size, old.modified) != (f.size, f.modified):
            return (
                f"changed since approval: {f.name!r} {old.size} bytes {old.modified} -> "
                f"{f.size} bytes {f.modified}"
            )
    return None


async def purge_orphans(
    drv: HostDriver,
    host_side: Side,
    main: Side,
    approved: list[ClipRecord],
    main_drv: HostDriver,
    progress: Callable[[str], object] | None = None,
) -> PurgeOutcome:
    """Delete approved orphan master clips on the backup side's volume, in batches that
    each fit one command line.

    Refused outright on the main side's volume, above MAX_ORPHANS, and when the main
    side's listing is empty. Per clip, re-checked at deletion: absent on the main side
    (else refused: not an orphan), a plain folder on this side holding exactly the
    approved files, unchanged (else refused: changed since approval), a name Windows
    keeps as is; refused clips are named in the outcome and the others still go. Files
    are removed one by one and then the empty folder, never with -Recurse (5.1 follows
    reparse points). A retry deletes what is still present and unchanged, nothing else.
    """
    if host_side == main:
        raise InterlockRefused(
            drv.name,
            RULE_PURGE_BACKUP_ONLY,
            f"orphans are deleted only on the backup side's volume; {drv.name} is on {main}, "
            "the main side",
        )
    if len(approved) > MAX_ORPHANS:
        raise CommandFailed(
            drv.name, f"{len(approved)} clips approved: one purge deletes at most {MAX_ORPHANS}"
        )
    out = PurgeOutcome(drv.name, host_side)
    todo: dict[str, ClipRecord] = {}
    for r in approved:
        why = clip_problem(r.clip)
        if why:
            out.refused[r.clip] = why
        elif r.clip.lower() not in todo:
            todo[r.clip.lower()] = r
    on_main = await media_listing(main_drv)
    if todo and not on_main.clips and not on_main.refused:
        raise empty_main(on_main, len(todo))
    main_lower = set(on_main.clips) | {c.lower() for c in on_main.refused}
    for low, r in list(todo.items()):
        why = unread_on_main(on_main, r.clip)
        if low in main_lower:
            out.refused[r.clip] = "exists on the main side, so not an orphan"
            del todo[low]
        elif why:
            out.refused[r.clip] = why
            del todo[low]
    # Size each batch by the deletes it may send (every approved file and the folder).
    groups = [
        [ps.remove_item(clip_path(r.clip) + "\\" + f.name) for f in r.files]
        + [ps.remove_item(clip_path(r.clip))]
        for r in todo.values()
    ]
    records = list(todo.values())
    done = 0
    for batch in ps.batch_groups(groups, drv.transport):
        clips = records[done : done + len(batch)]
        done += len(batch)
        await _purge_batch(drv, main_drv, clips, out)
        if progress is not None:
            progress(f"purged {done}/{len(records)} approved clip(s) on {drv.name}")
    left = await media_listing(drv)
    still = [c for c in out.deleted if c.lower() in left.clips or c in left.refused]
    if still:
        raise CommandFailed(drv.name, f"still present after delete: {', '.join(still)}")
    return out


@reads_answers
async def _purge_batch(
    drv: HostDriver, main_drv: HostDriver, clips: list[ClipRecord], out: PurgeOutcome
) -> None:
    # Where the clips are now, on this side: their SmartBins, then their folders.
    root = {e.name.lower(): e for e in (await folder_entries(drv, [CLIP_ROOT]))[CLIP_ROOT]}
    bins = sorted({c.clip.split("\\")[0] for c in clips}, key=str.lower)
    present_bins = []
    for b in bins:
        e = root.get(b.lower())
        if e is not None and e.is_dir and not e.is_link:
            present_bins.append(b)
    in_bins = await folder_entries(drv, [clip_path(b) for b in present_bins])
    folders: list[ClipRecord] = []
    for c in clips:
        b, name = c.clip.split("\\")
        e = None
        if b in present_bins:
            e = next((x for x in in_bins[clip_path(b)] if x.name.lower() == name.lower()), None)
        if e is None:
            if root.get(b.lower()) is not None and root[b.lower()].is_link:
                out.refused[c.clip] = "its SmartBin folder is now a reparse point: not followed"
            else:
                out.gone.append(c.clip)
        elif e.is_link or not e.is_dir:
            out.refused[c.clip] = "changed since approval: no longer a plain folder"
        else:
            folders.append(c)
    contents = await folder_entries(drv, [clip_path(c.clip) for c in folders])
    # Absent on the main side at deletion (Test-Path follows links: anything there counts).
    main_lines = await main_drv.run_groups(
        [[ps.test_path(CLIP_ROOT)], *[[ps.test_path(clip_path(c.clip))] for c in folders]],
    )
    if folders and not ps.parse_bool(main_lines[0][0]):
        raise CommandFailed(main_drv.name, f"{CLIP_ROOT} is not readable on the main side")
    stmts: list[str] = []
    deleting: list[str] = []
    for c, line in zip(folders, main_lines[1:], strict=True):
        if ps.parse_bool(line[0]):
            out.refused[c.clip] = "exists on the main side, so not an orphan"
            continue
        entries = contents[clip_path(c.clip)]
        why = _changes(c, entries)
        if why:
            out.refused[c.clip] = why
            continue
        stmts += [ps.remove_item(clip_path(c.clip) + "\\" + e.name) for e in entries]
        stmts.append(ps.remove_item(clip_path(c.clip)))
        deleting.append(c.clip)
    if stmts:
        await drv.run(*stmts)
    out.deleted += deleting
