"""The DSM driver on the lab's DSMs over the real stack (pyodbc, unixODBC, the SQLite3
ODBC driver): each DSM read and changed over its own connection, queries bounded,
answers read whole."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pyodbc
import pytest

from activities.drivers.dsm import DsmDriver
from activities.drivers.dsm_profiles import LabProfile, Readiness
from activities.drivers.errors import CommandFailed, InterlockRefused
from activities.models import Capabilities, DryRunFacts
from inventory.models import Dsm
from inventory.status import AllSyncStatus, DsmStatus, InSyncStatus, PairStatus
from lab.dsm import (
    AGENT_JOBS,
    create_dsm,
    initial_assets,
    migrate_dsm,
    replicate_once,
    set_agent_jobs,
)
from workflows.preview import Walk


def lab_dsm(tmp_path: Path, side: str, mode: str, timeout: float = 5) -> DsmDriver:
    path = tmp_path / f"dsm-{side.lower()}.db"
    create_dsm(path, f"dsm-{side.lower()}", mode, "stopped", "none", initial_assets(3))
    dsm = Dsm(host=f"dsm-{side.lower()}", profile="lab", odbc=f"Driver=SQLite3;Database={path}")
    return DsmDriver(dsm, side, None, timeout=timeout)  # type: ignore[arg-type]


def test_starting_replication_starts_the_peer_over_its_own_connection(tmp_path: Path) -> None:
    x, y = lab_dsm(tmp_path, "X", "main"), lab_dsm(tmp_path, "Y", "backup")
    msg = x.start_replication(y)
    assert msg == "replication started from DSM dsm-x to dsm-y; dsm-y runs as replication backup"
    # Each DSM says so itself (no replicator runs here: nothing else made Y a backup).
    assert (x.read().replication, x.read().role) == ("running", "master")
    assert (y.read().replication, y.read().role) == ("running", "backup")
    assert "already runs from DSM dsm-x; dsm-y already runs" in x.start_replication(y)
    assert x.stop_replication(y) == (
        "replication stopped on DSM dsm-x; replication stopped on its backup dsm-y"
    )
    assert y.read().replication == "stopped" and x.read().replication == "stopped"


def test_a_start_left_half_way_is_finished_by_a_retry(tmp_path: Path) -> None:
    x, y = lab_dsm(tmp_path, "X", "main"), lab_dsm(tmp_path, "Y", "backup")
    x._start("master")  # the worker died before it reached the peer
    assert "already runs from DSM dsm-x; dsm-y runs as replication backup" in (
        x.start_replication(y)
    )
    y._stop("backup")  # and a stop that reached only the master's peer ...
    assert x.stop_replication(y) == "replication stopped on DSM dsm-x"
    # ... or only the master: the retry stops the backup too.
    x._start("master")
    y.join_as_backup()
    x._stop("master")
    assert x.stop_replication(y) == (
        "replication is already stopped on DSM dsm-x; replication stopped on its backup dsm-y"
    )
    # Without its peer (lost), a DSM stops only its own.
    y.join_as_backup()
    assert y.stop_replication() == "replication stopped on DSM dsm-y"


def test_a_blocked_query_is_bounded_and_names_the_dsm(tmp_path: Path) -> None:
    x = lab_dsm(tmp_path, "X", "main", timeout=1)
    # Another session holds the database for writing (on SQL Server: a blocking lock, and
    # the query timeout, SQL_ATTR_QUERY_TIMEOUT, ends the wait with HYT00). The SQLite3
    # ODBC driver ignores the query timeout; the profile's busy timeout bounds it. (WAL:
    # reads go on beside a writer, so it is the update that waits.)
    holder = sqlite3.connect(tmp_path / "dsm-x.instance.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandFailed) as e:
            x.set_mode("backup")
        assert time.monotonic() - t0 < 4
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert e.value.host == "dsm-x"
    assert "SQLite error 5 (SQLSTATE HY000)" in str(e.value) and "locked" in str(e.value)
    assert x._conn_str() == (
        f"Timeout=1000;Driver=SQLite3;Database={tmp_path}/dsm-x.instance.db;NoCreat=1"
    )


def test_a_mode_row_that_is_not_one_row_is_an_error(tmp_path: Path) -> None:
    x = lab_dsm(tmp_path, "X", "main")
    db = sqlite3.connect(tmp_path / "dsm-x.instance.db", isolation_level=None)
    db.execute("DELETE FROM dsm")
    db.close()
    with pytest.raises(CommandFailed) as e:
        x.read()
    assert str(e.value) == (
        "dsm-x: the DSM's answer does not read whole: the dsm row: expected exactly one row, got 0"
    )
    assert x.status().state_text == "Not Responding"


def test_a_statement_error_keeps_the_servers_number(tmp_path: Path) -> None:
    y = lab_dsm(tmp_path, "Y", "backup")
    # A value the table refuses (its CHECK): the server's own error, number and text.
    with pytest.raises(CommandFailed) as e:
        y.set_mode("standby")  # type: ignore[arg-type]
    assert e.value.host == "dsm-y" and "SQLite error 19" in str(e.value)
    assert "CHECK constraint failed" in str(e.value)


def test_a_dsm_without_its_job_says_so_and_cannot_tell_its_replication(tmp_path: Path) -> None:
    x = lab_dsm(tmp_path, "X", "main")
    assert x.readiness() == Readiness(missing_jobs=[], missing_rights=None)
    set_agent_jobs(tmp_path / "dsm-x.db", AGENT_JOBS[1:])
    assert x.readiness().missing_jobs == ["AuroraReplication"]
    # As on SQL Server: its replication cannot be read without the job.
    with pytest.raises(CommandFailed, match="no SQL Server Agent job 'AuroraReplication'") as e:
        x.read()
    assert e.value.host == "dsm-x"
    set_agent_jobs(tmp_path / "dsm-x.db", tuple(j.upper() for j in AGENT_JOBS))
    assert x.read().replication == "stopped"  # msdb compares names without regard to case


def test_whole_database_replication_leaves_each_dsms_mode_its_own(tmp_path: Path) -> None:
    # Log shipping, backup/restore and snapshot copy the main's whole database onto the
    # backup's: amsm's mode must not live in it, or the backup reads main after one pass.
    x, y = lab_dsm(tmp_path, "X", "main"), lab_dsm(tmp_path, "Y", "backup")
    x.start_replication(y)
    replicate_once(tmp_path / "dsm-x.db", tmp_path / "dsm-y.db")
    a, b = x.read(), y.read()
    assert (a.mode, b.mode) == ("main", "backup")
    assert a.asset_count == b.asset_count == 3
    assert y.set_mode("backup") == "DSM dsm-y is already backup"


def test_a_backup_whose_database_is_restoring_answers_with_that_state(tmp_path: Path) -> None:
    x, y = lab_dsm(tmp_path, "X", "main"), lab_dsm(tmp_path, "Y", "backup")
    x.start_replication(y)
    # Y restores WITH NORECOVERY: its database is RESTORING while it receives.
    x_db, y_db = tmp_path / "dsm-x.db", tmp_path / "dsm-y.db"
    assert "dsm-y's database is restoring (NORECOVERY)" in replicate_once(
        x_db, y_db, restoring=frozenset({"dsm-y"})
    )
    st = y.status()
    assert st.reachable and (st.mode, st.replication, st.role) == ("backup", "running", "backup")
    assert (st.asset_count, st.database_state) == (None, "restoring")
    assert st.assets_text == "not readable (database restoring)"
    # The lab refuses to open it, as SQL Server does (msg 927; as the login's database,
    # 4060): a connection that named it, as the driver's did, fails.
    with pytest.raises(pyodbc.Error, match="connect failed"):
        pyodbc.connect(f"Driver=SQLite3;Database={y_db};NoCreat=1")
    # Copies go on into it; once it no longer receives, it is recovered and reads whole.
    with sqlite3.connect(x_db, isolation_level=None) as db:
        db.execute("INSERT INTO assets (name, created) VALUES ('new', '2025-01-01T00:00:00Z')")
    replicate_once(x_db, y_db, restoring=frozenset({"dsm-y"}))
    assert y.read().asset_count is None
    x.stop_replication(y)
    assert "dsm-y's database recovered (ONLINE)" in replicate_once(x_db, y_db)
    st = y.read()
    assert (st.asset_count, st.database_state) == (4, "online")


def test_set_mode_believes_the_mode_it_reads_back_not_the_row_count(tmp_path: Path) -> None:
    y = lab_dsm(tmp_path, "Y", "backup")
    # The lab's mode row is set through a trigger, as a site ties it to Aurora: the
    # server's row count of the UPDATE is 0 (sqlite3_changes), though the row changed.
    conn = pyodbc.connect(y._conn_str(), autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(LabProfile.SET_MODE, "backup", "2025-01-01T00:00:00Z")
        assert cur.rowcount == 0
    finally:
        conn.close()
    assert y.read().mode == "backup"
    assert y.set_mode("main") == "DSM dsm-y set to main"
    assert y.read().mode == "main"


def test_main_is_refused_while_replicated_onto_even_when_it_already_reads_main(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dsm-y.db"
    create_dsm(path, "dsm-y", "main", "running", "backup", initial_assets(3))
    dsm = Dsm(host="dsm-y", profile="lab", odbc=f"Driver=SQLite3;Database={path}")
    y = DsmDriver(dsm, "Y", None, timeout=5)
    with pytest.raises(InterlockRefused) as e:
        y.set_mode("main")
    assert e.value.rule == "main-only-when-not-replicated-onto"
    assert y.set_mode("backup") == "DSM dsm-y set to backup"


def test_a_lab_made_before_the_split_is_migrated(tmp_path: Path) -> None:
    # An older `amsm lab init` kept mode, replication, jobs and assets in one file.
    path = tmp_path / "dsm-x.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        "CREATE TABLE dsm (id INTEGER PRIMARY KEY, host TEXT, mode TEXT, mode_since TEXT, "
        "replication TEXT, replication_role TEXT, replication_since TEXT);"
        "INSERT INTO dsm VALUES (1, 'dsm-x', 'main', '2024-01-01T00:00:00Z', 'running', "
        "'master', '2024-01-01T00:00:00Z');"
        "CREATE TABLE assets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
        "created TEXT NOT NULL);"
        "INSERT INTO assets VALUES (1, 'a', '2024-01-01T00:00:00Z');"
    )
    old.close()
    migrate_dsm(path)
    migrate_dsm(path)  # once is enough
    dsm = Dsm(host="dsm-x", profile="lab", odbc=f"Driver=SQLite3;Database={path}")
    st = DsmDriver(dsm, "X", None, timeout=5).read()
    assert (st.mode, st.replication, st.role, st.asset_count) == ("main", "running", "master", 1)


def test_a_replication_pass_that_races_a_dsm_taken_away_creates_no_empty_database(
    tmp_path: Path,
) -> None:
    # The replicator checks that both instance files are there, then a fault takes one
    # away: the pass must fail, not create an empty file in its place, or the driver
    # then reads "no such table" from an empty database instead of no answer at all.
    x, y = lab_dsm(tmp_path, "X", "main"), lab_dsm(tmp_path, "Y", "backup")
    x.start_replication(y)
    y_instance = tmp_path / "dsm-y.instance.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{y_instance}{suffix}").unlink(missing_ok=True)
    with pytest.raises(sqlite3.OperationalError, match="unable to open database"):
        replicate_once(tmp_path / "dsm-x.db", tmp_path / "dsm-y.db")
    assert not y_instance.exists()
    (tmp_path / "dsm-x.instance.db").rename(tmp_path / "away.db")
    with pytest.raises(sqlite3.OperationalError, match="unable to open database"):
        replicate_once(tmp_path / "dsm-x.db", tmp_path / "dsm-y.db")
    assert not (tmp_path / "dsm-x.instance.db").exists()


def test_a_stop_stops_the_main_before_it_reads_a_peer_that_does_not_answer(
    tmp_path: Path,
) -> None:
    # The manual's order: the main's replication first. A backup DSM that no longer
    # answers must not keep the main replicating onto it.
    x, y = lab_dsm(tmp_path, "X", "main", timeout=2), lab_dsm(tmp_path, "Y", "backup", timeout=2)
    x.start_replication(y)
    away = tmp_path / "away"
    away.mkdir()
    for suffix in ("", "-wal", "-shm"):
        part = tmp_path / f"dsm-y.instance.db{suffix}"
        if part.exists():
            part.rename(away / part.name)
    with pytest.raises(Exception, match="dsm-y"):
        x.stop_replication(y)
    assert x.read().replication == "stopped"


def test_a_start_is_refused_before_the_master_starts_when_the_peer_runs_as_master(
    tmp_path: Path,
) -> None:
    x, y = lab_dsm(tmp_path, "X", "main"), lab_dsm(tmp_path, "Y", "backup")
    y._start("master")  # the peer's own master job, left running
    # The dry run, on the DSMs as they read now, refuses the step with the plan's sentence.
    step = Walk("switch", "Y", "X", pair_read(x, y), NO_FACTS, Capabilities()).step(
        "start-replication"
    )
    assert step.refused is not None and step.refused.rule == "replication-running"
    assert step.refused.why == (
        "DSM dsm-y runs replication as master, not as backup; stop it first (amsm replication stop)"
    )
    assert step.would.startswith("would start replication from DSM dsm-x to dsm-y")
    # The real run refuses with the same sentence, naming the peer.
    with pytest.raises(CommandFailed) as e:
        x.start_replication(y)
    assert e.value.host == "dsm-y" and str(e.value) == f"dsm-y: {step.refused.why}"
    # Refused before any change: this DSM's master job was never started.
    assert x.read().replication == "stopped"


def pair_read(x: DsmDriver, y: DsmDriver) -> PairStatus:
    """The pair as the dry run reads it: each DSM as it reports itself."""
    dsm = {}
    for side, d in (("X", x), ("Y", y)):
        r = d.read()
        dsm[side] = DsmStatus(  # type: ignore[misc]
            host=d.name, side=side, mode=r.mode, replication=r.replication, role=r.role,
            asset_count=r.asset_count,
        )  # fmt: skip
    return PairStatus(
        pair="p", read_at="2026-12-07T03:00:00+00:00", dsm=dsm, smartbins=[], browse=[],  # type: ignore[arg-type]
        clients=[], insync=InSyncStatus(host="cp-01"), allsync=AllSyncStatus(),
    )  # fmt: skip


NO_FACTS = DryRunFacts(
    iscsi_port=3260, bridges={"X": "bridge-x", "Y": "bridge-y"}, portals={"X": [], "Y": []},
    nas={"X": "nas-x", "Y": "nas-y"}, insync_process="InSync.exe",
)  # fmt: skip


def _open_files(under: Path) -> int:
    n = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if str(fd.readlink()).startswith(str(under)):
                n += 1
        except OSError:  # closed while listed
            continue
    return n


def test_reads_leave_no_database_file_open(tmp_path: Path) -> None:
    # Found by the soak (bench/soak.py): the SQLite3 ODBC driver keeps a connection's
    # database (and the attached replicated one) open when the connection is closed with
    # its statement still allocated, so every read left files open in the worker.
    x = lab_dsm(tmp_path, "X", "main")
    x.read()
    before = _open_files(tmp_path)
    for _ in range(5):
        x.read()
    assert _open_files(tmp_path) == before
