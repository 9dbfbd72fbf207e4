"""The `sqlserver` DSM profile where no SQL Server runs: its T-SQL parsed by a real T-SQL
parser (sqlglot's tsql dialect), its reading of msdb's answers, the driver's reading of
pyodbc's errors and messages, and the inventory's settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyodbc
import pytest
import sqlglot
from pydantic import ValidationError
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError

from activities.checks.dsm import dsm as check_dsm
from activities.checks.report import Report
from activities.drivers.credentials import Secret
from activities.drivers.dsm import (
    DsmDriver,
    ServerError,
    _check_messages,
    _Message,
    _Session,
    whole_seconds,
)
from activities.drivers.dsm_profiles import (
    OPERATOR_ROLE,
    Assets,
    DatabaseNotOpen,
    ProfileError,
    Readiness,
    Replicating,
    SqlServerProfile,
    job_states,
    missing_jobs,
    missing_rights,
    replication_of,
)
from activities.drivers.errors import (
    AuthenticationFailed,
    CommandFailed,
    TlsRefused,
    Unreachable,
)
from activities.models import CheckTarget
from inventory.load import load_inventory
from inventory.models import Dsm, SqlServerDsm

ODBC = "Driver={ODBC Driver 18 for SQL Server};Server=dsm-x;Database=Aurora"
P = SqlServerProfile(SqlServerDsm(), "Aurora")


def parse_tsql(sql: str) -> list[exp.Expression]:
    """Parsed strictly: a syntax error raises, and nothing may fall back to sqlglot's
    opaque `Command` (which it uses for statements it does not understand)."""
    trees = [t for t in sqlglot.parse(sql, read="tsql", error_level=ErrorLevel.RAISE) if t]
    assert trees, sql
    for tree in trees:
        assert not isinstance(tree, exp.Command), f"not understood as T-SQL: {tree.sql()}"
    return trees


def placeholders(trees: list[exp.Expression]) -> int:
    return sum(len(list(t.find_all(exp.Placeholder))) for t in trees)


def test_the_parser_is_strict() -> None:
    with pytest.raises(ParseError):
        parse_tsql("SELECT Mode FROM WHERE")
    with pytest.raises(ParseError):
        parse_tsql("UPDATE dbo.AmsmDsmMode SET Mode = ? ModeSince = 1")


@pytest.mark.parametrize(
    ("statement", "kinds", "params"),
    [
        (P.MODE, [exp.Select], 0),
        (P.SET_MODE, [exp.Set, exp.Update], 1),
        (P.JOBS, [exp.Select], 2),
        (P.START_JOB, [exp.Set, exp.Declare, exp.Execute, exp.Select], 1),
        (P.STOP_JOB, [exp.Set, exp.Declare, exp.Execute, exp.Select], 1),
        (P.DATABASE_STATE, [exp.Select], 1),
        (P.ASSETS, [exp.Select], 1),
        (P.JOB_NAMES, [exp.Select], 2),
        (P.AGENT_ROLE, [exp.ExecuteSql], 0),
        (P.permissions, [exp.Select], 14),
    ],
)
def test_every_statement_parses_as_tsql(
    statement: str, kinds: list[type[exp.Expression]], params: int
) -> None:
    trees = parse_tsql(statement)
    assert [type(t) for t in trees] == kinds
    # The driver binds exactly this many values: a `?` too many or too few fails on a
    # real server only.
    assert placeholders(trees) == params


def test_the_profile_sends_only_parsed_statements() -> None:
    profile = SqlServerProfile(SqlServerDsm(asset_table="Aurora.MasterClips"), "K2Aurora")
    assert profile.asset_object == "[K2Aurora].[Aurora].[MasterClips]"
    for statement in profile.statements():
        parse_tsql(statement)


# Compatibility level 80 (a database upgraded from SQL Server 2000) refuses what needs 90:
# APPLY, common table expressions, PIVOT/UNPIVOT, window functions (ROW_NUMBER ... OVER)
# (Microsoft Learn, "ALTER DATABASE compatibility level", differences between 80 and 90).
LEVEL_90 = (exp.Lateral, exp.With, exp.CTE, exp.Pivot, exp.Window)


@pytest.mark.parametrize("statement", P.statements())
def test_no_statement_needs_more_than_compatibility_level_80(statement: str) -> None:
    for tree in parse_tsql(statement):
        found = [type(n).__name__ for n in tree.find_all(*LEVEL_90)]
        assert not found, f"{found} in {statement}"
    assert "APPLY" not in statement.upper()


def test_nothing_is_read_from_the_replicated_database_but_its_catalog() -> None:
    # Replication holds the replicated database (a backup RESTORING refuses to open it,
    # msg 927; COUNT(*) waits on the restore's locks): the profile connects to msdb and
    # reads of the replicated database only its catalog, by name.
    profile = SqlServerProfile(SqlServerDsm(state_database="amsm_state"), "Aurora")
    for statement in profile.statements():
        for tree in parse_tsql(statement):
            for t in tree.find_all(exp.Table):
                if t.catalog.lower() == "aurora":
                    assert (t.db.lower(), t.name.lower()) == ("sys", "partitions"), statement
            assert not any(isinstance(f, exp.Count) for f in tree.find_all(exp.Count)), (
                f"a COUNT reads the table: {statement}"
            )
    assert "[amsm_state].[dbo].[AmsmDsmMode]" in profile.MODE
    assert "[amsm_state].[dbo].[AmsmDsmMode]" in profile.SET_MODE
    conn = driver()._conn_str()
    assert "Database={msdb}" in conn and "Aurora" not in conn


class Catalog:
    """msdb's answers to the asset reads (the database's state, the catalog's count)."""

    def __init__(self, profile: SqlServerProfile, state: list[Any], count: list[Any]) -> None:
        self.profile, self.state, self.count = profile, state, count
        self.asked: list[tuple[str, tuple[Any, ...]]] = []

    def query(self, statement: str, *params: Any) -> list[Any]:
        self.asked.append((statement, params))
        if statement == self.profile.DATABASE_STATE:
            return self.state
        assert statement == self.profile.ASSETS
        return self.count

    def execute(self, statement: str, *params: Any) -> int:
        raise AssertionError("reading changes nothing")


def test_a_database_that_is_not_online_is_a_state_not_an_error() -> None:
    online = Catalog(P, [("ONLINE",)], [(120,)])
    assert P.assets(online) == Assets(120, "online")
    assert online.asked == [
        (P.DATABASE_STATE, ("Aurora",)),
        (P.ASSETS, ("[Aurora].[dbo].[Assets]",)),
    ]
    restoring = Catalog(P, [("RESTORING",)], [])
    assert P.assets(restoring) == Assets(None, "restoring")
    assert [q for q, _ in restoring.asked] == [P.DATABASE_STATE]  # never opened
    with pytest.raises(ProfileError, match="no database 'Aurora' in sys.databases"):
        P.assets(Catalog(P, [], []))
    with pytest.raises(ProfileError, match="no table 'dbo.Assets' in database 'Aurora'"):
        P.assets(Catalog(P, [("ONLINE",)], [(None,)]))


def test_the_jobs_are_the_agents_own_and_named_by_parameter() -> None:
    (tree,) = parse_tsql(SqlServerProfile.JOBS)
    tables = {f"{t.catalog}.{t.db}.{t.name}" for t in tree.find_all(exp.Table)}
    assert tables == {
        "msdb.dbo.sysjobs",
        "msdb.dbo.sysjobactivity",
        "msdb.dbo.sysjobhistory",
    }
    # Only the Agent's current session counts (Microsoft Learn, dbo.sysjobactivity).
    assert "MAX(s.session_id)" in tree.sql(dialect="tsql")
    for statement in (SqlServerProfile.START_JOB, SqlServerProfile.STOP_JOB):
        ex = next(t for t in parse_tsql(statement) if isinstance(t, exp.Execute))
        assert ex.this.sql(dialect="tsql").lower() in (
            "msdb.dbo.sp_start_job",
            "msdb.dbo.sp_stop_job",
        )
        # The return code is read: 1 is failure even when no error came with it.
        assert ex.args.get("return_status") is not None


# -- msdb's answers ----------------------------------------------------------------------
def job(name: str, running: bool = False, status: int | None = None, at: int | None = None) -> Any:
    return (name, int(running), status, at)


WANTED = ("AuroraReplication", "AuroraReplicationBackup")


def states(*rows: Any) -> Replicating:
    jobs = job_states(list(rows), WANTED)
    return replication_of(jobs[WANTED[0]], jobs[WANTED[1]])


def test_a_dsms_role_is_the_job_that_runs_on_it() -> None:
    assert states(job("AuroraReplication", True), job("AuroraReplicationBackup")) == Replicating(
        "running", "master"
    )
    assert states(job("AuroraReplication"), job("AuroraReplicationBackup", True)) == Replicating(
        "running", "backup"
    )
    # msdb compares names without regard to case: so does the profile.
    assert states(job("aurorareplication", True), job("AURORAREPLICATIONBACKUP")).role == "master"


def test_without_a_running_job_the_last_outcome_counts() -> None:
    never = states(job("AuroraReplication"), job("AuroraReplicationBackup"))
    assert never == Replicating("stopped", "none")
    failed = states(job("AuroraReplication", status=0, at=7), job("AuroraReplicationBackup"))
    assert failed == Replicating("failed", "master")
    # Canceled by sp_stop_job (3) after an older failure: stopped.
    canceled = states(
        job("AuroraReplication", status=0, at=7), job("AuroraReplicationBackup", status=3, at=9)
    )
    assert canceled == Replicating("stopped", "none")
    assert states(
        job("AuroraReplication", status=1, at=3), job("AuroraReplicationBackup", status=0, at=4)
    ) == Replicating("failed", "backup")


def test_answers_that_do_not_read_whole_are_errors() -> None:
    with pytest.raises(ProfileError, match="'AuroraReplicationBackup'"):
        states(job("AuroraReplication", True))
    with pytest.raises(ProfileError, match="not both"):
        states(job("AuroraReplication", True), job("AuroraReplicationBackup", True))
    with pytest.raises(ProfileError, match="twice"):
        states(job("AuroraReplication"), job("auroraREPLICATION"), job("AuroraReplicationBackup"))
    with pytest.raises(ProfileError, match="columns"):
        states(("AuroraReplication", 1), job("AuroraReplicationBackup"))


def test_start_and_stop_read_the_return_code() -> None:
    class Answers:
        def __init__(self, rows: list[Any]) -> None:
            self.rows = rows

        def query(self, statement: str, *params: Any) -> list[Any]:
            assert statement == SqlServerProfile.START_JOB and params == ("AuroraReplication",)
            return self.rows

        def execute(self, statement: str, *params: Any) -> int:
            raise AssertionError("no result-less statement here")

    profile = SqlServerProfile(SqlServerDsm(), "Aurora")
    profile.start(Answers([(0,)]), "master", "")
    with pytest.raises(ProfileError, match="returned 1"):
        profile.start(Answers([(1,)]), "master", "")
    with pytest.raises(ProfileError, match="exactly one row"):
        profile.start(Answers([]), "master", "")


# -- the site check's reads: the jobs and the login's rights --------------------------------
def test_the_agent_role_is_asked_in_msdb() -> None:
    (tree,) = parse_tsql(SqlServerProfile.AGENT_ROLE)
    assert tree.this.sql(dialect="tsql").lower() == "msdb.sys.sp_executesql"
    # The statement it runs there (its quotes doubled inside N'...') parses too.
    inner = "SELECT IS_SRVROLEMEMBER(N'sysadmin'), IS_MEMBER(N'SQLAgentOperatorRole')"
    assert f"N'{inner.replace(chr(39), chr(39) * 2)}'" in SqlServerProfile.AGENT_ROLE
    (select,) = parse_tsql(inner)
    assert isinstance(select, exp.Select) and len(select.expressions) == 2


def test_missing_jobs_by_name_without_regard_to_case() -> None:
    assert missing_jobs([("aurorareplication",)], WANTED) == ["AuroraReplicationBackup"]
    assert missing_jobs([("AuroraReplication",), ("AURORAREPLICATIONBACKUP",)], WANTED) == []
    with pytest.raises(ProfileError, match="job name"):
        missing_jobs([("AuroraReplication", 1)], WANTED)


RIGHTS = P.rights


def test_missing_rights_from_the_role_and_the_permissions() -> None:
    every = [tuple([1] * len(RIGHTS))]
    assert missing_rights([(0, 1)], every, RIGHTS) == []
    # sysadmin is no member of the role, and may start any job.
    assert missing_rights([(1, 0)], every, RIGHTS) == []
    # SQLAgentUserRole only: its own jobs (the role is missing); NULL is not a right.
    some = [(1, 1, 1, 1, 1, 0, None)]
    assert missing_rights([(0, 0)], some, RIGHTS) == [
        OPERATOR_ROLE,
        "SELECT on amsm.dbo.AmsmDsmMode",
        "UPDATE on amsm.dbo.AmsmDsmMode",
    ]
    assert missing_rights([(None, None)], every, RIGHTS) == [OPERATOR_ROLE]


def test_rights_that_do_not_read_whole_are_errors() -> None:
    every = [tuple([1] * len(RIGHTS))]
    with pytest.raises(ProfileError, match="exactly one row"):
        missing_rights([], every, RIGHTS)
    with pytest.raises(ProfileError, match="columns"):
        missing_rights([(0, 1)], [(1, 1)], RIGHTS)
    with pytest.raises(ProfileError, match="not 1, 0 or NULL"):
        missing_rights([(0, 2)], every, RIGHTS)
    with pytest.raises(ProfileError, match="not 1, 0 or NULL"):
        missing_rights([(0, 1)], [("yes", *[1] * (len(RIGHTS) - 1))], RIGHTS)


def test_readiness_asks_msdb_and_binds_every_name() -> None:
    profile = SqlServerProfile(SqlServerDsm(asset_table="Aurora.MasterClips"), "K2")

    class Answers:
        state = "ONLINE"

        def query(self, statement: str, *params: Any) -> list[Any]:
            if statement == profile.JOB_NAMES:
                assert params == WANTED
                return [("AuroraReplication",)]
            if statement == profile.AGENT_ROLE:
                return [(0, 1)]
            if statement == profile.DATABASE_STATE:
                return [(self.state,)]
            mode = "amsm.dbo.AmsmDsmMode"
            assert params[10:14] == (mode, "SELECT", mode, "UPDATE")
            if self.state == "ONLINE":
                assert params[-2:] == ("K2.Aurora.MasterClips", "SELECT") and len(params) == 16
                return [tuple([1] * 7 + [0])]
            assert len(params) == 14
            return [tuple([1] * 7)]

        def execute(self, statement: str, *params: Any) -> int:
            raise AssertionError("the check changes nothing")

    answers = Answers()
    assert profile.readiness(answers) == Readiness(
        missing_jobs=["AuroraReplicationBackup"],
        missing_rights=["SELECT on K2.Aurora.MasterClips"],
    )
    # A backup's database that is restoring cannot be asked: its table's right is not.
    answers.state = "RESTORING"
    assert profile.readiness(answers) == Readiness(
        missing_jobs=["AuroraReplicationBackup"], missing_rights=[]
    )


# -- pyodbc's errors and messages ------------------------------------------------------------
AGENT_ERROR = (
    "[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]SQLServerAgent Error: "
    "Request to run job AuroraReplication (from User amsm) refused because the job is "
    "already running from a request by User amsm. (22022) (SQLMoreResults)"
)


def driver(profile: str = "sqlserver", password: str = "s3cret") -> DsmDriver:
    odbc = ODBC if profile == "sqlserver" else "Driver=SQLite3;Database=/nonexistent/x.db"
    dsm = Dsm(host="dsm-x", profile=profile, odbc=odbc)  # type: ignore[arg-type]
    return DsmDriver(dsm, "X", Secret("amsm", None, password), timeout=5)


def test_a_server_error_keeps_its_number_and_text() -> None:
    err = ServerError.of(pyodbc.ProgrammingError("42000", AGENT_ERROR))
    assert (err.state, err.native) == ("42000", 22022)
    assert err.text.endswith("already running from a request by User amsm.")
    got = driver()._translate(pyodbc.ProgrammingError("42000", AGENT_ERROR))
    assert isinstance(got, CommandFailed) and got.host == "dsm-x"
    assert str(got).startswith("dsm-x: SQL Server error 22022 (SQLSTATE 42000): [Microsoft]")
    # Further diagnostic records stay in the text.
    two = AGENT_ERROR + "; [01000] [Microsoft][SQL Server]Job step canceled. (0)"
    assert "Job step canceled. (0)" in ServerError.of(pyodbc.Error("42000", two)).text


def test_a_query_timeout_is_a_dsm_that_does_not_answer() -> None:
    e = pyodbc.OperationalError(
        "HYT00",
        "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0) "
        "(SQLExecDirectW)",
    )
    got = driver()._translate(e)
    assert isinstance(got, Unreachable) and got.retryable
    assert "SQL Server error 0 (SQLSTATE HYT00)" in str(got) and "Query timeout expired" in str(got)


def test_a_password_in_a_server_text_is_hidden() -> None:
    e = pyodbc.Error("42000", "[42000] near PWD={s3cret}: syntax error (102) (SQLExecDirectW)")
    got = driver()._translate(e)
    assert "s3cret" not in str(got) and "***" in str(got) and "error 102" in str(got)
    login = driver()._translate(pyodbc.Error("28000", "[28000] Login failed s3cret (18456)"))
    assert isinstance(login, AuthenticationFailed) and "s3cret" not in str(login)


def test_an_error_sent_as_a_message_is_an_error() -> None:
    # "Job 'AuroraReplication' started successfully." is information (class 01).
    _check_messages([("[01000] (0)", "[Microsoft][SQL Server]Job 'x' started successfully.")])
    _check_messages(None)
    with pytest.raises(_Message) as m:
        _check_messages([("[01000] (0)", "fine"), ("[42000] (14262)", "The specified job")])
    assert (m.value.error.state, m.value.error.native) == ("42000", 14262)


class Cursor:
    """A cursor as pyodbc gives it for a batch whose later statement fails: the error
    comes from nextset() (pyodbc issues #128, #739); pure logic of the driver's loop."""

    def __init__(self, sets: list[list[tuple[Any, ...]] | None], fail_at: int | None) -> None:
        self.sets, self.fail_at, self.at = sets, fail_at, 0
        self.messages: list[tuple[str, str]] | None = None
        self.rowcount = -1

    def execute(self, statement: str, *params: Any) -> Cursor:
        return self

    @property
    def description(self) -> Any:
        return None if self.sets[self.at] is None else [("rc",)]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.sets[self.at] or []

    def nextset(self) -> bool:
        self.at += 1
        if self.at == self.fail_at:
            raise pyodbc.ProgrammingError("42000", AGENT_ERROR)
        return self.at < len(self.sets)


def test_every_result_set_is_read_so_a_later_error_is_not_lost() -> None:
    assert _Session(Cursor([None, [(0,)]], None)).query("x") == [(0,)]
    with pytest.raises(pyodbc.ProgrammingError):
        _Session(Cursor([[(0,)], None], fail_at=1)).query("x")
    with pytest.raises(ProfileError, match="one result set, got 2"):
        _Session(Cursor([[(0,)], [(1,)]], None)).query("x")
    with pytest.raises(ProfileError, match="returned some"):
        _Session(Cursor([[(0,)]], None)).execute("x")


def test_odbc_timeouts_are_never_rounded_down_to_none() -> None:
    assert whole_seconds(0.1) == 1 and whole_seconds(10) == 10 and whole_seconds(2.5) == 3


# -- the inventory -----------------------------------------------------------------------------
def test_sqlserver_settings_default_and_are_refused_when_wrong() -> None:
    d = Dsm(host="dsm-x", profile="sqlserver", odbc=ODBC)
    assert d.sqlserver_settings == SqlServerDsm()
    assert d.sqlserver_settings.master_job == "AuroraReplication"
    custom = Dsm.model_validate(
        {
            "host": "dsm-x",
            "profile": "sqlserver",
            "odbc": ODBC,
            "sqlserver": {"master_job": "Réplication Aurora", "asset_table": "dbo.Clips"},
        }
    )
    assert custom.sqlserver_settings.master_job == "Réplication Aurora"
    bad: list[dict[str, Any]] = [
        {"profile": "lab", "sqlserver": {}},
        {"sqlserver": {"master_job": "x", "backup_job": "X"}},
        {"sqlserver": {"master_job": "job\n"}},
        {"sqlserver": {"master_job": ""}},
        {"sqlserver": {"asset_table": "dbo.Assets; DROP TABLE x"}},
        {"sqlserver": {"asset_table": "[dbo].[Assets]"}},
        {"sqlserver": {"backup": "x"}},
    ]
    for extra in bad:
        data = {"host": "dsm-x", "profile": "sqlserver", "odbc": ODBC} | extra
        with pytest.raises(ValidationError):
            Dsm.model_validate(data)


# -- failures to connect, as the ODBC driver prints them (tests/dsm_facts/connect) -----------
CONNECT = sorted((Path(__file__).resolve().parents[1] / "dsm_facts" / "connect").glob("*.json"))
KINDS = {
    "TlsRefused": TlsRefused,
    "Unreachable": Unreachable,
    "AuthenticationFailed": AuthenticationFailed,
}


def test_there_are_connect_cases() -> None:
    assert len(CONNECT) >= 6


@pytest.mark.parametrize("path", CONNECT, ids=lambda p: p.stem)
def test_a_failure_to_connect_is_named_for_what_it_is(path: Path) -> None:
    case = json.loads(path.read_text())
    assert case["doc"] and case["text"].startswith(f"[{case['state']}] ")
    err = driver(password="s3cret-pw").connect_failed(
        pyodbc.OperationalError(case["state"], case["text"])
    )
    assert type(err) is KINDS[case["expected_kind"]], err
    assert err.host == "dsm-x"
    for part in case["expected_parts"]:
        assert part in str(err), str(err)
    assert "s3cret-pw" not in str(err)


def test_the_replicated_and_the_state_database_are_named_and_kept_apart() -> None:
    d = Dsm(host="dsm-x", profile="sqlserver", odbc=ODBC)
    assert (d.replicated_database, d.sqlserver_settings.state_database) == ("Aurora", "amsm")
    named = Dsm.model_validate(
        {
            "host": "dsm-x",
            "profile": "sqlserver",
            "odbc": "DSN=dsm-x",
            "sqlserver": {"database": "K2Aurora", "state_database": "amsm_dsm"},
        }
    )
    assert named.replicated_database == "K2Aurora"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"odbc": "DSN=dsm-x"}, "name the database replication copies"),
        ({"sqlserver": {"state_database": "aurora"}}, "replication would overwrite the mode"),
        ({"sqlserver": {"state_database": "MSDB"}}, "nor a system database"),
        ({"sqlserver": {"state_database": "amsm]; DROP"}}, "not a valid database name"),
        ({"odbc": "Driver={ODBC Driver 18;Server=x"}, "opens a brace it never closes"),
        ({"odbc": "Server=x;Database=Au rora"}, "not a valid database name"),
    ]
    for extra, why in bad:
        data = {"host": "dsm-x", "profile": "sqlserver", "odbc": ODBC} | extra
        with pytest.raises(ValidationError, match=re.escape(why)):
            Dsm.model_validate(data)


# -- the site check names a refused handshake as TLS -----------------------------------------
class _Refusing:
    """A DSM driver whose every read fails as given (the check's decision is pure)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def readiness(self) -> Readiness:
        raise self.error


class _Ctx:
    def __init__(self, error: Exception) -> None:
        self.inv = load_inventory(Path(__file__).resolve().parent / "data" / "inventory.yaml")
        self.error = error

    def dsm(self, side: str) -> _Refusing:
        return _Refusing(self.error)


async def test_the_site_check_says_tls_when_the_handshake_is_refused() -> None:
    case = json.loads((CONNECT[0].parent / "tls10-server-openssl3.json").read_text())
    tls = driver().connect_failed(pyodbc.OperationalError(case["state"], case["text"]))
    down = driver().connect_failed(
        pyodbc.OperationalError("HYT00", "[HYT00] [x]Login timeout expired (0) (SQLDriverConnect)")
    )
    found = {}
    for name, err in (("tls", tls), ("down", down)):
        ctx = _Ctx(err)
        report = Report(CheckTarget(pair=ctx.inv.pair, host="dsm-x", role="dsm", side="X"))
        await check_dsm(ctx, "X", report)  # type: ignore[arg-type]
        (f,) = report.result.findings
        assert f.check == "dsm-answers" and f.severity == "problem"
        found[name] = f
    assert "TLS refused, not a DSM that is down" in found["tls"].fix
    assert "unsupported protocol" in found["tls"].found
    assert "TLS" not in found["down"].fix


class Refusing:
    """A cursor whose first statement answers `rows` and whose second raises `error`
    as pyodbc raises the server's refusal (pure logic of the driver's reading)."""

    def __init__(self, rows: list[tuple[Any, ...]], error: pyodbc.Error) -> None:
        self.rows, self.error, self.n = rows, error, 0
        self.messages: list[tuple[str, str]] | None = None
        self.rowcount = -1

    def execute(self, statement: str, *params: Any) -> Refusing:
        self.n += 1
        if self.n > 1:
            raise self.error
        return self

    description = [("state_desc",)]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def nextset(self) -> bool:
        return False


def _refusal(native: int, text: str) -> pyodbc.Error:
    # SQL Server's message as ODBC Driver 18 passes it on: SQLSTATE 42000 (class 14,
    # pyodbc's ProgrammingError), the message, its number, the ODBC function.
    return pyodbc.ProgrammingError(
        "42000",
        f"[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]{text} ({native}) "
        "(SQLExecDirectW)",
    )


@pytest.mark.parametrize(
    ("native", "text", "state"),
    [
        (927, "Database 'Aurora' cannot be opened. It is in the middle of a restore.", "restoring"),
        (942, "Database 'Aurora' cannot be opened because it is offline.", "offline"),
        (922, "Database 'Aurora' is being recovered. Waiting until recovery is finished.",
         "recovering"),
    ],
)  # fmt: skip
def test_a_database_that_changes_state_between_the_two_reads_is_that_state(
    native: int, text: str, state: str
) -> None:
    # sys.databases said ONLINE; by the count the backup's restore has begun: the count
    # is refused with the database's state (Microsoft Learn, Database engine events and
    # errors 0-999), which is that state, not a DSM that does not answer.
    sql = _Session(Refusing([("ONLINE",)], _refusal(native, text)))
    assert P.assets(sql) == Assets(None, state)


def test_a_refused_database_elsewhere_is_the_servers_error() -> None:
    # Anywhere but the count (a statement that needs the database), the refusal is
    # the server's error, named with its number, never an empty answer.
    e = _refusal(927, "Database 'Aurora' cannot be opened. It is in the middle of a restore.")
    with pytest.raises(DatabaseNotOpen) as refused:
        _second(e)
    assert refused.value.state == "restoring"
    got = driver()._translate(refused.value.cause)
    assert isinstance(got, CommandFailed) and "SQL Server error 927" in str(got), str(got)


def _second(e: pyodbc.Error) -> None:
    s = _Session(Refusing([("ONLINE",)], e))
    s.query("first")
    s.query("second")
