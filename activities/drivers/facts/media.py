"""Facts of the media volume: the master clips under V:\\VibrantAVIFiles, what each clip
folder holds, and the orphans (clips on the other side that the main side lacks)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.host import HostDriver, reads_answers
from inventory.names import path_problem, segment_problem

CLIP_ROOT = "V:\\VibrantAVIFiles"


# One restore lists, records and purges at most this many clips (results stay small).
MAX_ORPHANS = 200


MAX_CLIP_FILES = 32


ATTR_DIRECTORY, ATTR_REPARSE_POINT = 0x10, 0x400


@dataclass(frozen=True)
class ClipFile:
    name: str
    size: int
    modified: str  # last write time, UTC, ISO 8601


@dataclass(frozen=True)
class ClipRecord:
    """What one master clip folder held when it was listed."""

    clip: str  # relative to V:\\VibrantAVIFiles: <SmartBin>\\<clip>.vmf
    files: tuple[ClipFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def modified(self) -> str:
        return max((f.modified for f in self.files), default="")


@dataclass(frozen=True)
class Entry:
    name: str
    attributes: int
    size: int | None
    modified: str
    link_type: str | None

    @property
    def is_link(self) -> bool:
        return bool(self.attributes & ATTR_REPARSE_POINT) or self.link_type is not None

    @property
    def is_dir(self) -> bool:
        return bool(self.attributes & ATTR_DIRECTORY)


@dataclass
class MediaListing:
    host: str
    clips: dict[str, str] = field(default_factory=dict)  # lower-cased -> clip
    refused: dict[str, str] = field(default_factory=dict)  # clip or folder -> why


@dataclass
class OrphanFinding:
    records: list[ClipRecord]
    refused: dict[str, str]


def clip_problem(clip: str) -> str | None:
    r"""Why `clip` is not a master clip path <SmartBin>\<name>.vmf Windows keeps as named."""
    why = path_problem(clip, segments=2)
    if why:
        return why
    if not clip.lower().endswith(".vmf") or len(clip.rsplit("\\", 1)[1]) <= 4:
        return "not a .vmf master clip"
    return None


def _entry(drv: HostDriver, folder: str, item: dict[str, object]) -> Entry:
    name, attrs = item.get("Name"), item.get("Attributes")
    if not isinstance(name, str) or not isinstance(attrs, int):
        raise CommandFailed(drv.name, f"undecodable entry in the listing of {folder}")
    size = item.get("Length")
    modified = item.get("LastWriteTimeUtc")
    link = item.get("LinkType")
    return Entry(
        name=name,
        attributes=attrs,
        size=size if isinstance(size, int) else None,
        modified=ps.parse_datetime(modified).isoformat() if modified is not None else "",
        link_type=str(link) if link else None,
    )


async def folder_entries(drv: HostDriver, folders: list[str]) -> dict[str, list[Entry]]:
    """The entries of each folder, each from one enumeration (a clip recorded meanwhile
    is in it or not, never half): an answer that is not a whole JSON array (`[]` for an
    empty folder) is an error naming the host and the folder, never "nothing there"."""
    outs = await drv.run_groups([[ps.list_children(f)] for f in folders])
    result: dict[str, list[Entry]] = {}
    for folder, (line,) in zip(folders, outs, strict=True):
        try:
            items = ps.parse_json_array(line)
            entries = [_entry(drv, folder, item) for item in items]
        except (ValueError, TypeError, KeyError) as e:
            raise CommandFailed(
                drv.name, f"the listing of {folder} could not be read whole ({e})"
            ) from None
        result[folder] = entries
    return result


def clip_path(clip: str) -> str:
    return f"{CLIP_ROOT}\\{clip}"


@reads_answers
async def media_listing(drv: HostDriver) -> MediaListing:
    r"""The master clips V:\VibrantAVIFiles\<SmartBin>\<clip>.vmf, two levels listed one
    at a time: a SmartBin or clip folder that is a junction or symbolic link is
    reported (refused), never entered; so is a name Windows would not keep as is."""
    out = MediaListing(drv.name)
    root = (await folder_entries(drv, [CLIP_ROOT]))[CLIP_ROOT]
    bins = []
    for e in root:
        if not e.is_dir:
            continue
        why = segment_problem(e.name)
        if e.is_link:
            out.refused[e.name] = f"a {e.link_type or 'reparse point'}: not followed"
        elif why:
            out.refused[e.name] = why
        else:
            bins.append(e.name)
    listed = await folder_entries(drv, [clip_path(b) for b in bins])
    for b in bins:
        for e in listed[clip_path(b)]:
            # "clip.vmf." is what Windows would open as "clip.vmf": refuse it, not skip it.
            if not (e.is_dir and e.name.rstrip(". ").lower().endswith(".vmf")):
                continue
            clip = f"{b}\\{e.name}"
            why = clip_problem(clip)
            if e.is_link:
                out.refused[clip] = f"a {e.link_type or 'reparse point'}: not followed"
            elif why:
                out.refused[clip] = why
            else:
                out.clips[clip.lower()] = clip
    return out


@reads_answers
async def master_clips(drv: HostDriver) -> set[str]:
    """Master clips (.vmf folders) under V:\\VibrantAVIFiles, relative to it, odd ones too."""
    listing = await media_listing(drv)
    return set(listing.clips.values()) | {c for c in listing.refused if "\\" in c}


def record_of(clip: str, entries: list[Entry]) -> ClipRecord | str:
    """The record of one clip folder, or why it is refused."""
    links = [e.name for e in entries if e.is_link]
    if links:
        return f"holds a reparse point {links[0]!r} (junction or link): not followed"
    folders = [e.name for e in entries if e.is_dir]
    if folders:
        return f"holds a folder {folders[0]!r}"
    if len(entries) > MAX_CLIP_FILES:
        return f"holds {len(entries)} files, more than {MAX_CLIP_FILES}"
    for e in entries:
        why = segment_problem(e.name)
        if why:
            return f"file {e.name!r}: {why}"
    files = tuple(
        sorted((ClipFile(e.name, e.size or 0, e.modified) for e in entries), key=lambda f: f.name)
    )
    return ClipRecord(clip, files)


@reads_answers
async def clip_records(
    drv: HostDriver, clips: list[str]
) -> tuple[list[ClipRecord], dict[str, str]]:
    listed = await folder_entries(drv, [clip_path(c) for c in clips])
    records: list[ClipRecord] = []
    refused: dict[str, str] = {}
    for c in clips:
        r = record_of(c, listed[clip_path(c)])
        if isinstance(r, str):
            refused[c] = r
        else:
            records.append(r)
    return records, refused


def unread_on_main(main: MediaListing, clip: str) -> str | None:
    """A clip whose SmartBin the main side's listing could not enter (a link, an odd
    name) cannot be known absent there: refused."""
    b = clip.split("\\")[0]
    why = next(
        (w for k, w in main.refused.items() if "\\" not in k and k.lower() == b.lower()), None
    )
    return f"its SmartBin on the main side ({main.host}) was not read: {why}" if why else None


def empty_main(main: MediaListing, other_count: int) -> CommandFailed:
    return CommandFailed(
        main.host,
        f"{CLIP_ROOT} on {main.host} (the main side) lists no master clips while the other "
        f"side holds {other_count}: refusing to take every clip for an orphan",
    )


async def find_orphans(main_drv: HostDriver, other_drv: HostDriver) -> OrphanFinding:
    """The master clips on the other side that the main side lacks, each with its files,
    sizes and write times (what an approval covers). A clip the purge could not delete
    safely (an odd name, a reparse point, a sub-folder) is refused, by name."""
    on_main, on_other = await asyncio.gather(media_listing(main_drv), media_listing(other_drv))
    if on_other.clips and not on_main.clips and not on_main.refused:
        raise empty_main(on_main, len(on_other.clips))
    main_lower = set(on_main.clips) | {c.lower() for c in on_main.refused}
    orphans = sorted(c for low, c in on_other.clips.items() if low not in main_lower)
    refused = {c: why for c, why in on_other.refused.items() if c.lower() not in main_lower}
    for c in orphans:
        why = unread_on_main(on_main, c)
        if why:
            refused[c] = why
    orphans = [c for c in orphans if c not in refused]
    if len(orphans) + len(refused) > MAX_ORPHANS:
        raise CommandFailed(
            other_drv.name,
            f"{len(orphans) + len(refused)} orphan master clips on {other_drv.name}: one restore "
            f"handles at most {MAX_ORPHANS}; remove or keep some by hand first",
        )
    records, unsafe = await clip_records(other_drv, orphans)
    return OrphanFinding(records, {**refused, **unsafe})
