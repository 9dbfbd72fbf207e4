r"""Faults a test or a demo can set on the running lab, and clear again.

Host faults live in the host's document (`fault`), DSM faults in lab.db's meta
table (`dsm_faults`); `amsm lab serve` picks both up within a fraction of a second.

- `unreachable`: the host's port closes as if its network were cut; `clear` brings it
  back without a reboot.
- `no-reboot`: the next restart never comes back (until `clear`, which boots it).
- `slow-reboot S`: restarts take S seconds.
- `flapping S`: a boot loop from the next restart on: every boot lasts S seconds (default
  1), then the host restarts by itself, until `clear`.
- `clock-step S`: the host's clock jumps by S seconds (negative: back), as when an
  operator or a time server sets it; its boot time moves with it (Windows does so), its
  uptime does not. Stays until another step (`clear` leaves the clock as it is).
- `shell-quota N`: the host's WinRM service allows a user N shells (MaxShellsPerUser, 30
  by default), as an administrator's `Set-Item WSMan:\localhost\Shell\MaxShellsPerUser N`
  sets it; only on a host the worker reaches over WinRM. A setting, like the clock: `clear`
  leaves it (set 30 again).
- `ingesting`: clips are being recorded while the host reads V: — every listing of a
  SmartBin folder (V:\VibrantAVIFiles\<bin>, `Get-ChildItem -Force`) is followed at
  once by a new master clip in that SmartBin (`ingested-NNNN`, its files as
  `amsm lab ingest` writes them; no DSM asset), so two enumerations of one folder in
  one script disagree, as they do on a K2 that records. Until `clear`.
- `powershell V`: the host runs PowerShell V (e.g. 4.0; $PSVersionTable.PSVersion), as a
  host that never got Windows Management Framework 5.1. A setting too; `powershell 5.1`
  puts it back. It then lacks the cmdlets that came later (lab/powershell.py
  CMDLET_SINCE); its other differences are not modelled.
- DSM `replication-fails`: replication from that DSM turns `failed` while it is set.
- DSM `job-missing`: the DSM's master replication job (SQL Server Agent job
  `AuroraReplication`) is deleted, as from msdb; `clear` creates it again. Its
  replication cannot be read then, as on SQL Server.
- DSM `unreachable`: the DSM stops answering (its database file is taken away until
  `clear`), so every ODBC connection to it fails.
- side `down` (`amsm lab fault --side X down`): the whole side is lost at once, as in a
  power cut or a fire: its DSM, SmartBins servers, NAS heads and bridge K2 server stop
  answering. `up` brings them all back as they were (their faults cleared). Clients,
  Browse and the Control Point are shared by both sides and keep answering.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from lab import LabError
from lab.dsm import AGENT_JOBS, dsm_path, set_agent_jobs
from lab.media import clip_paths
from lab.state import NEVER, LabState, Txn, dsm_faults

HOST_FAULTS = (
    "unreachable",
    "no-reboot",
    "slow-reboot",
    "flapping",
    "clock-step",
    "shell-quota",
    "powershell",
    "ingesting",
    "clear",
)
SIDE_FAULTS = ("down", "up")
DSM_FAULTS = ("replication-fails", "job-missing", "unreachable", "clear")
_DB_SUFFIXES = ("", "-wal", "-shm")


def set_fault(directory: str | Path, target: str, kind: str, seconds: float | None = None) -> str:
    """Set or clear a fault on a lab host or DSM; returns a sentence."""
    state = LabState(directory)
    with state.transaction() as txn:
        dsms = {
            str(info["dsm"]).lower(): str(info["dsm"]) for info in txn.topology["sides"].values()
        }
        if target.lower() in dsms:
            side = next(
                s
                for s, info in txn.topology["sides"].items()
                if str(info["dsm"]).lower() == target.lower()
            )
            return _dsm_fault(txn, dsms[target.lower()], kind, dsm_path(directory, side))
        doc = txn.host(target)
        if doc is None:
            known = ", ".join(sorted(dsms.values()))
            raise LabError(f"no lab host or DSM named {target!r} (DSMs: {known})")
        return _host_fault(txn, doc, kind, seconds)


def side_hosts(txn: Txn, side: str) -> list[str]:
    """The hosts that belong to one side (not the shared clients, Browse, Control Point)."""
    info = txn.topology["sides"][side]
    return [*info["smartbins"], info["nas_cifs"], info["nas_ftp"], info["bridge"]]


def set_side_fault(directory: str | Path, side: str, kind: str) -> str:
    """Take a whole side down (`down`) or bring it back (`up`); returns a sentence."""
    side = side.upper()
    if side not in ("X", "Y"):
        raise LabError(f"a side is X or Y, not {side!r}")
    if kind not in SIDE_FAULTS:
        raise LabError(f"a side fault is one of {', '.join(SIDE_FAULTS)}, not {kind!r}")
    state = LabState(directory)
    with state.transaction() as txn:
        hosts = side_hosts(txn, side)
        for name in hosts:
            doc = txn.require_host(name)
            if kind == "down" and (doc.get("fault") or {}).get("kind") == "unreachable":
                continue  # down already: saying it twice changes nothing
            _host_fault(txn, doc, "unreachable" if kind == "down" else "clear", None)
        dsm = str(txn.topology["sides"][side]["dsm"])
        fault = "unreachable" if kind == "down" else "clear"
        _dsm_fault(txn, dsm, fault, dsm_path(directory, side))
    listed = ", ".join([dsm, *hosts])
    if kind == "down":
        return f"side {side} down: {listed} do not answer (bring it back: --side {side} up)"
    return f"side {side} up: {listed} answer again"


def _dsm_fault(txn: Txn, dsm: str, kind: str, db: Path) -> str:
    if kind not in DSM_FAULTS:
        raise LabError(f"a DSM fault is one of {', '.join(DSM_FAULTS)}, not {kind!r}")
    faults = dsm_faults(txn)
    if kind == "job-missing" and not db.exists():
        raise LabError(f"{dsm} does not answer (unreachable): clear that first")
    if kind == "unreachable":
        _take_away(db)
    elif kind == "clear" and faults.get(dsm) == "unreachable":
        _bring_back(db)
    if kind == "job-missing":
        set_agent_jobs(db, AGENT_JOBS[1:])
    elif kind == "clear" and db.exists():
        set_agent_jobs(db, AGENT_JOBS)  # whichever fault came last
    if kind == "clear":
        faults.pop(dsm, None)
    else:
        faults[dsm] = kind
    txn.conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('dsm_faults', ?)", (json.dumps(faults),)
    )
    return f"{dsm}: " + ("faults cleared" if kind == "clear" else f"{kind} set")


def _take_away(db: Path) -> None:
    """Move the DSM's files aside (WAL folded in first), so connections fail."""
    if not db.exists():
        return
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in _DB_SUFFIXES:
        part = Path(f"{db}{suffix}")
        if part.exists():
            part.rename(f"{db}{suffix}.down")


def _bring_back(db: Path) -> None:
    for suffix in _DB_SUFFIXES:
        part = Path(f"{db}{suffix}.down")
        if part.exists():
            part.rename(f"{db}{suffix}")


def _host_fault(txn: Txn, doc: dict[str, Any], kind: str, seconds: float | None) -> str:
    name = doc["name"]
    if kind not in HOST_FAULTS:
        raise LabError(f"a host fault is one of {', '.join(HOST_FAULTS)}, not {kind!r}")
    fault = doc.get("fault") or {}
    if kind == "clear":
        doc["fault"] = None
        crashes = txn.crashes()
        if crashes.pop(str(name).lower(), None) is not None:
            txn.set_crashes(crashes)
        until = doc.get("down_until")
        if fault.get("kind") == "unreachable" and until is not None and until >= NEVER:
            doc["down_until"] = txn.now()
            doc["resume_without_boot"] = not fault.get("was_down")
        elif until is not None and until >= NEVER:
            doc["down_until"] = txn.now()  # a restart that hung: it boots now
        return f"{name}: faults cleared"
    if kind == "clock-step":
        if seconds is None or seconds == 0:
            raise LabError("clock-step needs SECONDS, the step (negative: back), not 0")
        # Not a fault of the host's own: a clear leaves its clock where it was set.
        doc["clock_offset"] = float(doc.get("clock_offset", 0)) + float(seconds)
        return f"{name}: clock stepped {seconds:+g} s (now {doc['clock_offset']:+g} s off)"
    if kind == "shell-quota":
        if seconds is None or seconds < 1 or seconds != int(seconds):
            raise LabError(
                "shell-quota needs N, the shells a user may have (a whole number, 1 or more)"
            )
        if doc.get("winrm") is None:
            raise LabError(f"{name} is not reached over WinRM (no WinRM service settings)")
        doc["winrm"]["max_shells_per_user"] = int(seconds)
        return f"{name}: MaxShellsPerUser {int(seconds)}"
    if kind == "powershell":
        if seconds is None or not 1 <= seconds < 10:
            raise LabError("powershell needs the version, e.g. 4.0 or 5.1")
        version = f"{seconds:.1f}"
        doc["powershell"] = version
        return f"{name}: PowerShell {version}"
    if kind == "slow-reboot":
        if seconds is None or seconds <= 0:
            raise LabError("slow-reboot needs SECONDS greater than 0")
        doc["fault"] = {"kind": kind, "seconds": float(seconds)}
        return f"{name}: restarts take {seconds:g} s"
    if kind == "flapping":
        up = 1.0 if seconds is None else seconds
        if up <= 0:
            raise LabError("flapping needs SECONDS (how long each boot lasts) greater than 0")
        doc["fault"] = {"kind": kind, "seconds": float(up)}
        return f"{name}: from its next restart on, every boot lasts {up:g} s (a boot loop)"
    if kind == "ingesting":
        doc["fault"] = {"kind": kind, "parts": clip_paths("{bin}", "{clip}"), "count": 0}
        return f"{name}: a new clip lands in each SmartBin it lists, right after the listing"
    if kind == "unreachable":
        doc["fault"] = {"kind": kind, "was_down": doc.get("down_until") is not None}
        doc["down_until"] = NEVER
        return f"{name}: unreachable (its port is closed)"
    doc["fault"] = {"kind": kind}
    return f"{name}: the next restart will not come back"
