"""What each kind of DSM understands, one profile per kind: the SQL, and how its answers
read as a DSM's mode and replication.

`lab`: the simulator's SQLite databases (lab/dsm.py owns the schema).
`sqlserver`: T-SQL for an Aurora DSM on SQL Server 2005+, where replication is two SQL
Server Agent jobs per DSM (docs/site/sqlserver.md): the *master job* runs on the DSM
that replicates from itself, the *backup job* on the DSM that receives. Each DSM's role is
read from its own msdb, never from its peer. The Aurora schema is not public: the job
names, the databases and the asset table are settings (inventory `dsm.sqlserver`), and
the statements have been parsed (tests/unit/test_dsm_sqlserver.py, sqlglot's T-SQL
dialect) but **not run against a real SQL Server**.

Neither profile connects to the replicated database: replication overwrites it whole
(amsm's mode row lives elsewhere), and a backup's may be RESTORING, which SQL Server
refuses to open (msg 927; as the login's database, msg 4060). A database that is not
online is a state of the DSM (`Assets.state`), not a DSM that does not answer.

A profile only builds statements and reads rows; the driver (activities/drivers/dsm.py)
runs them, reads every result set and turns every server error into the error tree.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal, Protocol
from urllib.parse import quote

from inventory.models import Dsm, SqlServerDsm, odbc_keywords

Replication = Literal["running", "stopped", "failed"]
Role = Literal["master", "backup", "none"]
Mode = Literal["main", "backup"]
Row = tuple[Any, ...]


class ProfileError(Exception):
    """An answer that does not read as the profile expects; the driver names the host."""


class DatabaseNotOpen(Exception):
    """The server refused a statement because a database it needs cannot be opened, in
    `state` (sys.databases' state_desc, lower case): SQL Server msg 922 "is being
    recovered", 927 "cannot be opened. It is in the middle of a restore", 942 "cannot be
    opened because it is offline" (Microsoft Learn, Database engine events and errors
    0-999). `cause` is the server's error, for the driver to name where the refusal is
    not a state."""

    def __init__(self, state: str, cause: Exception) -> None:
        super().__init__(state)
        self.state = state
        self.cause = cause


class Sql(Protocol):
    """The driver's way of running one statement on one DSM."""

    def query(self, statement: str, *params: Any) -> list[Row]:
        """Exactly one result set, its rows (every later result set read and checked)."""
        ...

    def execute(self, statement: str, *params: Any) -> int:
        """No result set expected; the row count."""
        ...


@dataclass(frozen=True)
class Replicating:
    state: Replication
    role: Role


@dataclass(frozen=True)
class Assets:
    """The replicated database's state (lower case, as sys.databases' state_desc:
    online, restoring, recovering, offline, ...) and, when online, its asset count."""

    count: int | None
    state: str


def with_database(odbc: str, database: str, braced: bool) -> str:
    """The ODBC string with its Database= set to `database` (replaced where it is, else
    added): the connection never opens the database it named."""
    value = "{" + database.replace("}", "}}") + "}" if braced else database
    parts, found = [], False
    for key, _, text in odbc_keywords(odbc):
        if key.casefold() == "database":
            if not found:
                parts.append(f"Database={value}")
            found = True
        else:
            parts.append(text)
    if not found:
        parts.append(f"Database={value}")
    return ";".join(parts)


@dataclass(frozen=True)
class Readiness:
    """What a DSM lacks that the steps acting on it need: its replication jobs, and the
    rights of the worker's login (None: the profile cannot tell, as SQLite has no
    logins)."""

    missing_jobs: list[str]
    missing_rights: list[str] | None


def missing_jobs(rows: list[Row], wanted: Sequence[str]) -> list[str]:
    """Which of `wanted` the rows of job names lack (compared without regard to case, as
    msdb's default collation does)."""
    names = set()
    for row in rows:
        if len(row) != 1 or not isinstance(row[0], str):
            raise ProfileError(f"the job row {row!r} does not read as a job name")
        names.add(row[0].casefold())
    return [w for w in wanted if w.casefold() not in names]


def no_jobs(missing: Sequence[str]) -> ProfileError:
    return ProfileError(
        "no SQL Server Agent job "
        + ", ".join(repr(m) for m in missing)
        + " in msdb (docs/site/sqlserver.md)"
    )


def _one_row(rows: list[Row], what: str, width: int) -> Row:
    if len(rows) != 1:
        raise ProfileError(f"{what}: expected exactly one row, got {len(rows)}")
    if len(rows[0]) != width:
        raise ProfileError(f"{what}: expected {width} columns, got {len(rows[0])}")
    return rows[0]


def read_mode(rows: list[Row]) -> tuple[Mode, str]:
    mode, since = _one_row(rows, "the mode row", 2)
    if mode not in ("main", "backup"):
        raise ProfileError(f"the mode row says {mode!r}, neither 'main' nor 'backup'")
    return mode, str(since or "")


def read_count(rows: list[Row]) -> int:
    (count,) = _one_row(rows, "the asset count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ProfileError(f"the asset count is {count!r}, not a count")
    return count


class DsmProfile(ABC):
    name: str
    # Whose error numbers the driver reports ("SQL Server error 22022").
    server: str
    # Whether the ODBC driver parses braced values as [MS-ODBCSTR] says. When it does
    # not, a `;` in a credential could add a keyword, and such a credential is refused.
    braces_honoured: bool = True

    @abstractmethod
    def connect_options(self, timeout: float) -> tuple[str, str]:
        """(before, after) the inventory's ODBC string: options the profile needs."""

    @abstractmethod
    def connection(self, odbc: str) -> str:
        """The inventory's ODBC string as the profile connects: never to the replicated
        database."""

    @abstractmethod
    def read_mode(self, sql: Sql) -> tuple[Mode, str]: ...

    @abstractmethod
    def read_replication(self, sql: Sql) -> Replicating: ...

    @abstractmethod
    def assets(self, sql: Sql) -> Assets:
        """The replicated database's state and, when it is online, the asset count."""

    @abstractmethod
    def readiness(self, sql: Sql) -> Readiness:
        """What the DSM lacks for the steps (read only)."""

    @abstractmethod
    def set_mode(self, sql: Sql, mode: Mode, since: str) -> None:
        """Set the mode. The server's row count is not read: a trigger's own statements
        count, and none counts under NOCOUNT; the driver reads the mode back."""

    @abstractmethod
    def start(self, sql: Sql, role: Literal["master", "backup"], since: str) -> None:
        """Start this DSM's replication in `role` (the driver checked it is not running)."""

    @abstractmethod
    def stop(self, sql: Sql, role: Literal["master", "backup"], since: str) -> None:
        """Stop this DSM's replication that runs in `role`."""


class LabProfile(DsmProfile):
    """The lab's DSM (lab/dsm.py): it connects to the DSM's instance file beside the
    replicated database the ODBC string names (`dsm-x.db` -> `dsm-x.instance.db`), whose
    `dsm` row holds its mode and its replication state and role, `agent_jobs` the Agent
    jobs it would replicate with (as on SQL Server, a DSM whose job is missing cannot
    say how it replicates), and `databases` the replicated database's file and state;
    the replicated database is attached read-only only when it is ONLINE. SQLite has
    no logins, so the login's rights are not told."""

    name = "lab"
    server = "SQLite"
    # Debian's SQLite3 ODBC driver (sqliteodbc) looks its keywords up in the raw string:
    # `PWD={x}};JournalMode=DELETE;{}` switches the journal mode (tried: unixODBC 2.3.11,
    # libsqliteodbc 0.9998). It has no logins and ignores UID and PWD.
    braces_honoured = False

    STATUS = "SELECT mode, mode_since, replication, replication_role FROM dsm WHERE id = 1"
    JOBS = "SELECT name FROM agent_jobs"
    DATABASE = "SELECT state, file FROM databases WHERE name = ?"
    ATTACH = "ATTACH DATABASE ? AS replicated"
    ASSETS = "SELECT COUNT(*) FROM replicated.assets"
    SET_MODE = "UPDATE amsm_mode SET mode = ?, mode_since = ?"
    # The name of the replicated database in the lab's catalog (lab/dsm.py).
    REPLICATED = "Aurora"
    SET_REPLICATION = (
        "UPDATE dsm SET replication = ?, replication_role = ?, replication_since = ? WHERE id = 1"
    )

    def __init__(self, settings: SqlServerDsm | None = None) -> None:
        self.settings = settings or SqlServerDsm()

    def _missing_jobs(self, sql: Sql) -> list[str]:
        s = self.settings
        return missing_jobs(sql.query(self.JOBS), (s.master_job, s.backup_job))

    def readiness(self, sql: Sql) -> Readiness:
        return Readiness(missing_jobs=self._missing_jobs(sql), missing_rights=None)

    def connect_options(self, timeout: float) -> tuple[str, str]:
        # sqliteodbc ignores SQL_ATTR_QUERY_TIMEOUT (tried: a query on a locked file with
        # pyodbc's `timeout = 2` waited 200 s); its bound is the busy timeout `Timeout=`
        # (ms), and of a keyword given twice it takes the first: so ours goes first.
        # NoCreat: a missing database file is a DSM that does not answer, not a new one.
        return f"Timeout={math.ceil(timeout * 1000)}", "NoCreat=1"

    def connection(self, odbc: str) -> str:
        database = next((v for k, v, _ in odbc_keywords(odbc) if k.casefold() == "database"), "")
        if not database:
            raise ProfileError("the lab's ODBC string names no Database=")
        p = PurePath(database)
        # lab/dsm.py instance_path: the instance file beside the replicated database.
        return with_database(odbc, str(p.with_name(f"{p.stem}.instance{p.suffix}")), False)

    def _row(self, sql: Sql) -> Row:
        return _one_row(sql.query(self.STATUS), "the dsm row", 4)

    def read_mode(self, sql: Sql) -> tuple[Mode, str]:
        return read_mode([self._row(sql)[:2]])

    def read_replication(self, sql: Sql) -> Replicating:
        missing = self._missing_jobs(sql)
        if missing:
            raise no_jobs(missing)
        replication, role = self._row(sql)[2:]
        if replication not in ("running", "stopped", "failed") or role not in (
            "master",
            "backup",
            "none",
        ):
            raise ProfileError(f"replication {replication!r} as {role!r} is not a state")
        return Replicating(replication, role)

    def assets(self, sql: Sql) -> Assets:
        state, file = _one_row(sql.query(self.DATABASE, self.REPLICATED), "the database", 2)
        if not isinstance(state, str) or not isinstance(file, str):
            raise ProfileError(f"the database row ({state!r}, {file!r}) is not a state and file")
        if state != "ONLINE":
            return Assets(None, state.lower())
        # Read-only, and never created: a file that is not there is an error (sqlite.org,
        # "URI Filenames": mode=ro).
        sql.execute(self.ATTACH, f"file:{quote(file)}?mode=ro")
        return Assets(read_count(sql.query(self.ASSETS)), "online")

    def set_mode(self, sql: Sql, mode: Mode, since: str) -> None:
        sql.execute(self.SET_MODE, mode, since)

    def start(self, sql: Sql, role: Literal["master", "backup"], since: str) -> None:
        sql.execute(self.SET_REPLICATION, "running", role, since)

    def stop(self, sql: Sql, role: Literal["master", "backup"], since: str) -> None:
        sql.execute(self.SET_REPLICATION, "stopped", "none", since)


@dataclass(frozen=True)
class JobState:
    """One SQL Server Agent job as msdb reports it."""

    name: str
    running: bool
    # sysjobhistory.run_status of its last finished run (step_id 0, the job outcome):
    # 0 failed, 1 succeeded, 2 retry, 3 canceled (sp_stop_job); None: never ran.
    last_status: int | None
    last_instance: int | None


JOB_FAILED = 0


def job_states(rows: list[Row], wanted: Sequence[str]) -> dict[str, JobState]:
    """The rows of SqlServerProfile.JOBS by wanted name; a wanted job missing is an error."""
    found: dict[str, JobState] = {}
    for row in rows:
        if len(row) != 4:
            raise ProfileError(f"a job row has {len(row)} columns, not 4")
        name, running, status, instance = row
        if not isinstance(name, str) or running not in (0, 1):
            raise ProfileError(f"the job row {row!r} does not read as a job")
        key = name.casefold()
        if key in found:
            raise ProfileError(f"msdb names the job {name!r} twice")
        found[key] = JobState(name, bool(running), status, instance)
    missing = [w for w in wanted if w.casefold() not in found]
    if missing:
        raise no_jobs(missing)
    return {w: found[w.casefold()] for w in wanted}


def replication_of(master: JobState, backup: JobState) -> Replicating:
    """A DSM's replication from its own two jobs: the one that runs gives the role; when
    neither runs, the outcome of the one that finished last (a failure stays visible
    until replication is started or stopped again, as the manual's "Replication failed")."""
    if master.running and backup.running:
        raise ProfileError(
            f"both {master.name!r} and {backup.name!r} run: a DSM is master or backup, not both"
        )
    if master.running:
        return Replicating("running", "master")
    if backup.running:
        return Replicating("running", "backup")
    ran = [j for j in (master, backup) if j.last_instance is not None]
    if not ran:
        return Replicating("stopped", "none")
    last = max(ran, key=lambda j: j.last_instance or 0)
    if last.last_status == JOB_FAILED:
        return Replicating("failed", "master" if last is master else "backup")
    return Replicating("stopped", "none")


def bracketed(table: str) -> str:
    """`dbo.Assets` as `[dbo].[Assets]` (the inventory allows only regular identifiers,
    so no `]` needs doubling)."""
    return ".".join(f"[{part}]" for part in table.split("."))


def in_database(database: str, table: str) -> str:
    """`dbo.Assets` in `Aurora` as `[Aurora].[dbo].[Assets]`; a table without a schema as
    `[Aurora]..[Assets]` (the login's default schema)."""
    parts = table.split(".")
    return f"[{database}]." + (bracketed(table) if len(parts) == 2 else f".[{table}]")


class SqlServerProfile(DsmProfile):
    """An Aurora DSM on SQL Server 2005+ (T-SQL valid on 2005: no THROW, no SYSUTCDATETIME).

    It connects to msdb, never to the replicated database (which a backup may hold
    RESTORING, and whose copy would overwrite anything of amsm's in it): the jobs are
    msdb's, the mode row is in amsm's own database (`state_database`), the asset count
    and the replicated database's state are read by name from the catalog. No statement
    uses what compatibility level 80 (a database upgraded from SQL Server 2000) refuses:
    APPLY, common table expressions, PIVOT, window functions (Microsoft Learn, "ALTER
    DATABASE compatibility level": those need 90).
    """

    name = "sqlserver"
    server = "SQL Server"

    # Running = a row of the Agent's current session with a start and no stop
    # (Microsoft Learn, dbo.sysjobactivity, its example; each Agent start opens a new
    # session, so a run cut short by an Agent restart does not count as running).
    # Outcome = the last job-outcome row (step_id 0) of dbo.sysjobhistory. Correlated
    # subqueries, not APPLY.
    JOBS = (
        "SELECT j.name, "
        "CASE WHEN EXISTS (SELECT 1 FROM msdb.dbo.sysjobactivity AS ja "
        "WHERE ja.job_id = j.job_id "
        "AND ja.session_id = (SELECT MAX(s.session_id) FROM msdb.dbo.sysjobactivity AS s) "
        "AND ja.start_execution_date IS NOT NULL AND ja.stop_execution_date IS NULL) "
        "THEN 1 ELSE 0 END, "
        "(SELECT jh.run_status FROM msdb.dbo.sysjobhistory AS jh "
        "WHERE jh.instance_id = (SELECT MAX(h.instance_id) FROM msdb.dbo.sysjobhistory AS h "
        "WHERE h.job_id = j.job_id AND h.step_id = 0)), "
        "(SELECT MAX(h.instance_id) FROM msdb.dbo.sysjobhistory AS h "
        "WHERE h.job_id = j.job_id AND h.step_id = 0) "
        "FROM msdb.dbo.sysjobs AS j "
        "WHERE j.name IN (?, ?)"
    )
    # sp_start_job / sp_stop_job return 0 (success) or 1 (failure) (Microsoft Learn,
    # "Return Code Values"); their errors (e.g. 22022, the job already running or not
    # running) may come after other results of the batch, which the driver reads all.
    # NOCOUNT: no row counts of the procedures' own statements in between.
    START_JOB = (
        "SET NOCOUNT ON; DECLARE @rc int; "
        "EXEC @rc = msdb.dbo.sp_start_job @job_name = ?; SELECT @rc AS rc"
    )
    STOP_JOB = (
        "SET NOCOUNT ON; DECLARE @rc int; "
        "EXEC @rc = msdb.dbo.sp_stop_job @job_name = ?; SELECT @rc AS rc"
    )
    # The replicated database's state: sys.databases.state_desc (ONLINE, RESTORING,
    # RECOVERING, RECOVERY_PENDING, SUSPECT, EMERGENCY, OFFLINE; SQL Server 2005 and
    # later). A database in STANDBY reads ONLINE between restores.
    DATABASE_STATE = "SELECT state_desc FROM sys.databases WHERE name = ?"

    # The site check's reads. The jobs by name (msdb.dbo.sysjobs); whether the login may
    # start and stop them: members of SQLAgentOperatorRole in msdb start and stop every
    # local job, SQLAgentUserRole and SQLAgentReaderRole only their own, sysadmin any
    # (Microsoft Learn, sp_start_job / sp_stop_job, "Permissions"). IS_MEMBER answers for
    # the current database's roles, so it runs in msdb (sp_executesql of msdb); sysadmin
    # is no member of the role but may start any job.
    JOB_NAMES = "SELECT name FROM msdb.dbo.sysjobs WHERE name IN (?, ?)"
    AGENT_ROLE = (
        "EXEC msdb.sys.sp_executesql "
        "N'SELECT IS_SRVROLEMEMBER(N''sysadmin''), IS_MEMBER(N''SQLAgentOperatorRole'')'"
    )

    def __init__(self, settings: SqlServerDsm, database: str) -> None:
        self.settings = settings
        self.database = database
        mode_table = in_database(settings.state_database, "dbo.AmsmDsmMode")
        self.MODE = f"SELECT Mode, CONVERT(varchar(19), ModeSince, 126) FROM {mode_table}"
        # The DSM's own clock says since when: GETUTCDATE() (SQL Server 2005). NOCOUNT:
        # the row count is not read (a site's trigger would change it); the driver reads
        # the mode back.
        self.SET_MODE = (
            f"SET NOCOUNT ON; UPDATE {mode_table} SET Mode = ?, ModeSince = GETUTCDATE()"
        )
        # The count without reading the table: the rows of its heap or clustered index
        # (index_id 0 or 1) in the catalog, which takes no lock on the table, so
        # replication's locks do not block it (Microsoft Learn, sys.partitions, SQL
        # Server 2005 and later: `rows`, "the approximate number of rows in this
        # partition"). The table by name in the replicated database (OBJECT_ID takes a
        # three-part name); NULL when it is not there or not visible to the login.
        self.asset_object = in_database(database, settings.asset_table)
        self.ASSETS = (
            f"SELECT SUM(p.rows) FROM [{database}].sys.partitions AS p "
            "WHERE p.object_id = OBJECT_ID(?) AND p.index_id IN (0, 1)"
        )
        # HAS_PERMS_BY_NAME(securable, 'OBJECT', permission): 1 the login has it, 0 not,
        # NULL when the securable or permission is not valid (not there, or not visible
        # to the login); a schema-level securable may have three parts (Microsoft Learn,
        # HAS_PERMS_BY_NAME, SQL Server 2005 and later).
        state_mode = f"{settings.state_database}.dbo.AmsmDsmMode"
        self.rights: list[tuple[str, str]] = [
            ("msdb.dbo.sysjobs", "SELECT"),
            ("msdb.dbo.sysjobactivity", "SELECT"),
            ("msdb.dbo.sysjobhistory", "SELECT"),
            ("msdb.dbo.sp_start_job", "EXECUTE"),
            ("msdb.dbo.sp_stop_job", "EXECUTE"),
            (state_mode, "SELECT"),
            (state_mode, "UPDATE"),
        ]
        # The asset table's right is asked only while its database is online: in a
        # RESTORING one nothing can be asked (and HAS_PERMS_BY_NAME would say NULL).
        self.asset_right = (f"{database}.{settings.asset_table}", "SELECT")
        self.permissions = self._permissions(len(self.rights))

    @staticmethod
    def _permissions(n: int) -> str:
        return "SELECT " + ", ".join("HAS_PERMS_BY_NAME(?, 'OBJECT', ?)" for _ in range(n))

    def statements(self) -> list[str]:
        """Every statement this profile sends (the unit tests parse each one)."""
        return [
            self.MODE,
            self.SET_MODE,
            self.JOBS,
            self.START_JOB,
            self.STOP_JOB,
            self.DATABASE_STATE,
            self.ASSETS,
            self.JOB_NAMES,
            self.AGENT_ROLE,
            self.permissions,
            self._permissions(len(self.rights) + 1),
        ]

    def readiness(self, sql: Sql) -> Readiness:
        s = self.settings
        wanted = (s.master_job, s.backup_job)
        jobs = missing_jobs(sql.query(self.JOB_NAMES, *wanted), wanted)
        rights = list(self.rights)
        if self._state(sql) == "online":
            rights.append(self.asset_right)
        return Readiness(
            missing_jobs=jobs,
            missing_rights=missing_rights(
                sql.query(self.AGENT_ROLE),
                sql.query(self._permissions(len(rights)), *[v for pair in rights for v in pair]),
                rights,
            ),
        )

    def connect_options(self, timeout: float) -> tuple[str, str]:
        # The query timeout is pyodbc's `Connection.timeout` (SQL_ATTR_QUERY_TIMEOUT),
        # which Microsoft's ODBC driver honours; nothing to add to the string.
        return "", ""

    def connection(self, odbc: str) -> str:
        # The login's database is msdb: a database that cannot be opened fails the login
        # itself (msg 4060, "Cannot open database ... requested by the login"), and the
        # replicated one may be RESTORING. msdb is on every instance.
        return with_database(odbc, "msdb", True)

    def _jobs(self, sql: Sql) -> dict[str, JobState]:
        s = self.settings
        wanted = (s.master_job, s.backup_job)
        return job_states(sql.query(self.JOBS, *wanted), wanted)

    def read_mode(self, sql: Sql) -> tuple[Mode, str]:
        return read_mode(sql.query(self.MODE))

    def read_replication(self, sql: Sql) -> Replicating:
        jobs = self._jobs(sql)
        return replication_of(jobs[self.settings.master_job], jobs[self.settings.backup_job])

    def _state(self, sql: Sql) -> str:
        rows = sql.query(self.DATABASE_STATE, self.database)
        if not rows:
            raise ProfileError(
                f"no database {self.database!r} in sys.databases (not there, or the login "
                "may not see it: VIEW ANY DATABASE)"
            )
        (state,) = _one_row(rows, "the database state", 1)
        if not isinstance(state, str) or not state:
            raise ProfileError(f"the database state is {state!r}, not a state")
        return state.lower()

    def assets(self, sql: Sql) -> Assets:
        state = self._state(sql)
        if state != "online":
            return Assets(None, state)
        try:
            rows = sql.query(self.ASSETS, self.asset_object)
        except DatabaseNotOpen as e:
            # Online when sys.databases was read, not by the count: a backup's restore
            # (WITH NORECOVERY) began in between. The state the refusal names.
            return Assets(None, e.state)
        (count,) = _one_row(rows, "the asset count", 1)
        if count is None:
            raise ProfileError(
                f"no table {self.settings.asset_table!r} in database {self.database!r} "
                "(not there, or the login may not see it)"
            )
        return Assets(read_count([(count,)]), state)

    def set_mode(self, sql: Sql, mode: Mode, since: str) -> None:
        sql.execute(self.SET_MODE, mode)

    def _job(self, role: Literal["master", "backup"]) -> str:
        return self.settings.master_job if role == "master" else self.settings.backup_job

    def _run(self, sql: Sql, statement: str, job: str, what: str) -> None:
        (rc,) = _one_row(sql.query(statement, job), f"{what} {job!r}", 1)
        if rc != 0:
            raise ProfileError(f"{what} {job!r} returned {rc!r} (1 = failure)")

    def start(self, sql: Sql, role: Literal["master", "backup"], since: str) -> None:
        self._run(sql, self.START_JOB, self._job(role), "sp_start_job")

    def stop(self, sql: Sql, role: Literal["master", "backup"], since: str) -> None:
        self._run(sql, self.STOP_JOB, self._job(role), "sp_stop_job")


OPERATOR_ROLE = "membership of SQLAgentOperatorRole in msdb (or sysadmin)"


def _flag(value: Any, what: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool) or value not in (0, 1):
        raise ProfileError(f"{what} is {value!r}, not 1, 0 or NULL")
    return value == 1


def missing_rights(
    role_rows: list[Row], perm_rows: list[Row], rights: Sequence[tuple[str, str]]
) -> list[str]:
    """The rights the login lacks, from AGENT_ROLE's row (IS_SRVROLEMEMBER('sysadmin'),
    IS_MEMBER('SQLAgentOperatorRole')) and the permissions row (one HAS_PERMS_BY_NAME
    per right, in order). NULL is not a right: not there, or not visible."""
    sysadmin, operator = _one_row(role_rows, "the Agent role", 2)
    out: list[str] = []
    if not (_flag(sysadmin, "IS_SRVROLEMEMBER") or _flag(operator, "IS_MEMBER")):
        out.append(OPERATOR_ROLE)
    row = _one_row(perm_rows, "the permissions", len(rights))
    for (securable, permission), has in zip(rights, row, strict=True):
        if not _flag(has, f"HAS_PERMS_BY_NAME({securable!r}, {permission!r})"):
            out.append(f"{permission} on {securable}")
    return out


def profile_for(dsm: Dsm) -> DsmProfile:
    if dsm.profile == "sqlserver":
        # The inventory refuses a sqlserver DSM without a replicated database's name.
        return SqlServerProfile(dsm.sqlserver_settings, dsm.replicated_database or "")
    return LabProfile(dsm.sqlserver_settings)
