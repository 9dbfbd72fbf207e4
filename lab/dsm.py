"""The lab's DSMs (Aurora database servers): SQLite files, and the replicator.

The worker reaches `DIR/dsm-x.db` and `DIR/dsm-y.db` through unixODBC's SQLite3
driver, exactly as it would reach SQL Server; the lab only creates the files and,
inside `amsm lab serve`, plays SQL Server's replication between them.

Replication rules (one pass every 0.25 s, `replicate_once`):
- a DSM that runs replication as *master* fails it (`failed`) when it is not main or
  its peer is main too (never replicate from a backup, never in split mode);
  otherwise, while its peer runs replication as *backup*, the peer's assets become an
  exact copy of the master's (overwrite, never merge);
- a DSM runs as backup only when told so itself (the worker's `join_as_backup`, over that
  DSM's own connection), as a SQL Server DSM runs its own backup job (README, "A SQL
  Server DSM"): nothing in the lab makes the peer of a master a backup behind the
  worker's back, so a driver that forgot to start the peer fails here too;
- a DSM that runs replication as *backup* whose peer is not (running, master)
  stops (`stopped`, role `none`).

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inventory.models import SqlServerDsm
from lab import write_random_secret
from lab.state import LabState, read_dsm_faults

log = logging.getLogger("amsm.lab.dsm")

SCHEMA = """
CREATE TABLE dsm (id INTEGER PRIMARY KEY CHECK (id = 1), host TEXT NOT NULL,
  mode TEXT NOT NULL CHECK (mode IN ('main','backup')), mode_since TEXT NOT NULL,
  replication TEXT NOT NULL CHECK (replication IN ('running','stopped','failed')),
  replication_role TEXT NOT NULL CHECK (replication_role IN ('master','backup','none')),
  replication_since TEXT);
CREATE TABLE assets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE agent_jobs (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE);
"""
# The SQL Server Agent jobs a DSM replicates with (README, "A SQL Server DSM"), by their
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


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dsm_path(directory: str | Path, side: str) -> Path:
    return Path(directory).resolve() / f"dsm-{side.lower()}.db"


def write_dsm_password(directory: Path) -> None:
    """A fresh random DSM password (no `;`, `{` or `}`, which the SQLite3 ODBC driver
    would misread: activities/drivers/dsm_profiles.py)."""
    write_random_secret(directory / DSM_PASSWORD_FILE)


def initial_assets(count: int = INITIAL_ASSETS) -> list[tuple[int, str, str]]:
    """The same (id, name, created) rows on both DSMs of a fresh lab."""
    return [(i, f"asset-{i:04d}", "2024-01-01T00:00:00Z") for i in range(1, count + 1)]


def create_dsm(
    path: str | Path,
    host: str,
    mode: str,
    replication: str,
    role: str,
    assets: list[tuple[int, str, str]],
) -> None:
    """Create one DSM database file; refuses (sqlite3.Error) if the file holds tables."""
    now = iso_now()
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        # WAL: the worker reads through ODBC while the replicator writes.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO dsm (id, host, mode, mode_since, replication, replication_role, "
            "replication_since) VALUES (1, ?, ?, ?, ?, ?, ?)",
            (host, mode, now, replication, role, now),
        )
        conn.executemany("INSERT INTO assets (id, name, created) VALUES (?, ?, ?)", assets)
        conn.executemany("INSERT INTO agent_jobs (name) VALUES (?)", [(j,) for j in AGENT_JOBS])
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
    return dict(zip(("host", "mode", "replication", "role"), row, strict=True))


def _assets(conn: sqlite3.Connection, schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT id, name, created FROM {schema}.assets ORDER BY id").fetchall()


def _set_replication(conn: sqlite3.Connection, schema: str, state: str, role: str) -> None:
    conn.execute(
        f"UPDATE {schema}.dsm SET replication = ?, replication_role = ?, "
        "replication_since = ? WHERE id = 1",
        (state, role, iso_now()),
    )


def replicate_once(
    x_path: str | Path, y_path: str | Path, failing: frozenset[str] = frozenset()
) -> list[str]:
    """One replication pass over the two DSM files; returns what changed, as sentences.

    `failing`: DSM hosts with the lab fault `replication-fails`.
    """
    conn = sqlite3.connect(x_path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    changes: list[str] = []
    try:
        conn.execute("ATTACH DATABASE ? AS y", (str(y_path),))
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
                source = _assets(conn, schema)
                if source != _assets(conn, peer_schema):
                    conn.execute(f"DELETE FROM {peer_schema}.assets")
                    conn.executemany(
                        f"INSERT INTO {peer_schema}.assets (id, name, created) VALUES (?, ?, ?)",
                        source,
                    )
                    changes.append(
                        f"{len(source)} assets copied from {me['host']} to {peer['host']}"
                    )
            for schema, me in dsms.items():
                if me["replication"] != "running" or me["role"] != "backup":
                    continue
                peer = dsms[peer_of[schema]]
                if peer["replication"] != "running" or peer["role"] != "master":
                    _set_replication(conn, schema, "stopped", "none")
                    changes.append(f"replication stopped on {me['host']} (no master)")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
    return changes


def migrate_dsm(path: str | Path) -> None:
    """A DSM file made before the lab kept Agent jobs gets them (both: it had no fault)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        known = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_jobs'"
        ).fetchone()
        if known is None:
            conn.execute("CREATE TABLE agent_jobs (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE)")
            conn.executemany("INSERT INTO agent_jobs (name) VALUES (?)", [(j,) for j in AGENT_JOBS])
        conn.execute("COMMIT")
    finally:
        conn.close()


async def run_replicator(
    directory: str | Path, interval: float = REPLICATION_INTERVAL_SECONDS
) -> None:
    """Replicate every `interval` seconds until cancelled; a failed pass is logged, not fatal."""
    x_path, y_path = dsm_path(directory, "X"), dsm_path(directory, "Y")
    for path in (x_path, y_path):
        if path.exists():
            await asyncio.to_thread(migrate_dsm, path)
    state = LabState(directory)
    while True:
        try:
            if not (x_path.exists() and y_path.exists()):
                # A DSM that does not answer (lab fault): nothing replicates meanwhile,
                # and connecting would create an empty database in its place.
                await asyncio.sleep(interval)
                continue
            failing = frozenset(
                h
                for h, f in (await asyncio.to_thread(read_dsm_faults, state)).items()
                if f == "replication-fails"
            )
            for change in await asyncio.to_thread(replicate_once, x_path, y_path, failing):
                log.info("%s", change)
        except sqlite3.Error as e:
            # The worker may hold a lock longer than the busy timeout; try next pass.
            log.warning("replication pass failed: %s", e)
        await asyncio.sleep(interval)


def set_agent_jobs(path: str | Path, jobs: tuple[str, ...]) -> None:
    """The DSM's Agent jobs become exactly `jobs` (lab faults: a job deleted, restored)."""
    migrate_dsm(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM agent_jobs")
        conn.executemany("INSERT INTO agent_jobs (name) VALUES (?)", [(j,) for j in jobs])
        conn.execute("COMMIT")
    finally:
        conn.close()
