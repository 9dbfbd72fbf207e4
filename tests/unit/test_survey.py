"""The survey's pure parts: the register's checks on hand-made facts (what the lab does
not model yet: a write filter, a persistent login, a SQL Server's answers), the probes'
readings, the scan for the worker's secrets, and the replay of a recorded answer."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.drivers import powershell as ps
from activities.drivers.credentials import CredentialStore
from activities.survey import bounded
from activities.surveys import probes, register
from activities.surveys.facts import FACTS
from activities.surveys.models import (
    ANSWER_BOUND,
    HOST_BOUND,
    Exchange,
    FactRecord,
    HostSurvey,
    SurveyTarget,
    plain,
    unplain,
)
from activities.surveys.recording import RecordingSql
from activities.surveys.replay import fact_file, replay
from activities.surveys.secrets import forms, held_secrets, withhold
from inventory.load import load_inventory, parse_inventory
from inventory.models import Inventory

INVENTORY = Path(__file__).resolve().parent / "data" / "inventory.yaml"
ED = "ED-01"
X_IQN = "iqn.1999-06.com.grassvalley:k2-x"
Y_IQN = "iqn.1999-06.com.grassvalley:k2-y"


@pytest.fixture
def inv() -> Inventory:
    return load_inventory(INVENTORY)


def facts(**values: Any) -> list[FactRecord]:
    out = []
    for name, v in values.items():
        fact, _, variant = name.partition("__")
        if isinstance(v, Exception):
            out.append(
                FactRecord(fact=fact, host=ED, variant=variant or None, expected_error=str(v))
            )
        else:
            out.append(FactRecord(fact=fact, host=ED, variant=variant or None, expected=v))
    return out


def verdicts(
    inv: Inventory,
    records: list[FactRecord],
    host: str = ED,
    role: str = "client",
    side: str | None = None,
) -> dict[str, Any]:
    t = SurveyTarget(pair=inv.pair, host=host, role=role, side=side)  # type: ignore[arg-type]
    return {a.id: a for a in register.evaluate(records, inv, t)}


ON_X = {"side": "X", "status": "online"}


def test_the_register_is_one_list_over_known_facts() -> None:
    ids = [a.id for a in register.REGISTER]
    assert len(ids) == len(set(ids))
    for a in register.REGISTER:
        assert set(a.facts) <= set(FACTS), a.id
        assert a.source and a.assumption


def test_a_write_filter_on_contradicts_with_what_to_set(inv: Inventory) -> None:
    got = verdicts(inv, facts(write_filter_state={"uwf": "absent", "fbwf": "on", "ewf": "absent"}))
    wf = got["write-filter"]
    assert wf.verdict == "contradicted" and "FBWF on" in wf.evidence
    # amsm turns only UWF off by itself: for FBWF there is no setting, only what to do.
    assert wf.setting is None and "FBWF off" in (wf.fix or "")
    uwf = verdicts(inv, facts(write_filter_state={"uwf": "on", "fbwf": "absent", "ewf": "absent"}))
    assert uwf["write-filter"].verdict == "contradicted"
    assert uwf["write-filter"].setting == "devices.uwf_off_for_switch"
    assert uwf["write-filter"].value is True
    off = verdicts(inv, facts(write_filter_state={"uwf": "off", "fbwf": "absent", "ewf": "absent"}))
    assert off["write-filter"].verdict == "verified"
    unknown = verdicts(
        inv, facts(write_filter_state={"uwf": "absent", "fbwf": "absent", "ewf": "unknown"})
    )
    assert unknown["write-filter"].verdict == "could not be read"


def test_an_unrelated_iscsi_disk_contradicts_with_what_to_set(inv: Inventory) -> None:
    other = "iqn.1991-05.com.microsoft:backup-disk"
    sessions = [
        {"target": X_IQN, "connected": True, "persistent": True},
        {"target": other, "connected": True, "persistent": True},
    ]
    got = verdicts(inv, facts(iscsi_sessions=sessions, client_facts=ON_X))
    t = got["iscsi-targets"]
    assert t.verdict == "contradicted" and other in t.evidence
    assert t.setting == "sides.X.iscsi_targets" and t.value == [other]
    assert "an unrelated disk needs nothing" in (t.fix or "")
    assert got["iscsi-one-side"].verdict == "verified"
    # A redundant SAN's B path: a second session to the side's own target.
    b_path = [*sessions[:1], {"target": X_IQN, "connected": True, "persistent": True}]
    paths = verdicts(inv, facts(iscsi_sessions=b_path, client_facts=ON_X))["iscsi-targets"]
    assert paths.verdict == "verified" and f"{X_IQN} (2 sessions)" in paths.evidence
    both = [*sessions[:1], {"target": Y_IQN, "connected": True, "persistent": False}]
    assert verdicts(inv, facts(iscsi_sessions=both))["iscsi-one-side"].verdict == "contradicted"


def test_a_persistent_login_to_the_other_side_contradicts(inv: Inventory) -> None:
    def login(target: str, address: str) -> dict[str, Any]:
        return {"target": target, "initiator": "ROOT\\ISCSIPRT\\0000_0",
                "initiator_port": 4294967295, "address": address, "socket": 3260}  # fmt: skip

    logins = [login(X_IQN, "10.1.0.31"), login(Y_IQN, "10.2.0.31")]
    got = verdicts(inv, facts(iscsi_persistent_logins=logins, client_facts=ON_X))
    assert got["persistent-logins"].verdict == "contradicted"
    assert Y_IQN in got["persistent-logins"].evidence
    mine = verdicts(inv, facts(iscsi_persistent_logins=logins[:1], client_facts=ON_X))
    assert mine["persistent-logins"].verdict == "verified"
    none = verdicts(inv, facts(client_facts=ON_X))
    assert none["persistent-logins"].verdict == "could not be read"


def test_fsnameservers_elsewhere_or_nowhere(inv: Inventory) -> None:
    path = inv.devices.snfs_nameservers_file
    moved = r"C:\SNFS\config\fsnameservers"
    reading = {"places": {path: False, moved: True}, "found": moved, "lists": ["10.1.0.31"]}
    got = verdicts(inv, facts(fsnameservers=reading, client_facts=ON_X))
    f = got["fsnameservers-file"]
    assert f.verdict == "contradicted"
    assert f.setting == "devices.snfs_nameservers_file" and f.value == moved
    # X has no fsnameservers in this inventory: what a client of X lists is what to set.
    lists = got["fsnameservers-lists"]
    assert lists.verdict == "contradicted"
    assert lists.setting == "sides.X.fsnameservers" and lists.value == ["10.1.0.31"]
    nowhere = {"places": {path: False, moved: False}, "found": None, "lists": None}
    got = verdicts(inv, facts(fsnameservers=nowhere, client_facts=ON_X))
    assert got["fsnameservers-file"].verdict == "contradicted"
    assert got["fsnameservers-file"].value is None
    assert got["fsnameservers-lists"].verdict == "could not be read"


def test_the_dsm_pointer_in_another_form(inv: Inventory) -> None:
    same = verdicts(
        inv, facts(dsm_pointer_value={"value": "dsm-x", "form": "name"}, client_facts=ON_X)
    )
    assert same["dsm-pointer"].verdict == "verified"
    # Compared without regard to case, as the client switch compares it.
    upper = {"value": "DSM-X", "form": "name"}
    assert (
        verdicts(inv, facts(dsm_pointer_value=upper, client_facts=ON_X))["dsm-pointer"].verdict
        == "verified"
    )
    for value in ("dsm-x.site.example", "DSM-X\\AURORA", "10.1.0.5"):
        reading = {"value": value, "form": probes.pointer_form(value)}
        p = verdicts(inv, facts(dsm_pointer_value=reading, client_facts=ON_X))["dsm-pointer"]
        assert p.verdict == "contradicted", value
        assert p.setting == "sides.X.aurora_dsm_pointer" and p.value == value


def test_a_fact_that_raised_is_not_read_with_its_first_line(inv: Inventory) -> None:
    got = verdicts(
        inv,
        facts(write_filter_state=RuntimeError("ED-01: PowerShell reported an error: x\nAt line:4")),
    )
    assert got["write-filter"].verdict == "could not be read"
    assert (
        got["write-filter"].evidence == "write_filter_state: ED-01: PowerShell reported an error: x"
    )
    # Not read at all: the same.
    assert verdicts(inv, [])["write-filter"].verdict == "could not be read"


def test_sql_server_answers(inv: Inventory) -> None:
    records = [
        FactRecord(
            fact="sql_version",
            host="dsm-x",
            expected={
                "productversion": "10.50.6000.34",
                "productlevel": "SP3",
                "edition": "Standard Edition",
                "servername": "DSM-X",
            },
        ),
        FactRecord(
            fact="sql_databases",
            host="dsm-x",
            expected=[
                {
                    "name": "Aurora",
                    "compatibility_level": 80,
                    "recovery_model": "FULL",
                    "state": "ONLINE",
                    "current": True,
                },
            ],
        ),
        FactRecord(
            fact="dsm_readiness",
            host="dsm-x",
            expected={"missing_jobs": ["AuroraReplicationBackup"], "missing_rights": []},
        ),
        FactRecord(
            fact="sql_jobs",
            host="dsm-x",
            expected={"server": "DSM-X", "jobs": [{"name": "K2 Mirror", "enabled": True}]},
        ),
    ]
    got = verdicts(inv, records, host="dsm-x", role="dsm", side="X")
    assert got["sql-version"].verdict == "verified" and "10.50" in got["sql-version"].evidence
    # Level 80 is shown, not refused: the statements run in msdb (issue 25 #2).
    assert got["dsm-database"].verdict == "verified" and "level 80" in got["dsm-database"].evidence
    jobs = got["replication-jobs"]
    assert jobs.verdict == "contradicted" and "K2 Mirror" in jobs.evidence
    assert jobs.setting == "sides.X.dsm.sqlserver.backup_job"
    assert got["msdb-rights"].verdict == "verified"
    assert got["tls-versions"].verdict == "could not be read"
    state = got["dsm-state-database"]
    assert state.verdict == "contradicted" and "'amsm' is not on this server" in state.evidence
    assert state.setting == "sides.X.dsm.sqlserver.state_database" and state.value == "amsm"


def test_write_filter_displays() -> None:
    assert (
        probes.filter_state(
            "File-based write filter configuration for the current session:\r\n    filter state: enabled.\r\n"
        )
        == "on"
    )
    assert probes.filter_state("    filter state: disabled.\n") == "off"
    assert (
        probes.filter_state(
            "Protected Volume Configuration\n  Type            RAM (REG)\n  State           ENABLED\n"
        )
        == "on"
    )
    assert (
        probes.filter_state("Protected Volume Configuration\n  State           DISABLED\n") == "off"
    )
    assert probes.filter_state("Access is denied.") == "unknown"


def test_pointer_forms() -> None:
    assert [probes.pointer_form(v) for v in ("dsm-x", "dsm-x.a.b", "10.0.0.1", "DSM\\SQL")] == [
        "name",
        "fqdn",
        "ip",
        "instance",
    ]


def test_an_answer_holding_a_secret_is_withheld() -> None:
    secret = 'p4ss"word<&>'
    shapes = forms(secret)
    assert secret in shapes and 'p4ss\\"word<&>' in shapes and 'p4ss"word&lt;&amp;&gt;' in shapes
    for shown in (secret, 'p4ss"word&lt;&amp;&gt;'):
        record = FactRecord(
            fact="services",
            host=ED,
            args={"names": ["x"]},
            exchanges=[
                Exchange(command=["Get-Service"], stdout=f"cmd /c run -p {shown}", exit_code=0)
            ],
            expected={"x": "Running"},
        )
        kept = withhold(record, shapes)
        assert kept.withheld and kept.exchanges == [] and kept.expected is None and kept.args == {}
        assert secret not in kept.model_dump_json()
    clean = FactRecord(fact="services", host=ED, exchanges=[Exchange(command=["x"], stdout="ok")])
    assert withhold(clean, shapes) is clean


def test_sql_cells_come_back_as_the_odbc_driver_gave_them() -> None:
    cells = [
        dt.datetime(2026, 3, 29, 2, 30),
        dt.date(2026, 1, 1),
        decimal.Decimal("1.50"),
        b"\x00\xff",
        "x",
        3,
        None,
    ]
    assert [unplain(plain(c)) for c in cells] == cells


async def test_a_recorded_answer_replays_and_a_changed_one_does_not(inv: Inventory) -> None:
    record = FactRecord(
        fact="powershell_version",
        host=ED,
        exchanges=[
            Exchange(
                command=list(ps.POWERSHELL_VERSION),
                stdout="5\r\n#amsm 1/2\r\n1\r\n#amsm 2/2\r\n",
                exit_code=0,
            )
        ],
        expected=[5, 1],
    )
    header = HostSurvey(host=ED, role="client", transport="ssh", powershell="5.1", time="t")
    data = fact_file(record, header)
    assert data["command"] == list(ps.POWERSHELL_VERSION) and data["exit_code"] == 0
    assert await replay(data, inv) is None
    changed = {**data, "stdout": "4\r\n#amsm 1/2\r\n0\r\n#amsm 2/2\r\n"}
    assert "reads [4, 0]" in (await replay(changed, inv) or "")
    other = {**data, "command": ["$PSVersionTable.PSVersion.Major"]}
    assert "other statements" in (await replay(other, inv) or "")
    dsm = FactRecord(fact="dsm_status", host="dsm-x", expected_error="dsm-x: no answer over ODBC")
    unreached = fact_file(dsm, HostSurvey(host="dsm-x", role="dsm", side="X", transport="odbc"))
    assert (await replay(unreached, inv) or "").startswith("not replayed: nothing was answered")
    cut = {**data, "stdout_truncated": True}
    assert (await replay(cut, inv) or "").startswith("not replayed")


def test_the_worker_s_own_secrets_are_scanned_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inv: Inventory
) -> None:
    codec = tmp_path / "codec.keys"
    codec.write_text("k1:q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQ\n")
    monkeypatch.setenv("TEMPORAL_API_KEY", "eyJhbGciOiJFUzI1NiJ9.api-key")
    monkeypatch.setenv("AMSM_CODEC_KEY_FILE", str(codec))
    held = held_secrets(inv, CredentialStore(inv, INVENTORY))
    assert "eyJhbGciOiJFUzI1NiJ9.api-key" in held
    assert "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQ" in held


def test_the_survey_loads_no_operation() -> None:
    """`amsm survey` reads facts only: its activities load no module that changes a
    device, nor the families that act (as tests/unit/test_rooms.py pins for the check)."""
    code = (
        "import sys, activities.survey\n"
        "print(sorted(m for m in sys.modules if m.startswith('activities.drivers.operations')"
        " or m in ('activities.dsm', 'activities.browse', 'activities.clients',"
        " 'activities.smartbins', 'activities.sync_tools', 'activities.media')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_a_statement_that_changes_a_dsm_is_refused_and_recorded() -> None:
    log: list[Any] = []
    sql = RecordingSql(object(), log)
    with pytest.raises(PermissionError):
        sql.execute("UPDATE dbo.AmsmDsmMode SET mode = ?", "main")
    assert log[0].kind == "execute" and log[0].error.startswith("refused")


def test_a_host_s_answers_are_kept_under_their_bounds() -> None:
    big = FactRecord(
        fact="media_listing",
        host="sb-x1",
        expected={"clips": {str(i): "c" * 40 for i in range(2000)}},
    )
    many = [
        FactRecord(
            fact="services",
            host="sb-x1",
            variant=str(i),
            exchanges=[Exchange(command=["x"], stdout="y" * ANSWER_BOUND)],
        )
        for i in range(120)
    ]
    kept = bounded([big, *many])
    assert kept[0].expected is None and kept[0].expected_truncated and kept[0].truncated
    assert sum(len(r.model_dump_json()) for r in kept) <= HOST_BOUND
    assert all(r.truncated == (len(r.exchanges[0].stdout) < ANSWER_BOUND) for r in kept[1:])
    assert any(not r.truncated for r in kept[1:])


AURORA = r"HKLM:\SOFTWARE\GVG\Aurora"
AURORA_32 = r"HKLM:\SOFTWARE\WOW6432Node\GVG\Aurora"


def views(v64: Any, v32: Any, there64: bool = True, there32: bool = True) -> dict[str, Any]:
    return {
        "64-bit": {"key": AURORA, "there": there64, "value": v64},
        "32-bit": {"key": AURORA_32, "there": there32, "value": v32},
    }


def test_the_dsm_pointer_only_in_the_32_bit_view_contradicts(inv: Inventory) -> None:
    # A 32-bit Aurora reads HKLM\SOFTWARE\WOW6432Node (Microsoft Learn, Registry
    # Redirector); amsm's 64-bit powershell.exe writes the inventory's key as it is.
    got = verdicts(inv, facts(dsm_pointer_views=views(None, "dsm-x", there64=False)))
    v = got["dsm-pointer-view"]
    assert v.verdict == "contradicted" and "32-bit" in v.evidence
    assert v.setting == "devices.aurora_registry" and v.value == AURORA_32
    ok = verdicts(inv, facts(dsm_pointer_views=views("dsm-x", None, there32=False)))
    assert ok["dsm-pointer-view"].verdict == "verified"
    assert "64-bit" in ok["dsm-pointer-view"].evidence
    # Two views that disagree: which one Aurora reads is its own bitness, not known here.
    both = verdicts(inv, facts(dsm_pointer_views=views("dsm-x", "dsm-y")))["dsm-pointer-view"]
    assert both.verdict == "contradicted" and "dsm-y" in both.evidence and both.value is None
    same = verdicts(inv, facts(dsm_pointer_views=views("dsm-x", "DSM-X")))["dsm-pointer-view"]
    assert same.verdict == "verified"
    none = verdicts(inv, facts(dsm_pointer_views=views(None, None)))["dsm-pointer-view"]
    assert none.verdict == "contradicted" and none.setting == "devices.aurora_registry"


def test_registry_views_of_a_key() -> None:
    assert probes.registry_views(AURORA) == {"64-bit": AURORA, "32-bit": AURORA_32}
    assert probes.registry_views(AURORA_32) == {"64-bit": AURORA, "32-bit": AURORA_32}
    # HKLM\SYSTEM is not redirected: one view.
    assert probes.registry_views(r"HKLM:\SYSTEM\X") == {"64-bit": r"HKLM:\SYSTEM\X"}


def test_an_ssh_default_shell_other_than_cmd_contradicts(inv: Inventory) -> None:
    # sshd runs `"<DefaultShell>" -c "<command>"` for any shell but cmd.exe
    # (Win32-OpenSSH wiki, DefaultShell; w32-doexec.c): the drivers' line is cmd.exe's.
    shell = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    got = verdicts(inv, facts(ssh_default_shell={"key": True, "shell": shell, "option": None}))
    s = got["ssh-default-shell"]
    assert s.verdict == "contradicted" and shell in s.evidence and "-c" in s.evidence
    assert "DefaultShell" in (s.fix or "") and "winrm" in (s.fix or "").lower()
    for reading in (
        {"key": False, "shell": None, "option": None},
        {"key": True, "shell": None, "option": None},
        {"key": True, "shell": r"C:\Windows\System32\cmd.exe", "option": None},
    ):
        assert verdicts(inv, facts(ssh_default_shell=reading))["ssh-default-shell"].verdict == (
            "verified"
        ), reading


def sql(version: str) -> FactRecord:
    return FactRecord(
        fact="sql_version",
        host="dsm-x",
        expected={
            "productversion": version,
            "productlevel": "SP4",
            "edition": "Standard Edition",
            "servername": "DSM-X",
        },
    )


def with_driver(inv: Inventory, driver: str) -> Inventory:
    """The test inventory with each DSM's ODBC string naming `driver`."""
    data = yaml.safe_load(INVENTORY.read_text())
    for s in ("X", "Y"):
        odbc = f"Driver={{{driver}}};Server=dsm-{s.lower()};Database=Aurora"
        data["sides"][s]["dsm"]["odbc"] = odbc
    return parse_inventory(yaml.safe_dump(data), str(INVENTORY))


def test_the_odbc_driver_against_the_dsm_s_sql_server(inv: Inventory) -> None:
    # Microsoft Learn, ODBC driver "System requirements", SQL version compatibility.
    def odbc(version: str, driver: str = "ODBC Driver 18 for SQL Server") -> Any:
        got = verdicts(with_driver(inv, driver), [sql(version)], host="dsm-x", role="dsm", side="X")
        return got["odbc-driver"]

    assert odbc("15.0.2000.5").verdict == "verified"  # 2019
    old = odbc("9.00.5000.00")  # SQL Server 2005
    assert old.verdict == "contradicted" and "SQL Server 2005" in old.evidence
    assert "ODBC Driver 18 for SQL Server" in old.evidence
    # Only ODBC Driver 11's row lists SQL Server 2005, which has no TLS 1.2.
    assert "ODBC Driver 11" in (old.fix or "") and "openssl-legacy-tls.cnf" in (old.fix or "")
    assert old.setting == "sides.X.dsm.odbc"
    r2 = odbc("10.50.6000.34")  # 2008 R2: no release of 18 lists it
    assert r2.verdict == "contradicted" and "SQL Server 2008 R2" in r2.evidence
    assert "ODBC Driver 17 for SQL Server 17.0-17.2" in (r2.fix or "")
    # 2012: only 18.0 lists it; the ODBC string names the major version only.
    some = odbc("11.0.7001.0")
    assert some.verdict == "contradicted" and "18.0" in some.evidence
    assert odbc("10.50.6000.34", "ODBC Driver 17 for SQL Server").verdict == "contradicted"
    assert odbc("11.0.7001.0", "ODBC Driver 17 for SQL Server").verdict == "verified"
    assert odbc("9.00.5000.00", "ODBC Driver 11 for SQL Server").verdict == "verified"
    assert odbc("10.50.6000.34", "FreeTDS").verdict == "could not be read"
    unread = verdicts(inv, [], host="dsm-x", role="dsm", side="X")["odbc-driver"]
    assert unread.verdict == "could not be read"


def test_only_the_lab_s_read_only_attach_is_let_through() -> None:
    class Session:
        def execute(self, statement: str, *params: Any) -> int:
            return 0

    log: list[Any] = []
    sql = RecordingSql(Session(), log)
    attach = "ATTACH DATABASE ? AS replicated"
    assert sql.execute(attach, "file:/lab/dsm-x-aurora.db?mode=ro") == 0
    assert log[0].kind == "execute" and log[0].error is None
    for uri in ("file:/lab/dsm-x-aurora.db?mode=rw", "file:/lab/x.db?mode=ro&x=1?mode=ro"):
        with pytest.raises(PermissionError):
            sql.execute(attach, uri)
    assert log[-1].error and log[-1].error.startswith("refused")


def test_the_survey_s_inventory_keeps_only_driver_and_database(inv: Inventory) -> None:
    from client.commands.survey import site_inventory

    data = site_inventory(with_driver(inv, "ODBC Driver 17 for SQL Server"))
    assert data["sides"]["X"]["dsm"]["odbc"] == (
        "Driver={ODBC Driver 17 for SQL Server};Database=Aurora"
    )
    assert parse_inventory(yaml.safe_dump(data), "inventory.json").sides["X"].dsm.host == "dsm-x"
