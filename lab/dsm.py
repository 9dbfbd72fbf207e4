"""The lab's DSMs (Aurora database servers): SQLite files, and the replicator.

Each lab DSM is an instance of two SQLite files, as a SQL Server instance holds several
databases (Microsoft Learn, "System databases"):
- `DIR/dsm-x.db`, the **replicated database** (Aurora's): the assets. The inventory's
  ODBC string names it, as a site's names Aurora's database. Replication copies it
  WHOLE from the master onto the backup, page for page (SQLite's online backup), as
  every whole-database mechanism does: log shipping restores the primary's log backups
  onto the secondary database, backup/restore and snapshot copy all of it (Microsoft
  Learn, "About Log Shipping"; "RESTORE Statements - Arguments"). Whatever lives in it
  on the main overwrites what the backup had.
- `DIR/dsm-x.instance.db`, what replication does not reach: the Agent's jobs and their
  state (msdb: `agent_jobs`, the `dsm` row's replication columns), amsm's own database
  (the mode row, `amsm_mode`), and the catalog of the instance's databases
  (`databases`: name, file, state; sys.databases/sys.master_files).

Replication rules (one pass every 0.25 s, `replicate_once`):
- a DSM that runs replication as *master* fails it (`failed`) when it is not main or
  its peer is main too (never replicate from a backup, never in split mode);
  otherwise, while its peer runs replication as *backup*, the peer's replicated
  database becomes an exact copy of the master's (overwrite, never merge);
- a DSM runs as backup only when told so itself (the worker's `join_as_backup`, over that
  DSM's own connection), as a SQL Server DSM runs its own backup job (docs/site/sqlserver.md): nothing in the lab makes the peer of a master a backup behind the
  worker's back, so a driver that forgot to start the peer fails here too;
- a DSM that runs replication as *backup* whose peer is not (running, master)
  stops (`stopped`, role `none`);
- a backup restores WITH STANDBY by default: its replicated database is readable
  between restores (Microsoft Learn, RESTORE arguments, STANDBY: "allows the database to
  be available for read-only access between transaction log restores"); each lab
  restore is one pass. With the DSM fault `restoring` it restores WITH NORECOVERY: while
  it receives replication its database is RESTORING, and SQL Server refuses to open it
  (msg 927 "cannot be opened. It is in the middle of a restore"; as a login's database,
  msg 4060): the lab's catalog says RESTORING and the file is not at its path, so
  opening it fails (NoCreat). When it no longer receives (or the fault is cleared), the
  database is recovered (RESTORE ... WITH RECOVERY) and ONLINE again.

Logins: SQLite has none, and the SQLite3 ODBC driver ignores UID and PWD, so the lab
cannot refuse a wrong DSM password. It still gives its DSMs one (`DSM_USER`, the
password in `secrets/dsm-password`, credentials `lab-dsm` in the inventory) so that the
worker sends it exactly as it would to SQL Server and the tests can look for it in
every history and log; what the lab cannot prove is that a wrong one is refused.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inventory.models import SqlServerDsm
from lab import write_random_secret
from lab.state import LabState, read_dsm_faults

log = logging.getLogger("amsm.lab.dsm")

INSTANCE_SCHEMA = """
CREATE TABLE dsm (id INTEGER PRIMARY KEY CHECK (id = 1), host TEXT NOT NULL,
  mode TEXT NOT NULL CHECK (mode IN ('main','backup')), mode_since TEXT NOT NULL,
  replication TEXT NOT NULL CHECK (replication IN ('running','stopped','failed')),
  replication_role TEXT NOT NULL CHECK (replication_role IN ('master','backup','none')),
  replication_since TEXT);
CREATE TABLE agent_jobs (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE);
CREATE TABLE databases (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE, file TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ONLINE','RESTORING')));
"""
# amsm's mode row, set through a trigger: a site ties it to Aurora with one (docs/site/sqlserver.md), and a server's row count then is not the row's: a trigger's own
# statements count unless it sets NOCOUNT, and none counts under the server's `user
# options` NOCOUNT (Microsoft Learn, SET NOCOUNT; "Server configuration: user options").
# SQLite's count of an UPDATE of a view through an INSTEAD OF trigger is 0 (sqlite.org,
# sqlite3_changes(): "Only changes made directly by the INSERT, UPDATE or DELETE
# statement are considered"): the driver must not trust it.
MODE_SCHEMA = """
CREATE VIEW amsm_mode AS SELECT mode, mode_since FROM dsm WHERE id = 1;
CREATE TRIGGER amsm_mode_set INSTEAD OF UPDATE ON amsm_mode BEGIN
  UPDATE dsm SET mode = NEW.mode, mode_since = NEW.mode_since WHERE id = 1;
END;
"""
REPLICATED_SCHEMA = """
CREATE TABLE assets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
"""
# The replicated database's name in the lab's catalog (the `sqlserver` profile's
# default `database`).
REPLICATED_DATABASE = "Aurora"
# The SQL Server Agent jobs a DSM replicates with (docs/site/sqlserver.md), by their
# default names: the lab keeps only whether each exists, as msdb.dbo.sysjobs lists the
# jobs (names compared without regard to case, as msdb's default collation does). A
# DSM without one cannot say how it replicates (`amsm lab fault DSM job-missing`); the
# lab's replication itself runs from the `dsm` row.
AGENT_JOBS = (SqlServerDsm().master_job, SqlServerDsm().backup_job)

DSM_USER = "amsm"
DSM_PASSWORD_FILE = "secrets/dsm-password"
BUSY_TIMEOUT_SECONDS = 10.0
REPLICATION_INTERVAL_SECONDS = 0.25
INITIAL_ASSETS = 120
# Where a RESTORING database's file is kept: not at its path, so it cannot be opened.
RESTORING_SUFFIX = ".restoring"
DB_SUFFIXES = ("", "-wal", "-shm")


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dsm_path(directory: str | Path, side: str) -> Path:
    """The side's replicated database (the file the inventory's ODBC string names)."""
    return Path(directory).resolve() / f"dsm-{side.lower()}.db"


def instance_path(replicated: str | Path) -> Path:
    """The instance file beside a DSM's replicated database: `dsm-x.db` ->
    `dsm-x.instance.db` (the lab profile finds it the same way)."""
    p = Path(replicated)
    return p.with_name(f"{p.stem}.instance{p.suffix}")


def write_dsm_password(directory: Path) -> None:
    """A fresh random DSM password (no `;`, `{` or `}`, which the SQLite3 ODBC driver
    would misread: activities/drivers/dsm_profiles.py)."""
    write_random_secret(directory / DSM_PASSWORD_FILE)


def initial_assets(count: int = INITIAL_ASSETS) -> list[tuple[int, str, str]]:
    """The same (id, name, created) rows on both DSMs of a fresh lab."""
    return [(i, f"asset-{i:04d}", "2024-01-01T00:00:00Z") for i in range(1, count + 1)]


def existing_uri(path: str | Path) -> str:
    """`path` as an SQLite URI that opens only a file that is there (sqlite.org, "URI
    Filenames": `mode=rw` "opens the database for reading and writing" and fails if it
    does not exist, where a plain name creates an empty one). A DSM's file taken away
    (lab fault `unreachable`) or moved aside (RESTORING) must stay missing, not be
    recreated empty by a replication pass that raced the fault."""
    return Path(path).resolve().as_uri() + "?mode=rw"


def _connect(path: str | Path, create: bool = False) -> sqlite3.Connection:
    """A connection to an existing file, or (`create`) to a file made if missing."""
    if create:
        return sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    return sqlite3.connect(
        existing_uri(path), uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
    )


def _create_replicated(path: Path, assets: list[tuple[Any, ...]]) -> None:
    conn = _connect(path, create=True)
    try:
        # WAL: the worker reads through ODBC while the replicator writes.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(REPLICATED_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO assets (id, name, created) VALUES (?, ?, ?)", assets)
        conn.execute("COMMIT")
    finally:
        conn.close()


def create_dsm(
    path: str | Path,
    host: str,
    mode: str,
    replication: str,
    role: str,
    assets: list[tuple[int, str, str]],
) -> None:
    """Create one DSM: its replicated database at `path` and its instance file beside it;
    refuses (sqlite3.Error) if either file holds tables."""
    now = iso_now()
    path = Path(path).resolve()
    _create_replicated(path, assets)
    _write_instance(
        instance_path(path), path, (host, mode, now, replication, role, now), AGENT_JOBS
    )


def _write_instance(at: Path, replicated: Path, row: tuple[Any, ...], jobs: Sequence[str]) -> None:
    """Write an instance file at `at`: the `dsm` row (host, mode, mode_since,
    replication, replication_role, replication_since), the Agent jobs, and the catalog
    naming `replicated` ONLINE; refuses (sqlite3.Error) if the file holds tables."""
    conn = _connect(at, create=True)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(INSTANCE_SCHEMA + MODE_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO dsm (id, host, mode, mode_since, replication, replication_role, "
            "replication_since) VALUES (1, ?, ?, ?, ?, ?, ?)",
            row,
        )
        conn.executemany("INSERT INTO agent_jobs (name) VALUES (?)", [(j,) for j in jobs])
        conn.execute(
            "INSERT INTO databases (name, file, state) VALUES (?, ?, 'ONLINE')",
            (REPLICATED_DATABASE, str(replicated)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _row(conn: sqlite3.Connection, schema: str) -> dict[str, Any]:
    cur = conn.execute(
        f"SELECT host, mode, replication, replication_role FROM {schema}.dsm WHERE id = 1"
    )
    row = cur.fetchone()
    if row is None:
        raise sqlite3.DatabaseError(f"{schema}: the dsm table has no row")
    found = conn.execute(
        f"SELECT file, state FROM {schema}.databases WHERE name = ?", (REPLICATED_DATABASE,)
    ).fetchone()
    if found is None:
        raise sqlite3.DatabaseError(f"{schema}: no database {REPLICATED_DATABASE}")
    keys = ("host", "mode", "replication", "role", "file", "state")
    return dict(zip(keys, (*row, *found), strict=True))


def _set_replication(conn: sqlite3.Connection, schema: str, state: str, role: str) -> None:
    conn.execute(
        f"UPDATE {schema}.dsm SET replication = ?, replication_role = ?, "
        "replication_since = ? WHERE id = 1",
        (state, role, iso_now()),
    )


def _where(me: dict[str, Any]) -> Path:
    """Where a DSM's replicated database's file is now."""
    f = Path(me["file"])
    return Path(f"{f}{RESTORING_SUFFIX}") if me["state"] == "RESTORING" else f


def _fold(path: Path) -> None:
    """The WAL folded into the file, so the file alone is the whole database."""
    conn = _connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _move(src: Path, dst: Path) -> None:
    if not src.exists():
        return
    _fold(src)
    for suffix in DB_SUFFIXES:
        part = Path(f"{src}{suffix}")
        if part.exists():
            part.rename(f"{dst}{suffix}")


def _set_database(conn: sqlite3.Connection, schema: str, me: dict[str, Any], state: str) -> None:
    """RESTORING: the file is taken from its path; ONLINE (RESTORE WITH RECOVERY): back."""
    f = Path(me["file"])
    if state == "RESTORING":
        _move(f, Path(f"{f}{RESTORING_SUFFIX}"))
    else:
        _move(Path(f"{f}{RESTORING_SUFFIX}"), f)
    conn.execute(
        f"UPDATE {schema}.databases SET state = ? WHERE name = ?", (state, REPLICATED_DATABASE)
    )
    me["state"] = state


def _same(a: Path, b: Path) -> bool:
    """Whether two databases hold the same, whole (every table, schema and rows)."""
    ca, cb = _connect(a), _connect(b)
    try:
        return list(ca.iterdump()) == list(cb.iterdump())
    finally:
        ca.close()
        cb.close()


def _copy_whole(source: Path, target: Path) -> None:
    """The target database becomes the source's, page for page (sqlite.org, "SQLite
    Online Backup API": the destination's content is replaced by the source's)."""
    src, dst = _connect(source), _connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def replicate_once(
    x_path: str | Path,
    y_path: str | Path,
    failing: frozenset[str] = frozenset(),
    restoring: frozenset[str] = frozenset(),
) -> list[str]:
    """One replication pass over the two DSMs (their replicated databases' paths);
    returns what changed, as sentences.

    `failing`: DSM hosts with the lab fault `replication-fails`; `restoring`: those with
    `restoring` (a backup that restores WITH NORECOVERY).
    """
    conn = _connect(instance_path(x_path))
    changes: list[str] = []
    try:
        # A URI, as the connection's own: ATTACH must not create a file taken away either.
        conn.execute("ATTACH DATABASE ? AS y", (existing_uri(instance_path(y_path)),))
        conn.execute("BEGIN IMMEDIATE")
        try:
            dsms = {"main": _row(conn, "main"), "y": _row(conn, "y")}
            peer_of = {"main": "y", "y": "main"}
            for schema, me in dsms.items():
                if me["replication"] != "running" or me["role"] != "master":
                    continue
                peer_schema = peer_of[schema]
                peer = dsms[peer_schema]
                if me["host"] in failing:
                    if me["replication"] != "failed":
                        _set_replication(conn, schema, "failed", "master")
                        changes.append(f"replication failed on {me['host']} (lab fault)")
                    me["replication"] = "failed"
                    continue
                if me["mode"] != "main" or peer["mode"] == "main":
                    _set_replication(conn, schema, "failed", "master")
                    me["replication"] = "failed"
                    changes.append(
                        f"replication failed on {me['host']} (mode {me['mode']}, "
                        f"peer {peer['host']} {peer['mode']})"
                    )
                    continue
                if peer["replication"] != "running" or peer["role"] != "backup":
                    continue  # the backup side has not joined (yet)
                if peer["host"] in restoring and peer["state"] != "RESTORING":
                    _set_database(conn, peer_schema, peer, "RESTORING")
                    changes.append(f"{peer['host']}'s database is restoring (NORECOVERY)")
                source, target = _where(me), _where(peer)
                if not _same(source, target):
                    _copy_whole(source, target)
                    changes.append(f"database copied whole from {me['host']} to {peer['host']}")
            for schema, me in dsms.items():
                if me["replication"] == "running" and me["role"] == "backup":
                    peer = dsms[peer_of[schema]]
                    if peer["replication"] != "running" or peer["role"] != "master":
                        _set_replication(conn, schema, "stopped", "none")
                        me["replication"] = "stopped"
                        changes.append(f"replication stopped on {me['host']} (no master)")
                receiving = me["replication"] == "running" and me["role"] == "backup"
                if me["state"] == "RESTORING" and not (receiving and me["host"] in restoring):
                    _set_database(conn, schema, me, "ONLINE")
                    changes.append(f"{me['host']}'s database recovered (ONLINE)")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
    return changes


def migrate_dsm(path: str | Path) -> None:
    """A DSM made by an older `amsm lab init` (one file: mode, replication, jobs and
    assets) is split as today: its assets stay in the replicated database at `path`,
    the rest moves to the instance file (Agent jobs: both, as it had no fault)."""
    path = Path(path).resolve()
    inst = instance_path(path)
    if inst.exists() or not path.exists():
        return
    old = _connect(path)
    try:
        row = old.execute(
            "SELECT host, mode, mode_since, replication, replication_role, replication_since "
            "FROM dsm WHERE id = 1"
        ).fetchone()
        known = old.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_jobs'"
        ).fetchone()
        jobs = [r[0] for r in old.execute("SELECT name FROM agent_jobs")] if known else AGENT_JOBS
    finally:
        old.close()
    tmp = inst.with_name(inst.name + ".new")
    tmp.unlink(missing_ok=True)
    _write_instance(tmp, path, tuple(row), jobs)
    # Renamed into place whole: no -wal beside it to carry along.
    conn = _connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    tmp.rename(inst)
    old = _connect(path)
    try:
        old.execute("BEGIN IMMEDIATE")
        old.execute("DROP TABLE dsm")
        if known:
            old.execute("DROP TABLE agent_jobs")
        old.execute("COMMIT")
    finally:
        old.close()


async def run_replicator(
    directory: str | Path, interval: float = REPLICATION_INTERVAL_SECONDS
) -> None:
    """Replicate every `interval` seconds until cancelled; a failed pass is logged, not fatal."""
    x_path, y_path = dsm_path(directory, "X"), dsm_path(directory, "Y")
    state = LabState(directory)
    while True:
        try:
            for path in (x_path, y_path):
                # An older lab's DSM (also one brought back from `unreachable`).
                if path.exists() and not instance_path(path).exists():
                    await asyncio.to_thread(migrate_dsm, path)
            if not (instance_path(x_path).exists() and instance_path(y_path).exists()):
                # A DSM that does not answer (lab fault): nothing replicates meanwhile,
                # and connecting would create an empty database in its place.
                await asyncio.sleep(interval)
                continue
            faults = await asyncio.to_thread(read_dsm_faults, state)
            failing = frozenset(h for h, f in faults.items() if f == "replication-fails")
            restoring = frozenset(h for h, f in faults.items() if f == "restoring")
            for change in await asyncio.to_thread(
                replicate_once, x_path, y_path, failing, restoring
            ):
                log.info("%s", change)
        except sqlite3.Error as e:
            # The worker may hold a lock longer than the busy timeout; try next pass.
            log.warning("replication pass failed: %s", e)
        await asyncio.sleep(interval)


def set_agent_jobs(path: str | Path, jobs: tuple[str, ...]) -> None:
    """The DSM's Agent jobs become exactly `jobs` (lab faults: a job deleted, restored);
    `path` is its replicated database's."""
    migrate_dsm(path)
    conn = _connect(instance_path(path))
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM agent_jobs")
        conn.executemany("INSERT INTO agent_jobs (name) VALUES (?)", [(j,) for j in jobs])
        conn.execute("COMMIT")
    finally:
        conn.close()
