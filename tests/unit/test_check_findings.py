"""How the site check names what stopped a host's first read, and what its host-wide
reads make of an answer (activities/checks/hosts.py): pure logic over the error tree."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from activities.checks import hosts
from activities.checks.report import Report
from activities.drivers.errors import (
    AuthenticationFailed,
    HostNotTrusted,
    LogonRefused,
    Unreachable,
)
from activities.models import CheckRole, CheckTarget
from activities.surveys.models import Exchange
from activities.surveys.replay import ReplayedHost
from api.check import retention_problem
from inventory.load import load_inventory
from inventory.models import Host, WinRm

INV = load_inventory(Path(__file__).resolve().parent / "data" / "inventory.yaml")
FACTS = Path(__file__).resolve().parents[1] / "facts"
SSH = Host(host="sb-x1", address="192.0.2.11", credentials="admin")


def winrm(scheme: str, auth: str) -> Host:
    w = WinRm(scheme=scheme, auth=auth, allow_http=scheme == "http")  # type: ignore[arg-type]
    return Host(host="mf-01", address="192.0.2.40", credentials="admin", transport="winrm", winrm=w)


def findings(role: CheckRole, host: Host, e: Exception) -> list[tuple[str, str]]:
    report = Report(CheckTarget(pair=INV.pair, host=host.host, role=role))
    hosts.unanswered(INV, role, host, report, e)
    return [(f.check, f.severity) for f in report.result.findings]


def test_a_host_key_or_certificate_that_does_not_verify_is_named_as_such() -> None:
    key = HostNotTrusted("sb-x1", "host key not verified", "host-key")
    assert findings("smartbins", SSH, key) == [("host-key", "problem")]
    cert = HostNotTrusted("mf-01", "certificate not trusted", "certificate")
    assert findings("browse", winrm("https", "ntlm"), cert) == [("certificate", "problem")]
    # On a host no step acts on, a warning.
    assert findings("bridge", SSH, key) == [("host-key", "warning")]


def test_a_refused_basic_logon_names_basic_and_nothing_else_does() -> None:
    refused = LogonRefused("mf-01", "user 'Administrator' was refused")
    assert findings("browse", winrm("http", "basic"), refused) == [("winrm-basic", "problem")]
    assert findings("browse", winrm("https", "ntlm"), refused) == [("browse-answers", "problem")]
    # Credentials that could not be used at all are no Basic setting of the host's.
    unusable = AuthenticationFailed("mf-01", "WinRM needs password credentials")
    assert findings("browse", winrm("http", "basic"), unusable) == [("browse-answers", "problem")]
    down = Unreachable("sb-x1", "no answer")
    assert findings("smartbins", SSH, down) == [("smartbins-answers", "problem")]
    assert findings("nas-ftp", SSH, down) == [("host-answers", "warning")]


def test_powershell_older_than_5_1_is_a_problem() -> None:
    for version, found in (((5, 1), []), ((7, 4), []), ((5, 0), ["PowerShell 5.0"])):
        report = Report(CheckTarget(pair=INV.pair, host="ED-01", role="client"))
        hosts.powershell(version, report)
        assert [f.found for f in report.result.findings] == found
        assert report.result.checks == ["powershell"]


async def _ssh_shell(case: str, host: Host = SSH, role: CheckRole = "smartbins") -> Report:
    """hosts.ssh_shell over a recorded answer (tests/facts/ssh_default_shell/<case>)."""
    data = json.loads((FACTS / "ssh_default_shell" / f"{case}.json").read_text())
    fields = set(Exchange.model_fields)
    answers = [
        Exchange(**{k: v for k, v in e.items() if k in fields})
        for e in [data, *data.get("then", [])]
    ]
    report = Report(CheckTarget(pair=INV.pair, host=host.host, role=role))
    await hosts.ssh_shell(host, ReplayedHost(host.host, host.transport, answers), report)
    return report


async def test_an_sshd_default_shell_other_than_cmd_is_a_problem() -> None:
    # Win32-OpenSSH runs `"<DefaultShell>" -c "<command>"` (its wiki, "DefaultShell").
    report = await _ssh_shell("powershell")
    [f] = report.result.findings
    assert (f.check, f.severity) == ("ssh-shell", "problem") and "powershell.exe" in f.found
    assert "DefaultShell" in f.fix and "winrm" in f.fix
    assert (await _ssh_shell("no-key")).result.findings == []
    assert "ssh-shell" in (await _ssh_shell("no-key")).result.checks
    # On a bridge no step acts: a warning.
    [w] = (await _ssh_shell("powershell", role="bridge")).result.findings
    assert w.severity == "warning"
    # Over WinRM sshd is not asked.
    nothing = Report(CheckTarget(pair=INV.pair, host="mf-01", role="browse"))
    await hosts.ssh_shell(winrm("https", "ntlm"), ReplayedHost("mf-01", "winrm", []), nothing)
    assert nothing.result.findings == [] and "ssh-shell" not in nothing.result.checks


def test_a_retention_shorter_than_a_signed_act_lives_is_a_problem() -> None:
    assert retention_problem("default", timedelta(days=1)) is None
    assert retention_problem("default", timedelta(minutes=11, seconds=1)) is None
    short = retention_problem("default", timedelta(minutes=11))
    assert short is not None and short.check == "temporal-retention", short
    assert "keeps closed workflows 0:11:00" in short.found, short.found
    assert "--retention 72h" in short.fix, short.fix
