"""The DSM driver on the lab's DSMs over the real stack (pyodbc, unixODBC, the SQLite3
ODBC driver): each DSM read and changed over its own connection, queries bounded,
answers read whole."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from activities.drivers.dsm import DsmDriver
from activities.drivers.dsm_profiles import Readiness
from activities.drivers.errors import CommandFailed
from inventory.models import Dsm
from lab.dsm import AGENT_JOBS, create_dsm, initial_assets, set_agent_jobs


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
    assert x.stop_replication(y) == "replication stopped on DSM dsm-x and on its backup dsm-y"
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
        "replication is already stopped on DSM dsm-x and on its backup dsm-y"
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
    holder = sqlite3.connect(tmp_path / "dsm-x.db", isolation_level=None)
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
    assert x._conn_str().startswith("Timeout=1000;Driver=SQLite3;")


def test_a_mode_row_that_is_not_one_row_is_an_error(tmp_path: Path) -> None:
    x = lab_dsm(tmp_path, "X", "main")
    db = sqlite3.connect(tmp_path / "dsm-x.db", isolation_level=None)
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
