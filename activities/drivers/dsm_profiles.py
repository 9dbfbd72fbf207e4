"""The SQL each kind of DSM understands, one named profile per kind.

`lab`: the simulator's SQLite databases (lab/dsm.py owns the schema).
`sqlserver`: T-SQL for an Aurora DSM on SQL Server 2005+, where replication is a
SQL Server Agent job. The Aurora schema is not public: the job name and the mode
table are this project's assumption (README, "Device settings"); the statements
have not been run against a real DSM.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DsmProfile:
    name: str
    # -> one row: mode, mode_since, replication, role
    status: str
    # -> one row: count
    asset_count: str
    # params: mode, since
    set_mode: str
    # params: since
    start_replication: str
    # params: since
    stop_replication: str
    # extra connection-string options
    connect_options: str = ""
    # Whether the ODBC driver parses braced values as [MS-ODBCSTR] says. When it does
    # not, a `;` in a credential could add a keyword, and such a credential is refused.
    braces_honoured: bool = True


LAB = DsmProfile(
    name="lab",
    status="SELECT mode, mode_since, replication, replication_role FROM dsm WHERE id = 1",
    asset_count="SELECT COUNT(*) FROM assets",
    set_mode="UPDATE dsm SET mode = ?, mode_since = ? WHERE id = 1",
    start_replication=(
        "UPDATE dsm SET replication = 'running', replication_role = 'master', "
        "replication_since = ? WHERE id = 1"
    ),
    stop_replication=(
        "UPDATE dsm SET replication = 'stopped', replication_role = 'none', "
        "replication_since = ? WHERE id = 1"
    ),
    # A missing database file is a DSM that does not answer, not a new empty DSM.
    connect_options="NoCreat=1",
    # Debian's SQLite3 ODBC driver (sqliteodbc) looks its keywords up in the raw string:
    # `PWD={x}};JournalMode=DELETE;{}` switches the journal mode (tried: unixODBC 2.3.11,
    # libsqliteodbc 0.9998). It has no logins and ignores UID and PWD.
    braces_honoured=False,
)

SQLSERVER = DsmProfile(
    name="sqlserver",
    status=(
        "SELECT m.Mode, CONVERT(varchar(19), m.ModeSince, 126), "
        "CASE WHEN ja.start_execution_date IS NOT NULL AND ja.stop_execution_date IS NULL "
        "THEN 'running' WHEN h.run_status = 0 THEN 'failed' ELSE 'stopped' END, "
        "m.ReplicationRole "
        "FROM dbo.AmsmDsmMode AS m "
        "LEFT JOIN msdb.dbo.sysjobs AS j ON j.name = N'AuroraReplication' "
        "OUTER APPLY (SELECT TOP 1 a.start_execution_date, a.stop_execution_date "
        "  FROM msdb.dbo.sysjobactivity AS a WHERE a.job_id = j.job_id "
        "  ORDER BY a.session_id DESC) AS ja "
        "OUTER APPLY (SELECT TOP 1 run_status FROM msdb.dbo.sysjobhistory AS jh "
        "  WHERE jh.job_id = j.job_id AND jh.step_id = 0 "
        "  ORDER BY jh.instance_id DESC) AS h"
    ),
    asset_count="SELECT COUNT(*) FROM dbo.Assets",
    set_mode="UPDATE dbo.AmsmDsmMode SET Mode = ?, ModeSince = ?",
    start_replication=(
        "UPDATE dbo.AmsmDsmMode SET ReplicationRole = 'master', ReplicationSince = ?; "
        "EXEC msdb.dbo.sp_start_job @job_name = N'AuroraReplication'"
    ),
    stop_replication=(
        "UPDATE dbo.AmsmDsmMode SET ReplicationRole = 'none', ReplicationSince = ?; "
        "EXEC msdb.dbo.sp_stop_job @job_name = N'AuroraReplication'"
    ),
)

PROFILES = {p.name: p for p in (LAB, SQLSERVER)}
