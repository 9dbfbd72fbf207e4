"""The lab's device state: `DIR/lab.db`, one SQLite file shared by every lab process.

`amsm lab serve` and the short `amsm lab ...` commands (the operator's hands) edit it
directly, each change in one `BEGIN IMMEDIATE` transaction, so concurrent SSH
sessions and hands never lose each other's writes. WAL mode lets readers run
while a writer works; the busy timeout makes a writer wait instead of failing.

Tables:
- `meta(key, value)`: `topology` (JSON: pair, sides, control point, device names)
  and `reboot_seconds`;
- `hosts(key, name, down_until, doc)`: one JSON document per Windows host (kind,
  side, services, processes, registry, files, iscsi, mounted_v, boot_time,
  down_until, autostart); `down_until` is mirrored in its own indexed column so the
  serve loop finds rebooting hosts without reading every document;
- `volumes(side, key, path, content, mtime)`: the files of each side's V: volume
  (`key` is the lower-cased path: Windows paths are case-insensitive; `mtime` the
  last write time, seconds since the epoch);
- `dirs(side, key, path, target, link_type)`: folders that exist on their own (a
  folder whose files were deleted stays, as on NTFS) and reparse points: a
  junction or directory symbolic link at `path` whose `target` is another folder of
  the same volume (`link_type` 'Junction' or 'SymbolicLink'). Any other folder is
  implied by the files below it.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab import LabError
from lab.powershell import (
    WRITE_FILTER_TOOLS,
    ScriptResult,
    is_up,
    iscsi_doc,
    new_session,
    offers,
    parse_script,
    portal_side,
    run_script,
)

DB_NAME = "lab.db"
BUSY_TIMEOUT_SECONDS = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosts (
  key TEXT PRIMARY KEY, name TEXT NOT NULL, down_until REAL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS hosts_down ON hosts (down_until) WHERE down_until IS NOT NULL;
CREATE TABLE IF NOT EXISTS volumes (
  side TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL,
  mtime REAL NOT NULL DEFAULT 0, PRIMARY KEY (side, key));
CREATE TABLE IF NOT EXISTS dirs (
  side TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, target TEXT,
  link_type TEXT, PRIMARY KEY (side, key));
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a lab.db made before folders, links and write times up to this schema."""
    cols = {row[1] for row in conn.execute("PRAGMA table_info(volumes)")}
    try:
        if "mtime" not in cols:
            conn.execute("ALTER TABLE volumes ADD COLUMN mtime REAL NOT NULL DEFAULT 0")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dirs (side TEXT NOT NULL, key TEXT NOT NULL, "
            "path TEXT NOT NULL, target TEXT, link_type TEXT, PRIMARY KEY (side, key))"
        )
    except sqlite3.OperationalError as e:  # another thread migrated first
        if "duplicate column" not in str(e):
            raise


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _folder_range(folder: str) -> tuple[str, str]:
    """Key range of everything inside `folder`: 'v:\\a\\' <= key < 'v:\\a]'."""
    prefix = folder.rstrip("\\").lower() + "\\"
    return prefix, prefix[:-1] + chr(ord("\\") + 1)


class Txn:
    """One transaction on lab.db; also the `World` the interpreter sees.

    Host documents are cached for the transaction and written back on commit
    only when they changed.
    """

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self._now = now
        self._docs: dict[str, dict[str, Any]] = {}
        self._originals: dict[str, str] = {}
        self._meta: dict[str, Any] = {}

    # -- meta ------------------------------------------------------------------------------
    def meta(self, key: str) -> Any:
        if key not in self._meta:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise LabError(f"lab.db has no {key!r}; run `amsm lab init` again")
            self._meta[key] = json.loads(row[0])
        return self._meta[key]

    @property
    def topology(self) -> dict[str, Any]:
        topo: dict[str, Any] = self.meta("topology")
        return topo

    @property
    def reboot_seconds(self) -> float:
        return float(self.meta("reboot_seconds"))

    def crashes(self) -> dict[str, float]:
        """{host key: when it restarts by itself} of the hosts in a boot loop."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'crashes'").fetchone()
        return {str(k): float(v) for k, v in json.loads(row[0]).items()} if row else {}

    def set_crashes(self, crashes: dict[str, float]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('crashes', ?)", (json.dumps(crashes),)
        )

    # -- hosts ------------------------------------------------------------------------------
    def now(self) -> float:
        return self._now

    def host(self, name: str) -> dict[str, Any] | None:
        key = name.lower()
        if key not in self._docs:
            row = self.conn.execute("SELECT doc FROM hosts WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            self._originals[key] = row[0]
            self._docs[key] = json.loads(row[0])
        return self._docs[key]

    def require_host(self, name: str) -> dict[str, Any]:
        doc = self.host(name)
        if doc is None:
            raise LabError(f"the lab has no host {name!r}")
        return doc

    def host_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM hosts ORDER BY key")]

    def flush(self) -> None:
        for key, doc in self._docs.items():
            text = _dump(doc)
            if text != self._originals.get(key):
                self.conn.execute(
                    "UPDATE hosts SET doc = ?, down_until = ? WHERE key = ?",
                    (text, doc.get("down_until"), key),
                )
                self._originals[key] = text

    # -- the pair -----------------------------------------------------------------------------
    def target_side(self, iqn: str) -> str | None:
        for side, info in self.topology["sides"].items():
            if iqn.lower() in {str(t).lower() for t in side_targets(info)}:
                return str(side)
        return None

    def portal_target(self, portal: str) -> str | None:
        """The target the iSCSI portal at `portal` serves: a side's (its `portal_targets`,
        else its one `iqn`), or an iSCSI server outside the pair (`other_iscsi`)."""
        key = portal.lower()
        for info in self.topology["sides"].values():
            served = {str(p).lower(): str(t) for p, t in (info.get("portal_targets") or {}).items()}
            if key in served:
                return served[key]
            if key in (str(p).lower() for p in info.get("portals", [])):
                return str(info["iqn"])
        other = {
            str(p).lower(): str(t) for p, t in (self.topology.get("other_iscsi") or {}).items()
        }
        return other.get(key)

    def portal_answers(self, portal: str) -> bool:
        """Whether anything answers iSCSI at `portal`: a side's portal while its bridge is
        up and that portal was not killed (`amsm lab fault PORTAL unreachable`); a server
        outside the pair always."""
        side = portal_side(self, portal)
        if side is None:
            return self.portal_target(portal) is not None
        bridge = self.bridge(side)
        if bridge is None or not is_up(bridge):
            return False
        dead = {str(p).lower() for p in bridge.get("dead_portals", [])}
        return portal.lower() not in dead

    def bridge(self, side: str) -> dict[str, Any] | None:
        info = self.topology["sides"].get(side)
        return self.host(info["bridge"]) if info else None

    def portals(self, side: str) -> list[str]:
        info = self.topology["sides"].get(side) or {}
        return [str(p) for p in info.get("portals", [])]

    def iqn(self, side: str) -> str:
        return str(self.topology["sides"][side]["iqn"])

    def fsnameservers(self, side: str) -> list[str]:
        info = self.topology["sides"].get(side) or {}
        return [str(n) for n in info.get("fsnameservers", [])]

    # -- volumes -------------------------------------------------------------------------------
    def volume_read(self, side: str, path: str) -> str | None:
        row = self.conn.execute(
            "SELECT content FROM volumes WHERE side = ? AND key = ?", (side, path.lower())
        ).fetchone()
        return None if row is None else str(row[0])

    def volume_write(self, side: str, path: str, content: str) -> None:
        self.conn.execute(
            "INSERT INTO volumes (side, key, path, content, mtime) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (side, key) DO UPDATE SET path = excluded.path, "
            "content = excluded.content, mtime = excluded.mtime",
            (side, path.lower(), path, content, self._now),
        )

    def volume_delete(self, side: str, path: str) -> None:
        cur = self.conn.execute(
            "DELETE FROM volumes WHERE side = ? AND key = ?", (side, path.lower())
        )
        if cur.rowcount:
            # The folder outlives its last file (NTFS has real folders; the lab's are
            # implied by files unless recorded).
            folder = path.rpartition("\\")[0]
            if len(folder) > 2 and not self.volume_has_folder(side, folder):
                self.dir_add(side, folder)

    def volume_has_folder(self, side: str, folder: str) -> bool:
        key = folder.rstrip("\\").lower()
        if self.conn.execute(
            "SELECT 1 FROM dirs WHERE side = ? AND key = ?", (side, key)
        ).fetchone():
            return True
        low, high = _folder_range(folder)
        for table in ("volumes", "dirs"):
            row = self.conn.execute(
                f"SELECT 1 FROM {table} WHERE side = ? AND key >= ? AND key < ? LIMIT 1",
                (side, low, high),
            ).fetchone()
            if row is not None:
                return True
        return False

    def volume_list(self, side: str, folder: str) -> list[str]:
        low, high = _folder_range(folder)
        rows = self.conn.execute(
            "SELECT path FROM volumes WHERE side = ? AND key >= ? AND key < ? ORDER BY key",
            (side, low, high),
        )
        return [str(p) for (p,) in rows]

    def volume_stat(self, side: str, path: str) -> tuple[int, float] | None:
        """(size in bytes as UTF-8, last write time) of a file, or None."""
        row = self.conn.execute(
            "SELECT content, mtime FROM volumes WHERE side = ? AND key = ?", (side, path.lower())
        ).fetchone()
        return None if row is None else (len(str(row[0]).encode("utf-8")), float(row[1]))

    def volume_delete_tree(self, side: str, folder: str) -> int:
        low, high = _folder_range(folder)
        cur = self.conn.execute(
            "DELETE FROM volumes WHERE side = ? AND key >= ? AND key < ?", (side, low, high)
        )
        self.conn.execute(
            "DELETE FROM dirs WHERE side = ? AND ((key >= ? AND key < ?) OR key = ?)",
            (side, low, high, folder.rstrip("\\").lower()),
        )
        return int(cur.rowcount)

    # -- folders and reparse points -------------------------------------------------------------
    def dir_add(
        self, side: str, folder: str, target: str | None = None, link_type: str | None = None
    ) -> None:
        self.conn.execute(
            "INSERT INTO dirs (side, key, path, target, link_type) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (side, key) DO UPDATE SET path = excluded.path, "
            "target = excluded.target, link_type = excluded.link_type",
            (side, folder.rstrip("\\").lower(), folder.rstrip("\\"), target, link_type),
        )

    def dir_delete(self, side: str, folder: str) -> None:
        self.conn.execute(
            "DELETE FROM dirs WHERE side = ? AND key = ?", (side, folder.rstrip("\\").lower())
        )

    def volume_links(self, side: str) -> dict[str, tuple[str, str, str]]:
        """{lower-cased link path: (path, target, link type)} of the side's reparse points."""
        rows = self.conn.execute(
            "SELECT key, path, target, link_type FROM dirs WHERE side = ? AND target IS NOT NULL",
            (side,),
        )
        return {str(k): (str(p), str(t), str(lt)) for k, p, t, lt in rows}

    def volume_dirs(self, side: str, folder: str) -> list[str]:
        """Recorded folders and links below `folder` (paths)."""
        low, high = _folder_range(folder)
        rows = self.conn.execute(
            "SELECT path FROM dirs WHERE side = ? AND key >= ? AND key < ? ORDER BY key",
            (side, low, high),
        )
        return [str(p) for (p,) in rows]

    def volume_files(self, side: str) -> dict[str, str]:
        rows = self.conn.execute(
            "SELECT path, content FROM volumes WHERE side = ? ORDER BY key", (side,)
        )
        return {str(p): str(c) for p, c in rows}


def side_targets(info: dict[str, Any]) -> list[str]:
    """A side's target names in the topology: `iqn`, then those its portals serve."""
    out = [str(info["iqn"])]
    for t in (info.get("portal_targets") or {}).values():
        if str(t).lower() not in {o.lower() for o in out}:
            out.append(str(t))
    return out


def boot(txn: Txn, doc: dict[str, Any]) -> None:
    """The host comes up: new boot time, autostart processes, iSCSI logins and V:
    (iscsi_boot)."""
    doc["down_until"] = None
    if doc.pop("resume_without_boot", False):
        return  # the network came back; the machine never went down
    doc["boot_time"] = int(txn.now() * 1000)
    providers = float(doc.get("providers_delay") or 0)
    if providers > 0:
        # `amsm lab fault HOST slow-providers S`: WMI and the iSCSI initiator service
        # start as services of their own, beside sshd and WinRM (no dependency between
        # them), so for a while after a boot the host answers and its WMI queries fail
        # (lab/powershell/wmi.py PROVIDER_LOAD_FAILURE). How long is a site's: assumed.
        doc["providers_at"] = txn.now() + providers
    write_filter_boot(doc)
    fault = doc.get("fault") or {}
    if fault.get("kind") == "flapping":
        # A boot loop: this boot does not last; the serve loop restarts it when due.
        crashes = txn.crashes()
        crashes[str(doc["name"]).lower()] = txn.now() + float(fault.get("seconds", 1.0))
        txn.set_crashes(crashes)
    doc["processes"] = list(doc.get("autostart", []))
    if doc.get("iscsi") is not None:
        iscsi_boot(txn, doc)


# -- write filters -------------------------------------------------------------------------
# What a write filter keeps of the system volume C: (the host document's registry and
# files; the iSCSI initiator's registered portals and persistent logins, which Windows
# keeps in the registry, HKLM\SYSTEM: *assumed* to be on C: as the rest of the registry).
def _system_volume(doc: dict[str, Any]) -> dict[str, Any]:
    iscsi = doc.get("iscsi") or {}
    return copy.deepcopy(
        {
            "registry": doc.get("registry") or {},
            "files": doc.get("files") or {},
            "portals": iscsi.get("portals", []),
            "persistent": iscsi.get("persistent", []),
        }
    )


def write_filter_on(doc: dict[str, Any], kind: str) -> None:
    """A write filter (UWF, FBWF or EWF) that protects C: from now on, as on a K2 client
    shipped with it on (K2-FACTS.md, "Write filter"): its manager tool in System32 and
    the volume as it is now, which every restart comes back to."""
    tool = WRITE_FILTER_TOOLS[kind]
    doc.setdefault("files", {})[tool] = ""
    doc["write_filter"] = {
        "kind": kind,
        "current": True,
        "next": True,
        "volumes": ["C:"],
        "kept": _system_volume(doc),
    }


def write_filter_off(doc: dict[str, Any]) -> None:
    """The filter removed (as an uninstall would): nothing is discarded any more."""
    wf = doc.pop("write_filter", None)
    if wf:
        (doc.get("files") or {}).pop(WRITE_FILTER_TOOLS[wf["kind"]], None)


def write_filter_boot(doc: dict[str, Any]) -> None:
    """A boot under a write filter. While the filter protects a volume, every write to it
    goes to an overlay that the next restart discards (Microsoft Learn, "Unified Write
    Filter (UWF) feature": "all changes are discarded when the device restarts" unless
    committed or excluded; FBWF and EWF alike, Windows Embedded Standard 7 docs). Turning
    the filter on or off takes effect at the next boot (UWF_Filter.Enable / Disable:
    "enables/disables UWF on the next restart"): `next` becomes `current` here. Commits
    and exclusions are not modelled: what a protected session wrote is all lost."""
    wf = doc.get("write_filter")
    if not wf:
        return
    if wf.get("current") and "C:" in wf.get("volumes", []):
        kept = copy.deepcopy(wf["kept"])
        doc["registry"], doc["files"] = kept["registry"], kept["files"]
        if doc.get("iscsi") is not None:
            doc["iscsi"]["portals"] = kept["portals"]
            doc["iscsi"]["persistent"] = kept["persistent"]
    wf["current"] = bool(wf.get("next"))
    # What this boot starts from is what the next protected session comes back to.
    wf["kept"] = _system_volume(doc)


# -- iSCSI and SNFS at boot ------------------------------------------------------------------
def iscsi_boot(txn: Txn, doc: dict[str, Any]) -> None:
    """The initiator and SNFS at boot.

    The initiator discovers the targets of every registered portal that answers, then
    logs in again to every persistent login (Microsoft Learn, Register-IscsiSession:
    "Once an iSCSI session is registered, it automatically attempts to reconnect on
    restart"); sessions that were not persistent are gone. A login whose portal does not
    answer gets no session (a real initiator keeps retrying; here the next boot tries
    again). SNFS then mounts V: from the file system its fsnameservers file names, and
    only if the disks of that file system are there: the side whose name servers the
    file lists, over a session to that side's target (StorNext: a SAN client mounts a
    file system only when it sees all its disks).
    """
    iscsi = iscsi_doc(doc)
    discovered: list[str] = []
    for portal in iscsi["portals"]:
        side = portal_side(txn, portal)
        bridge = txn.bridge(side) if side else None
        target = txn.portal_target(portal)
        if (
            target is not None
            and txn.portal_answers(portal)
            and (bridge is None or offers(bridge, doc))
            and target.lower() not in (d.lower() for d in discovered)
        ):
            discovered.append(target)
    iscsi["discovered"] = discovered
    iscsi["sessions"] = []
    doc["mounted_v"] = None
    doc.pop("mount_at", None)
    delay = float(doc.get("mount_delay") or 0)
    if delay > 0:
        # A slow start (`amsm lab fault HOST slow-mount S`): the host answers before its
        # logins and V: are there (the initiator service and StorNext start beside
        # sshd/WinRM, which do not depend on them: Microsoft Learn,
        # SetupPersistentIScsiDevices, "a service that is dependent on data stored on a
        # persistent volume ... should be configured to have a dependency on the iSCSI
        # service"; StorNext reads fsnameservers when its services start, K2-FACTS.md).
        # The logins are made when the first command after S seconds arrives
        # (LabState.run_script: mount_due).
        doc["mount_at"] = txn.now() + delay
        return
    iscsi_login(txn, doc)


def mount_due(txn: Txn, doc: dict[str, Any]) -> None:
    """Finish a slow start whose time has come: the logins, then V:."""
    at = doc.get("mount_at")
    if at is not None and float(at) <= txn.now():
        doc.pop("mount_at", None)
        iscsi_login(txn, doc)


def iscsi_login(txn: Txn, doc: dict[str, Any]) -> None:
    """The initiator's persistent logins at boot, then SNFS's mount of V:."""
    iscsi = iscsi_doc(doc)
    # A persistent login is a record of its own, kept apart from sessions (Microsoft
    # Learn, ISCSI_Persistent_Login WMI class: the initiator "automatically establish[es]
    # persistent logon connections as soon as [it is] loaded"): each one whose portal
    # answers and serves its target becomes a session; one whose portal is silent stays
    # a login without a session, and is tried again at the next boot.
    for login in iscsi["persistent"]:
        iqn, portal = str(login.get("iqn", "")), str(login.get("portal", ""))
        served = txn.portal_target(portal)
        if served is None or served.lower() != iqn.lower() or not txn.portal_answers(portal):
            continue
        if iqn.lower() not in (s["iqn"].lower() for s in iscsi["sessions"]):
            new_session(doc, iqn, portal, persistent=True)
    doc["mounted_v"] = snfs_mount(txn, doc)


def portals_lost(txn: Txn, portals: list[str]) -> None:
    """The iSCSI portals `portals` stop answering: every client's sessions through them
    end (the initiator cannot recover a connection to a portal that is gone; it gives
    the session up after its link-down time, which the lab does not wait for). Their
    persistent logins stay: a login is not a session (ISCSI_Persistent_Login WMI class),
    and the initiator makes it again at the next boot once the portal answers."""
    lost = {p.lower() for p in portals}
    for name in txn.host_names():
        doc = txn.host(name)
        if doc is None or doc.get("iscsi") is None:
            continue
        iscsi = iscsi_doc(doc)
        kept = [s for s in iscsi["sessions"] if str(s.get("portal", "")).lower() not in lost]
        if len(kept) != len(iscsi["sessions"]):
            iscsi["sessions"] = kept


def snfs_mount(txn: Txn, doc: dict[str, Any]) -> str | None:
    """Which side's V: the SNFS client mounts: the side its fsnameservers file lists,
    when a session to that side's target is up."""
    path = str(txn.topology.get("devices", {}).get("snfs_nameservers_file", ""))
    files: dict[str, str] = doc.get("files") or {}
    text = next((v for k, v in files.items() if k.lower() == path.lower()), None)
    if text is None:
        return None
    listed = [ln.split("#", 1)[0].strip().lower() for ln in text.splitlines()]
    listed = [n for n in listed if n]
    connected = {s["iqn"].lower() for s in iscsi_doc(doc)["sessions"]}
    for side in ("X", "Y"):
        servers = [n.lower() for n in txn.fsnameservers(side)]
        targets = {t.lower() for t in side_targets(txn.topology["sides"][side])}
        if servers and listed == servers and targets & connected:
            return side
    return None


class HostDown(LabError):
    """A command reached a host that is down (a session that raced its going down)."""


# A host that will not come back by itself (a fault) is "down until" far in the future.
NEVER = 4102444800.0  # 2100-01-01


def reboot_time(doc: dict[str, Any], default: float) -> float:
    """How long a restart takes on this host: its fault, if any, decides."""
    fault = doc.get("fault") or {}
    if fault.get("kind") == "no-reboot":
        return NEVER
    if fault.get("kind") == "slow-reboot":
        return float(fault.get("seconds", default))
    return default


# Cmdlets that change a device; the journal records each one that succeeded.
CHANGES = frozenset(
    {
        "Start-Service", "Stop-Service", "Stop-Process", "Set-ItemProperty", "Copy-Item",
        "Rename-Item", "Remove-Item", "Restart-Computer", "Disconnect-IscsiTarget",
        "Connect-IscsiTarget", "New-IscsiTargetPortal", "Update-IscsiTargetPortal",
        "Register-IscsiSession", "Unregister-IscsiSession", "Set-Content", "iscsicli",
        "Invoke-CimMethod", "ServiceController.Start",
    }
)  # fmt: skip
JOURNAL_TABLE = (
    "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, ts REAL NOT NULL, "
    "host TEXT NOT NULL, cmdlet TEXT NOT NULL, statement TEXT NOT NULL)"
)


class LabState:
    """Handle on `DIR/lab.db`, safe from any thread.

    Each thread keeps one connection for its transactions, and down_hosts() one
    more (for the serve loop's frequent polling); close() releases them all.
    """

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).resolve()
        self.db = self.dir / DB_NAME
        # The serve loop polls down_hosts() ten times a second: keep one connection.
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        # Each thread keeps its transaction connection: opening one per script cost
        # the lab more than most scripts when hundreds of hosts are busy at once.
        self._local = threading.local()
        self._opened: list[tuple[sqlite3.Connection, threading.Lock]] = []

    def close(self) -> None:
        """Close the connections; one that a thread is still using (a script that goes
        on after its server was cancelled) is left to that thread: closing it under
        the thread would crash the process."""
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for conn, busy in opened:
            if busy.acquire(blocking=False):
                try:
                    conn.close()
                finally:
                    busy.release()

    def _thread_connection(self) -> tuple[sqlite3.Connection, threading.Lock]:
        local = self._local
        kept: tuple[sqlite3.Connection, threading.Lock] | None = getattr(local, "kept", None)
        if kept is None:
            kept = local.kept = (self.connect(), threading.Lock())
            with self._reader_lock:
                self._opened.append(kept)
        return kept

    def connect(self) -> sqlite3.Connection:
        if not self.db.exists():
            raise LabError(f"{self.db} does not exist; run `amsm lab init --dir {self.dir}` first")
        conn = sqlite3.connect(
            self.db, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception."""
        conn, busy = self._thread_connection()
        with busy:
            conn.execute("BEGIN IMMEDIATE")
            txn = Txn(conn, time.time())
            try:
                yield txn
                txn.flush()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # the kept connection must not stay in this one
                    conn.execute("ROLLBACK")
                raise

    # -- creation (lab init) ------------------------------------------------------------------
    def create(
        self,
        topology: dict[str, Any],
        reboot_seconds: float,
        hosts: list[dict[str, Any]],
        volumes: dict[str, dict[str, str]],
    ) -> None:
        """Write a fresh lab.db (the caller removed any old one)."""
        conn = sqlite3.connect(self.db, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("topology", json.dumps(topology)),
                    ("reboot_seconds", json.dumps(reboot_seconds)),
                ],
            )
            conn.executemany(
                "INSERT INTO hosts (key, name, down_until, doc) VALUES (?, ?, ?, ?)",
                [(h["name"].lower(), h["name"], h.get("down_until"), _dump(h)) for h in hosts],
            )
            conn.executemany(
                "INSERT INTO volumes (side, key, path, content, mtime) VALUES (?, ?, ?, ?, ?)",
                [
                    (side, path.lower(), path, content, time.time())
                    for side, files in volumes.items()
                    for path, content in files.items()
                ],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    # -- what the SSH servers and the serve loop ask -------------------------------------------
    def run_script(
        self, name: str, script: str, on_reboot: Callable[[], None] | None = None
    ) -> ScriptResult:
        """Run a PowerShell script on host `name` in one transaction.

        A host that is down raises HostDown (its listener should be closed already;
        this covers a session that raced the reboot): the server then drops the
        host's connections, as a host going down does. After Restart-Computer the host
        is marked down for `reboot_seconds` from now, and `on_reboot` is called
        before that commits.
        """
        with self.transaction() as txn:
            doc = txn.require_host(name)
            if not is_up(doc):
                raise HostDown(f"{name} is down")
            mount_due(txn, doc)
            result = run_script(script, doc, txn)
            if result.exit_status == 0:
                self._journal(txn, name, script)
            if result.reboot:
                doc["down_until"] = txn.now() + reboot_time(doc, txn.reboot_seconds)
                if on_reboot is not None:
                    on_reboot()
            return result

    def note_stdin_left_open(self, name: str) -> None:
        """A command on `name` ran without its client closing stdin (lab/ssh.py)."""
        with self.transaction() as txn:
            doc = txn.host(name)
            if doc is not None:
                doc["stdin_left_open"] = int(doc.get("stdin_left_open") or 0) + 1

    def _journal(self, txn: Txn, name: str, script: str) -> None:
        """Record every statement that changed the device (for the crash tests: no
        operation that is not idempotent may ever run twice)."""
        rows = [
            (txn.now(), name, changed, st.text)
            for st in parse_script(script)
            if st.commands is not None
            # A change may come later in a pipeline (Get-CimInstance | Invoke-CimMethod).
            for changed in [next((c.name for c in st.commands if c.name in CHANGES), None)]
            if changed is not None
        ]
        if rows:
            txn.conn.execute(JOURNAL_TABLE)
            txn.conn.executemany(
                "INSERT INTO journal (ts, host, cmdlet, statement) VALUES (?, ?, ?, ?)", rows
            )

    def journal(self) -> list[tuple[float, str, str, str]]:
        """(time, host, cmdlet, statement) of every change, oldest first."""
        with self.transaction() as txn:
            txn.conn.execute(JOURNAL_TABLE)
            rows = txn.conn.execute("SELECT ts, host, cmdlet, statement FROM journal ORDER BY id")
            return [(float(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def down_hosts(self) -> dict[str, float]:
        """{host name: down_until} of every host that is down."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = self.connect()
            rows = self._reader.execute(
                "SELECT name, down_until FROM hosts WHERE down_until IS NOT NULL"
            ).fetchall()
        return {str(n): float(u) for n, u in rows}

    def read_host(self, name: str) -> dict[str, Any] | None:
        """One host's document as committed now, read without taking the write lock (a
        listener's settings, read while the hosts' scripts run)."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = self.connect()
            row = self._reader.execute(
                "SELECT doc FROM hosts WHERE key = ?", (name.lower(),)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def crash_due(self) -> list[str]:
        """Restart the hosts of a boot loop whose time is up; returns their names.

        A cheap read first: the serve loop calls this every round.
        """
        with self._reader_lock:
            if self._reader is None:
                self._reader = self.connect()
            row = self._reader.execute("SELECT value FROM meta WHERE key = 'crashes'").fetchone()
        if row is None or not any(float(t) <= time.time() for t in json.loads(row[0]).values()):
            return []
        crashed: list[str] = []
        with self.transaction() as txn:
            crashes = txn.crashes()
            for key, when in list(crashes.items()):
                if when > txn.now():
                    continue
                del crashes[key]
                doc = txn.host(key)
                fault = (doc or {}).get("fault") or {}
                if doc is None or fault.get("kind") != "flapping" or doc.get("down_until"):
                    continue
                doc["down_until"] = txn.now() + reboot_time(doc, txn.reboot_seconds)
                crashed.append(str(doc["name"]))
            txn.set_crashes(crashes)
        return crashed

    def boot_due(self, names: list[str]) -> list[str]:
        """Boot those of `names` whose reboot time has passed, in one transaction.

        Returns the hosts that are up afterwards (booted now, or already up).
        """
        up: list[str] = []
        with self.transaction() as txn:
            docs = [txn.require_host(name) for name in names]
            # Bridges first: a client booting in the same pass mounts V: through them.
            docs.sort(key=lambda d: d.get("kind") != "bridge")
            for doc in docs:
                until = doc.get("down_until")
                if until is not None and float(until) > txn.now():
                    continue
                if until is not None:
                    boot(txn, doc)
                up.append(str(doc["name"]))
        return up

    def read(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(topology, {name: document}) of every host; for tests and status views."""
        with self.transaction() as txn:
            topology = dict(txn.topology)
            docs = {n: dict(txn.require_host(n)) for n in txn.host_names()}
        return topology, docs


# -- DSM faults (lab.faults sets them, lab.dsm's replicator reads them) -------------------
def dsm_faults(txn: Txn) -> dict[str, str]:
    row = txn.conn.execute("SELECT value FROM meta WHERE key = 'dsm_faults'").fetchone()
    return dict(json.loads(row[0])) if row else {}


def read_dsm_faults(state: LabState) -> dict[str, str]:
    conn = state.connect()
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'dsm_faults'").fetchone()
    finally:
        conn.close()
    return dict(json.loads(row[0])) if row else {}
