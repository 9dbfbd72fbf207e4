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
  puts it back. It then lacks the cmdlets that came later (lab/powershell/interpreter.py
  CMDLET_SINCE); its other differences are not modelled.
- `uwf`, `fbwf`, `ewf`: the client runs that write filter on C: from now on (its manager
  tool in C:\Windows\System32; UWF answers its WMI classes): every restart brings C:
  (registry, files, the iSCSI initiator's portals and persistent logins) back to what it
  was when the filter came on or at the last boot (lab/state.py write_filter_boot).
  `clear` removes the filter.
- `slow-mount S`: after each boot the client's iSCSI logins and V: come S seconds after
  it answers (lab/state.py iscsi_boot); `clear` ends it.
- `slow-providers S`: for S seconds after each boot the host answers over SSH/WinRM but
  its WMI queries (Get-CimInstance, Get-WmiObject) and the iSCSI cmdlets (CIM classes
  served through WMI) fail with WMI's "Provider load failure"
  (WBEM_E_PROVIDER_LOAD_FAILURE, 0x80041013: Microsoft Learn, WbemErrorEnum), as while
  the Winmgmt service and the iSCSI initiator service (MSiSCSI), which start beside sshd
  and WinRM, are still starting (lab/state.py boot); `clear` ends it.
- `unrelated-disk` (a client): the client also holds an iSCSI disk that is not the
  pair's, as a site's archive or scratch disk: a registered portal of an iSCSI server
  outside the pair (`other_iscsi` in the lab's topology), a session to its target and a
  persistent login. A setting: `clear` leaves it.
- a portal `unreachable` (`amsm lab fault 198.51.100.32 unreachable`): one iSCSI portal
  (a TOE of a bridge) stops answering, its bridge and other portals do not; the clients'
  sessions through it end (their persistent logins stay); `clear` brings it back.
- `unkillable`: the host's processes do not exit when killed: Stop-Process succeeds
  (TerminateProcess starts the termination and returns) but the process stays, as one
  that "cannot exit until all pending I/O has been completed or canceled" (Microsoft
  Learn, TerminateProcess): an Aurora application blocked in I/O on V:. Wait-Process
  then times out (lab/powershell/processes.py). Until `clear`.
- `kill-denied`: the host refuses to end its processes: Stop-Process fails with access
  denied (CouldNotStopProcess, PowerShell's Process.cs), as for a protected process;
  with `ids` in the host's fault (a test sets it), only those processes. Until `clear`.
- `exiting`: the host's processes are already ending when stopped (their termination
  waits on I/O): Stop-Process fails with access denied, as TerminateProcess does for a
  process that is terminating (Microsoft Learn, TerminateProcess, remarks), and they
  exit while Wait-Process waits for them (lab/powershell/processes.py).
  Until `clear`.
- `respawns`: a launcher (or a service's recovery actions) starts each killed process
  again at once: Stop-Process succeeds and a new instance, with a new Id, runs. Until
  `clear`.
- DSM `replication-fails`: replication from that DSM turns `failed` while it is set.
- DSM `job-missing`: the DSM's master replication job (SQL Server Agent job
  `AuroraReplication`) is deleted, as from msdb; `clear` creates it again. Its
  replication cannot be read then, as on SQL Server.
- DSM `unreachable`: the DSM stops answering (its files are taken away until `clear`),
  so every ODBC connection to it fails.
- DSM `restoring`: the DSM restores replication WITH NORECOVERY: while it receives
  replication as backup, its replicated database is RESTORING and cannot be opened
  (lab/dsm.py); `clear` recovers it (RESTORE ... WITH RECOVERY).
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
from lab.dsm import AGENT_JOBS, dsm_path, existing_uri, instance_path, set_agent_jobs
from lab.media import clip_paths
from lab.powershell import iscsi_doc, new_session, portal_side
from lab.state import (
    NEVER,
    LabState,
    Txn,
    dsm_faults,
    portals_lost,
    write_filter_off,
    write_filter_on,
)

HOST_FAULTS = (
    "unreachable",
    "no-reboot",
    "slow-reboot",
    "flapping",
    "clock-step",
    "shell-quota",
    "powershell",
    "uwf",
    "fbwf",
    "ewf",
    "slow-mount",
    "slow-providers",
    "unrelated-disk",
    "ingesting",
    "unkillable",
    "kill-denied",
    "exiting",
    "respawns",
    "clear",
)
PORTAL_FAULTS = ("unreachable", "clear")
# The iSCSI server outside the pair that `unrelated-disk` logs a client in to.
UNRELATED_PORTAL = "203.0.113.10"
UNRELATED_TARGET = "iqn.1991-05.com.microsoft:archive-01-scratch-target"
SIDE_FAULTS = ("down", "up")
DSM_FAULTS = ("replication-fails", "job-missing", "unreachable", "restoring", "clear")
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
        if doc is None and portal_side(txn, target) is not None:
            return _portal_fault(txn, target, kind)
        if doc is None:
            known = ", ".join(sorted(dsms.values()))
            raise LabError(f"no lab host or DSM named {target!r} (DSMs: {known}), nor iSCSI portal")
        return _host_fault(txn, doc, kind, seconds)


def _portal_fault(txn: Txn, portal: str, kind: str) -> str:
    """One portal of a side's bridge stops answering (`unreachable`) or answers again."""
    if kind not in PORTAL_FAULTS:
        raise LabError(f"a portal fault is one of {', '.join(PORTAL_FAULTS)}, not {kind!r}")
    side = portal_side(txn, portal)
    bridge = txn.bridge(side) if side else None
    if bridge is None:
        raise LabError(f"no bridge serves the portal {portal}")
    dead = [str(p) for p in bridge.get("dead_portals", []) if str(p).lower() != portal.lower()]
    if kind == "unreachable":
        bridge["dead_portals"] = [*dead, portal]
        portals_lost(txn, [portal])
        return f"portal {portal} ({bridge['name']}): does not answer"
    bridge["dead_portals"] = dead
    return f"portal {portal} ({bridge['name']}): answers again"


def _unrelated_disk(txn: Txn, doc: dict[str, Any]) -> str:
    """Log the client in to a target outside the pair, persistently, as a site would
    for an archive disk (the initiator keeps several targets side by side)."""
    name = doc["name"]
    if doc.get("iscsi") is None:
        raise LabError(f"{name} has no iSCSI initiator in the lab (only clients have)")
    other = dict(txn.topology.get("other_iscsi") or {})
    if other.get(UNRELATED_PORTAL) != UNRELATED_TARGET:
        other[UNRELATED_PORTAL] = UNRELATED_TARGET
        txn.topology["other_iscsi"] = other
        txn.conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'topology'", (json.dumps(txn.topology),)
        )
    iscsi = iscsi_doc(doc)
    if UNRELATED_PORTAL not in iscsi["portals"]:
        iscsi["portals"].append(UNRELATED_PORTAL)
    if UNRELATED_TARGET not in iscsi["discovered"]:
        iscsi["discovered"].append(UNRELATED_TARGET)
    if not any(p["iqn"] == UNRELATED_TARGET for p in iscsi["persistent"]):
        iscsi["persistent"].append({"iqn": UNRELATED_TARGET, "portal": UNRELATED_PORTAL})
    if not any(s["iqn"] == UNRELATED_TARGET for s in iscsi["sessions"]):
        new_session(doc, UNRELATED_TARGET, UNRELATED_PORTAL, persistent=True)
    return f"{name}: also logged in to {UNRELATED_TARGET} at {UNRELATED_PORTAL} (persistently)"


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
    if kind == "job-missing" and not instance_path(db).exists():
        raise LabError(f"{dsm} does not answer (unreachable): clear that first")
    if kind == "unreachable":
        _take_away(instance_path(db))
        _take_away(db)
    elif kind == "clear" and faults.get(dsm) == "unreachable":
        _bring_back(instance_path(db))
        _bring_back(db)
    if kind == "job-missing":
        set_agent_jobs(db, AGENT_JOBS[1:])
    elif kind == "clear" and instance_path(db).exists():
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
    conn = sqlite3.connect(existing_uri(db), uri=True, timeout=10)
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
        doc.pop("mount_delay", None)
        doc.pop("providers_delay", None)
        doc.pop("providers_at", None)
        write_filter_off(doc)
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
    if kind in ("uwf", "fbwf", "ewf"):
        if doc.get("kind") != "client":
            raise LabError(f"{name} is not a client; only clients run a write filter here")
        write_filter_on(doc, kind.upper())
        return f"{name}: {kind.upper()} protects C: (changes are discarded at each restart)"
    if kind == "slow-mount":
        if seconds is None or seconds <= 0:
            raise LabError("slow-mount needs SECONDS greater than 0")
        doc["mount_delay"] = float(seconds)
        return f"{name}: its iSCSI logins and V: come {seconds:g} s after each boot"
    if kind == "slow-providers":
        if seconds is None or seconds <= 0:
            raise LabError("slow-providers needs SECONDS greater than 0")
        doc["providers_delay"] = float(seconds)
        return f"{name}: WMI and the iSCSI cmdlets fail for {seconds:g} s after each boot"
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
    if kind == "unrelated-disk":
        return _unrelated_disk(txn, doc)
    if kind == "unkillable":
        doc["fault"] = {"kind": kind}
        return f"{name}: its processes do not exit when stopped (their termination hangs)"
    if kind == "kill-denied":
        doc["fault"] = {"kind": kind}
        return f"{name}: Stop-Process is refused, access denied"
    if kind == "exiting":
        doc["fault"] = {"kind": kind}
        return f"{name}: its processes are already ending when stopped (access denied, then gone)"
    if kind == "respawns":
        doc["fault"] = {"kind": kind}
        return f"{name}: its processes start again (new Id) as soon as they are stopped"
    if kind == "ingesting":
        doc["fault"] = {"kind": kind, "parts": clip_paths("{bin}", "{clip}"), "count": 0}
        return f"{name}: a new clip lands in each SmartBin it lists, right after the listing"
    if kind == "unreachable":
        doc["fault"] = {"kind": kind, "was_down": doc.get("down_until") is not None}
        doc["down_until"] = NEVER
        if doc.get("kind") == "bridge" and doc.get("side"):
            portals_lost(txn, [str(p) for p in txn.topology["sides"][doc["side"]]["portals"]])
        return f"{name}: unreachable (its port is closed)"
    doc["fault"] = {"kind": kind}
    return f"{name}: the next restart will not come back"
