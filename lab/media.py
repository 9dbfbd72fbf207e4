"""Material on the lab's V: volumes, and the two file-mirroring tools that move it.

An Aurora master clip is a folder `V:\\VibrantAVIFiles\\<SmartBin>\\<clip>.vmf` holding
.vid/.tc/.pcm/.idx files that point at the K2 essence under `V:\\PDR\\<SmartBin>`.
While K2 InSync runs on the Control Point PC it copies clips from the master side to
the other (One Way, Event: new and changed clips propagate; clips that exist only on
the slave are left alone, which is why a restore must purge orphans). While AllSync
runs on a side's CIFS NAS head it mirrors `V:\\WIP` 1:1 to the other side.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from inventory.names import segment_problem
from lab import LabError
from lab.dsm import dsm_path, existing_uri, iso_now
from lab.state import LabState, Txn

CLIP_ROOT = "V:\\VibrantAVIFiles"
PDR_ROOT = "V:\\PDR"
WIP_ROOT = "V:\\WIP"
CLIP_PARTS = (".vid", ".tc", ".pcm", ".idx")
LINK_TYPES = ("Junction", "SymbolicLink")


def clip_paths(smartbin: str, clip: str) -> list[str]:
    """Every file of one master clip and its essence."""
    folder = f"{CLIP_ROOT}\\{smartbin}\\{clip}.vmf"
    return [f"{folder}\\{clip}{ext}" for ext in CLIP_PARTS] + [
        f"{PDR_ROOT}\\{smartbin}\\{clip}.gxf"
    ]


def ingest(directory: str | Path, side: str, clip: str, smartbin: str = "News") -> str:
    """Record a new clip on one side: its files on that side's V:, an asset in its DSM."""
    side = side.upper()
    if side not in ("X", "Y"):
        raise LabError(f"side must be X or Y, not {side!r}")
    for what, name in (("clip", clip), ("SmartBin", smartbin)):
        # What Windows allows (inventory/names.py), in any language: Genève, Straße.
        why = segment_problem(name) or segment_problem(name + ".vmf")
        if why or name.lower().endswith(".vmf") or len(name) > 200:
            raise LabError(f"{what} name {name!r}: {why or 'at most 200 characters, without .vmf'}")
    state = LabState(directory)
    paths = clip_paths(smartbin, clip)
    with state.transaction() as txn:
        if txn.volume_read(side, paths[0]) is not None:
            raise LabError(f"{smartbin}\\{clip} already exists on {side}")
        for p in paths:
            txn.volume_write(side, p, f"{clip} recorded on {side}\n")
    db = dsm_path(directory, side)
    if not db.exists():
        # Restoring (NORECOVERY) or taken away: connecting would create an empty one.
        raise LabError(f"side {side}'s DSM database cannot be opened (restoring or unreachable)")
    try:
        conn = sqlite3.connect(existing_uri(db), uri=True, timeout=10, isolation_level=None)
    except sqlite3.OperationalError as e:  # taken away since the check above
        raise LabError(f"side {side}'s DSM database cannot be opened: {e}") from None
    try:
        conn.execute(
            "INSERT OR IGNORE INTO assets (name, created) VALUES (?, ?)",
            (f"{smartbin}/{clip}", iso_now()),
        )
    finally:
        conn.close()
    return f"recorded {smartbin}\\{clip} on {side} ({len(paths)} files, one asset)"


def link(directory: str | Path, side: str, path: str, target: str, kind: str = "Junction") -> str:
    """Make a junction (or directory symbolic link) at `path` on a side's V: pointing at
    the folder `target` of the same volume (`mklink /J path target`; a junction can
    only point at a local volume: Microsoft Learn, "Hard links and junctions")."""
    side = side.upper()
    if side not in ("X", "Y"):
        raise LabError(f"side must be X or Y, not {side!r}")
    if kind not in LINK_TYPES:
        raise LabError(f"a link is a Junction or a SymbolicLink, not {kind!r}")
    for p in (path, target):
        if not p.lower().startswith("v:\\") or any(segment_problem(x) for x in p[3:].split("\\")):
            raise LabError(f"{p!r} is not a folder path on V:")
    state = LabState(directory)
    with state.transaction() as txn:
        if not txn.volume_has_folder(side, target):
            raise LabError(f"{target} does not exist on {side}")
        if txn.volume_has_folder(side, path) or txn.volume_read(side, path) is not None:
            raise LabError(f"{path} already exists on {side}")
        txn.dir_add(side, path, target, kind)
    return f"{kind.lower()} {path} -> {target} on {side}"


def _running(txn: Txn, host: str | None, process: str) -> bool:
    doc = txn.host(host) if host else None
    if doc is None or doc.get("down_until") is not None:
        return False
    return any(p.lower() == process.lower() for p in doc.get("processes", []))


def _copy(txn: Txn, src: str, dst: str, roots: tuple[str, ...], mirror: bool) -> int:
    """Copy files under `roots` from side src to dst; `mirror` also deletes extras."""
    changed = 0
    for root in roots:
        have = {p.lower(): p for p in txn.volume_list(dst, root)}
        for path in txn.volume_list(src, root):
            content = txn.volume_read(src, path) or ""
            if txn.volume_read(dst, path) != content:
                txn.volume_write(dst, path, content)
                changed += 1
            have.pop(path.lower(), None)
        if mirror:
            for path in have.values():
                txn.volume_delete(dst, path)
                changed += 1
    return changed


def sync_once(state: LabState) -> list[str]:
    """One pass of InSync and AllSync; returns what they did, as sentences."""
    out: list[str] = []
    with state.transaction() as txn:
        topo: dict[str, Any] = txn.topology
        dev = topo["devices"]
        cp = txn.host(topo["control_point"])
        if cp is not None and _running(txn, topo["control_point"], dev["insync_process"]):
            master = (cp.get("registry", {}).get(dev["insync_registry"]) or {}).get(
                dev["insync_direction_value"]
            )
            if master in ("X", "Y"):
                other = "Y" if master == "X" else "X"
                n = _copy(txn, master, other, (CLIP_ROOT, PDR_ROOT), mirror=False)
                if n:
                    out.append(f"InSync copied {n} file(s) {master} -> {other}")
        for side in ("X", "Y"):
            cifs = topo["sides"][side].get("nas_cifs")
            if _running(txn, cifs, dev["allsync_process"]):
                other = "Y" if side == "X" else "X"
                n = _copy(txn, side, other, (WIP_ROOT,), mirror=True)
                if n:
                    out.append(f"AllSync mirrored {n} WIP file(s) {side} -> {other}")
    return out
