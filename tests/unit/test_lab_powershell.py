"""The lab's PowerShell subset: every builder runs, everything else is refused loudly."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from activities.drivers import powershell as ps
from lab.faults import set_fault
from lab.init import init_lab, iqn
from lab.powershell import UNSUPPORTED, ScriptResult, Unsupported, parse_script, tokenize
from lab.state import HostDown, LabState

SB = r"HKLM:\SOFTWARE\GVG\SmartBins"
INSYNC = r"HKLM:\SOFTWARE\GVG\InSync"
CFG = r"C:\Thomson\MediaFrame\Configuration"
CLIP = r"V:\VibrantAVIFiles\News\clip-001.vmf\clip-001.vid"
HOSTILE = [
    "a'; Stop-Computer; '",
    "a\u2019; Stop-Computer; \u2018",
    "$(Stop-Computer)",
    "`whoami`",
    'say "hi"',
    "x & y | z ; w",
    "$env:PATH",
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bigger pair than the unit tests' default (tests/unit/conftest.py)."""
    d = tmp_path_factory.mktemp("lab-template")
    init_lab(d, editors=2, ingest=1, smartbins=2, reboot_seconds=0.3)
    return d


def bare(*statements: str) -> str:
    """The statements after `$ErrorActionPreference = 'Stop'` only, without the drivers'
    markers: what PowerShell itself prints for them."""
    return "\n".join([ps.PREAMBLE[0], *statements])


def run(lab: LabState, host: str, *statements: str) -> ScriptResult:
    return lab.run_script(host, bare(*statements))


def doc(lab: LabState, host: str) -> dict:
    return lab.read()[1][host]


def every_builder(v: str) -> list[str]:
    """One statement from every builder, with `v` wherever a value goes."""
    return [
        ps.get_services([v, v]),
        ps.start_service(v),
        ps.stop_service(v),
        ps.get_process(v),
        ps.stop_process(4242),
        ps.get_registry(f"HKLM:\\SOFTWARE\\{v}", ["Mode", "Other"]),
        ps.set_registry(f"HKLM:\\SOFTWARE\\{v}", v, v),
        ps.copy_file(f"C:\\{v}", f"C:\\{v}.bak"),
        ps.rename_file(f"C:\\{v}", "b.txt"),
        ps.test_path(f"V:\\{v}"),
        ps.get_content(f"C:\\{v}"),
        ps.file_hash(f"C:\\{v}"),
        ps.restart_computer(),
        ps.boot_info(),
        ps.iscsi_sessions(),
        ps.iscsi_session_details(),
        ps.iscsi_portals(),
        ps.iscsi_add_portal(v, 3260),
        ps.iscsi_refresh_portal(v, 3260),
        ps.iscsi_disconnect(v),
        ps.iscsi_connect(v, v),
        ps.iscsi_register(v),
        ps.iscsi_unregister(v),
        ps.get_commands([v, v]),
        ps.set_content(f"C:\\{v}", [v, v]),
        ps.test_port(v, 3260),
        ps.wait_process([4242, 4343], 5),
    ]


# -- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["SmartBins", "GV K2 MDI", "a.b-c_(1)", *HOSTILE])
def test_every_builder_parses_and_values_stay_literal(value: str) -> None:
    statements = parse_script(ps.script(*every_builder(value)))
    assert [st.setting for st in statements[: len(ps.PREAMBLE)]] == [
        ("ErrorActionPreference", "Stop"),
        ("ProgressPreference", "SilentlyContinue"),
        ("OutputEncoding", "UTF8"),
    ]
    n = len(every_builder(value))
    markers = [st.output for st in statements if st.output is not None]
    assert markers == [f"#amsm {i}/{n}" for i in range(1, n + 1)]
    commands = [st.commands for st in statements if st.commands is not None]
    assert len(commands) == n
    get_services = commands[0]
    assert get_services[0].args["Name"] == [value, value]
    set_registry = commands[6]
    assert set_registry[0].args["Value"] == value


NOT_BUILDERS = {
    "q",
    "qlist",
    "script",
    "encoded_command",
    "decode_command",
    "split_output",
    "command_length",
    "max_command_length",
    "fits",
    "batches",
    "batch_groups",
    "clixml_unescape",
    "prop",
}


def all_builders() -> list[Callable[..., str]]:
    """Every statement builder the drivers module defines, found by introspection."""
    return [
        f
        for name, f in vars(ps).items()
        if inspect.isfunction(f)
        and f.__module__ == ps.__name__
        and not name.startswith(("_", "parse_"))
        and name not in NOT_BUILDERS
    ]


def sample_call(f: Callable[..., str], v: str) -> str:
    args: list[object] = []
    for p in inspect.signature(f).parameters.values():
        annotation = str(p.annotation)
        if f is ps.get_registry and p.name == "names":
            args.append(["Mode", "Other"])  # property names are bare words
        elif "Sequence[int]" in annotation:
            args.append([4242, 4343])  # process Ids
        elif "Sequence" in annotation:
            args.append([v, v])
        elif annotation in ("int", "int | None"):
            args.append(3260)
        elif p.name == "new_name":
            args.append(v.replace("\\", "_"))
        else:
            args.append(v)
    return f(*args)


@pytest.mark.parametrize("value", ["SmartBins", *HOSTILE])
@pytest.mark.parametrize("builder", all_builders(), ids=lambda f: f.__name__)
def test_every_builder_in_the_drivers_module_is_understood(
    builder: Callable[..., str], value: str
) -> None:
    statements = parse_script(bare(sample_call(builder, value)))
    assert len(statements) == 2 and statements[1].commands is not None


def test_quote_characters_are_all_quotes_and_doubling_escapes() -> None:
    raw = tokenize("Start-Service -Name \u2018it\u2019\u2019s\u2019")[0]
    assert raw.tokens[-1].kind == "string" and raw.tokens[-1].value == "it\u2019s"


def test_semicolon_separates_statements() -> None:
    statements = parse_script("$ErrorActionPreference = 'Stop'; Test-Path -LiteralPath 'C:\\'")
    assert len(statements) == 2


@pytest.mark.parametrize(
    "statement",
    [
        "Invoke-Expression 'x'",
        "iex 'x'",
        'Get-Service -Name "SmartBins" | Select-Object Name,Status | ConvertTo-Json -Compress',
        "Get-Service -Name $(Stop-Computer) | Select-Object Name,Status | ConvertTo-Json -Compress",
        "Start-Service -Name $name",
        "Start-Service -Name $env:COMPUTERNAME",
        "Start-Service -Name 'a' -Bogus",
        "Start-Service -Name 'a' -Name 'b'",
        "Start-Service -Name SmartBins",
        "Start-Service -Name 'a','b'",
        "Start-Service 'SmartBins'",
        "Stop-Service -Name 'SmartBins'",
        "Stop-Process -Name 'AllSync' -Force",
        "Disconnect-IscsiTarget -NodeAddress 'x'",
        "Disconnect-IscsiTarget -NodeAddress 'x' -Confirm",
        "Get-Service -Name 'a' | ConvertTo-Json -Compress",
        "Get-Service -Name 'a' | Select-Object Name,Status | ConvertTo-Json",
        "Get-Service -Name 'a' | Select-Object Name,Status,Path | ConvertTo-Json -Compress",
        "Get-Service -Name 'a' | Select-Object Name,Status | Out-File 'C:\\x'",
        "Test-Path -LiteralPath 'C:\\' | ConvertTo-Json -Compress",
        "Restart-Computer -Force | Stop-Computer",
        "Stop-Computer -Force",
        "Test-NetConnection -ComputerName 'h' -Port 'x' -InformationLevel Quiet",
        "Get-FileHash -LiteralPath 'C:\\x' -Algorithm MD5 | Select-Object Hash | ConvertTo-Json -Compress",
        "Start-Service -Name 'a' `\n",
        "Start-Service -Name 'a' & calc",
        "& 'Start-Service' -Name 'a'",
        "Start-Service -Name 'a' # comment",
        "Start-Service -Name ('a')",
        "Start-Service -Name 'unterminated",
        "$ErrorActionPreference = 'Continue'",
        "$x = 'Stop'",
        "Start-Service -Name 'a' > C:\\out.txt",
        "Start-Service -Name 'a' | | ConvertTo-Json -Compress",
        "Start-Service -Name 'a'x",
        "Select-Object Name",
        "ConvertTo-Json -Compress",
        "Get-IscsiSession -Name 'x' | Select-Object TargetNodeAddress | ConvertTo-Json -Compress",
        # try/catch only as `try { <pipeline> } catch { [$_.Exception.Message] }`.
        "try { Start-Service -Name 'a' }",
        "try { Start-Service -Name 'a' } catch { Stop-Service -Name 'a' -NoWait }",
        "try { Start-Service -Name 'a' } catch { $_ }",
        "try { Start-Service -Name 'a' } catch { $_.Exception.Message } finally { }",
        "try { } catch { }",
        "try { Start-Service -Name 'a' } catch [System.Exception] { }",
        "try {Start-Service -Name 'a'} catch { }",
        "$_.Exception.Message",
        "Start-Service -Name 'a' { }",
    ],
)
def test_anything_outside_the_subset_is_refused(lab: LabState, statement: str) -> None:
    with pytest.raises(Unsupported):
        parse_script(ps.script(statement))
    result = lab.run_script("sb-x1", ps.script(statement))
    assert result.exit_status == 1 and result.stdout == ""
    assert result.stderr.startswith(UNSUPPORTED)


def test_refusal_names_the_statement_and_runs_nothing(lab: LabState) -> None:
    result = lab.run_script(
        "sb-x1", ps.script(ps.stop_service("SmartBins"), "Invoke-Expression 'Stop-Computer'")
    )
    assert result.exit_status == 1
    assert result.stderr.splitlines()[0] == f"{UNSUPPORTED}Invoke-Expression 'Stop-Computer'"
    # The whole script was refused: the first statement did not run either.
    assert doc(lab, "sb-x1")["services"]["SmartBins"] == "Running"


def test_a_script_must_begin_with_the_preamble(lab: LabState) -> None:
    result = lab.run_script("sb-x1", ps.stop_service("SmartBins"))
    assert result.exit_status == 1 and result.stderr.startswith(UNSUPPORTED)
    assert doc(lab, "sb-x1")["services"]["SmartBins"] == "Running"


# -- services and processes ------------------------------------------------------------------
def test_get_services_one_object_or_a_list(lab: LabState) -> None:
    one = run(lab, "browse-srv", ps.get_services(["GV Ask"]))
    assert one.exit_status == 0 and one.stderr == ""
    # Asked by display name, answered with the key name (and the display name selected).
    assert json.loads(one.stdout) == {"Name": "GVAsk", "DisplayName": "GV Ask", "Status": 4}
    several = run(lab, "browse-srv", ps.get_services(["gv ask", "GVMetadata"]))
    assert json.loads(several.stdout) == [
        {"Name": "GVAsk", "DisplayName": "GV Ask", "Status": 4},
        {"Name": "GVMetadata", "DisplayName": "GV Metadata", "Status": 4},
    ]


def test_start_and_stop_service_print_nothing(lab: LabState) -> None:
    result = run(
        lab,
        "sb-y2",
        ps.get_services(["SmartBins"]),
        ps.start_service("SmartBins"),
        ps.get_services(["SmartBins"]),
        ps.stop_service("SmartBins"),
        ps.get_services(["SmartBins"]),
    )
    assert result.exit_status == 0
    assert result.stdout.split("\n") == [
        '{"Name":"SmartBins","DisplayName":"SmartBins","Status":1}',
        '{"Name":"SmartBins","DisplayName":"SmartBins","Status":4}',
        '{"Name":"SmartBins","DisplayName":"SmartBins","Status":1}',
        "",
    ]


@pytest.mark.parametrize("name", HOSTILE)
def test_unknown_service_stops_the_script_and_keeps_earlier_output(
    lab: LabState, name: str
) -> None:
    result = run(
        lab,
        "sb-x1",
        ps.test_path("C:\\"),
        ps.get_services([name]),
        ps.stop_service("SmartBins"),
    )
    assert result.exit_status == 1
    assert result.stdout == "True\n"
    assert f"Cannot find any service with service name '{name}'." in result.stderr
    assert doc(lab, "sb-x1")["services"]["SmartBins"] == "Running"


def test_processes(lab: LabState) -> None:
    result = run(lab, "nas-cifs-x", ps.get_process("Nope"), ps.get_process("AllSync"))
    (line,) = result.stdout.splitlines()  # no process: ConvertTo-Json prints nothing at all
    assert json.loads(line)["Name"] == "AllSync" and isinstance(json.loads(line)["Id"], int)
    assert result.exit_status == 0
    # The last statement's $? is false (no such process, error silenced): exit status 1,
    # nothing on stderr (about_PowerShell_exe).
    missing = run(lab, "nas-cifs-x", ps.get_process("AllSync"), ps.get_process("Nope"))
    assert (
        missing.exit_status == 1 and missing.stderr == "" and len(missing.stdout.splitlines()) == 1
    )
    pid = json.loads(line)["Id"]
    # By Id: the second finds it gone, NoProcessFoundForGivenId, terminating under 'Stop'
    # and caught: its message is the statement's output.
    result = run(lab, "nas-cifs-x", ps.stop_process(pid), ps.stop_process(pid))
    assert result.exit_status == 0 and result.stderr == "", result.stderr
    assert result.stdout == f"Cannot find a process with the process identifier {pid}.\n"
    gone = run(lab, "nas-cifs-x", ps.get_process("AllSync"))
    assert gone.stdout == "" and gone.exit_status == 1
    # Nothing to wait for: no wait, `$?` false (NoProcessFoundForGivenId, silenced).
    waited = run(lab, "nas-cifs-x", ps.wait_process([pid], 7))
    assert waited.exit_status == 1 and waited.waited == 0 and waited.stderr == ""


def ids(lab: LabState, host: str, *names: str) -> list[int]:
    listed = json.loads(run(lab, host, ps.get_process(*names)).stdout or "[]")
    return [o["Id"] for o in (listed if isinstance(listed, list) else [listed])]


def test_get_process_takes_several_names_sorted_by_name(lab: LabState) -> None:
    with lab.transaction() as txn:
        txn.require_host("ED-01")["processes"] = ["AuroraIngest", "AuroraEdit"]
    both = run(lab, "ED-01", ps.get_process("AuroraIngest", "AuroraEdit", "Nope"))
    assert [o["Name"] for o in json.loads(both.stdout)] == ["AuroraEdit", "AuroraIngest"]
    assert both.exit_status == 1  # 'Nope': its own error, silenced


def test_processes_of_one_name_each_have_their_id(lab: LabState) -> None:
    """Two processes of one name: two Ids; stopping one leaves the other, with its Id."""
    with lab.transaction() as txn:
        txn.require_host("ED-01")["processes"] = ["AuroraEdit", "AuroraEdit"]
    first, second = ids(lab, "ED-01", "AuroraEdit")
    assert first != second
    assert run(lab, "ED-01", ps.stop_process(second)).stdout == ""
    assert ids(lab, "ED-01", "AuroraEdit") == [first]
    assert doc(lab, "ED-01")["processes"] == ["AuroraEdit"]


def test_a_refused_process_does_not_spare_the_next_of_its_name(lab: LabState) -> None:
    """Stop-Process per Id: the first process of a name refused (kill-denied on its Id
    only), the second is still stopped, each answer on its own statement."""
    with lab.transaction() as txn:
        txn.require_host("ED-01")["processes"] = ["AuroraEdit", "AuroraEdit"]
    first, second = ids(lab, "ED-01", "AuroraEdit")
    with lab.transaction() as txn:
        txn.require_host("ED-01")["fault"] = {"kind": "kill-denied", "ids": [first]}
    result = run(lab, "ED-01", ps.stop_process(first), ps.stop_process(second))
    assert result.exit_status == 0 and result.stderr == "", result.stderr
    assert result.stdout == (
        f'Cannot stop process "AuroraEdit ({first})" because of the following error: '
        "Access is denied\n"
    )
    assert ids(lab, "ED-01", "AuroraEdit") == [first]


def test_a_process_whose_termination_hangs_outlasts_wait_process(lab: LabState) -> None:
    """TerminateProcess only starts the termination (Microsoft Learn): under the
    `unkillable` fault Stop-Process succeeds and the process stays; Wait-Process waits its
    whole -Timeout, one bound for every Id, then (ProcessNotTerminated, silenced) leaves
    `$?` false."""
    with lab.transaction() as txn:
        txn.require_host("ED-01")["processes"] = ["AuroraEdit", "AuroraIngest"]
    edit, ingest = ids(lab, "ED-01", "AuroraEdit", "AuroraIngest")
    set_fault(lab.dir, "ED-01", "unkillable")
    result = run(
        lab,
        "ED-01",
        ps.stop_process(edit),
        ps.stop_process(ingest),
        ps.wait_process([edit, ingest], 7),
        ps.get_process("AuroraEdit"),
    )
    assert result.exit_status == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout.splitlines()[0])["Id"] == edit
    assert result.waited == 7
    set_fault(lab.dir, "ED-01", "clear")
    result = run(
        lab,
        "ED-01",
        ps.stop_process(edit),
        ps.wait_process([edit], 7),
        ps.get_process("AuroraEdit"),
    )
    assert result.stdout == "" and result.waited == 0 and result.stderr == ""
    assert doc(lab, "ED-01")["processes"] == ["AuroraIngest"]


def test_a_process_the_host_will_not_end_fails_stop_process(lab: LabState) -> None:
    """Kill() refused (access denied): CouldNotStopProcess, terminating under 'Stop'; the
    process runs on. Uncaught it ends the script; stop_process catches it and prints its
    message, and the script goes on."""
    (pid,) = ids(lab, "ED-01", "AuroraEdit")
    set_fault(lab.dir, "ED-01", "kill-denied")
    result = run(lab, "ED-01", f"Stop-Process -Id {pid} -Force", ps.get_process("AuroraEdit"))
    assert result.exit_status == 1 and result.stdout == ""
    assert f'Cannot stop process "AuroraEdit ({pid})" because of the following error: ' in (
        result.stderr
    )
    caught = run(lab, "ED-01", ps.stop_process(pid), ps.get_process("AuroraEdit"))
    said, listed = caught.stdout.splitlines()
    assert caught.exit_status == 0 and caught.stderr == "", caught.stderr
    assert said == (
        f'Cannot stop process "AuroraEdit ({pid})" because of the following error: Access is denied'
    )
    assert json.loads(listed)["Id"] == pid
    assert doc(lab, "ED-01")["processes"] == ["AuroraEdit"]


def test_a_process_already_ending_is_refused_then_gone(lab: LabState) -> None:
    """The `exiting` fault: TerminateProcess answers access denied for a process that is
    terminating (Microsoft Learn, TerminateProcess), and it exits while Wait-Process -Id
    waits for it: the read after it finds nothing."""
    (pid,) = ids(lab, "ED-01", "AuroraEdit")
    set_fault(lab.dir, "ED-01", "exiting")
    result = run(
        lab,
        "ED-01",
        ps.stop_process(pid),
        ps.wait_process([pid], 5),
        ps.get_process("AuroraEdit"),
    )
    assert result.stderr == "" and result.waited == 0, result.stderr
    (said,) = result.stdout.splitlines()
    assert said.endswith("because of the following error: Access is denied"), said
    assert doc(lab, "ED-01")["processes"] == []


def test_a_process_a_launcher_restarts_gets_a_new_id(lab: LabState) -> None:
    set_fault(lab.dir, "ED-01", "respawns")
    (before,) = ids(lab, "ED-01", "AuroraEdit")
    result = run(
        lab,
        "ED-01",
        ps.stop_process(before),
        ps.wait_process([before], 5),
        ps.get_process("AuroraEdit"),
    )
    after = json.loads(result.stdout)
    assert result.stderr == "" and after["Name"] == "AuroraEdit" and after["Id"] != before


def test_wait_process_takes_the_timeouts_powershell_validates(lab: LabState) -> None:
    (pid,) = ids(lab, "ED-01", "AuroraEdit")
    result = run(
        lab, "ED-01", f"Wait-Process -Id {pid} -Timeout 32768 -ErrorAction SilentlyContinue"
    )
    assert result.exit_status == 1
    assert "greater than the maximum allowed range of 32767" in result.stderr
    with pytest.raises(ps.UnsafeValue):
        ps.wait_process([pid], 32768)
    for bad in ("AuroraEdit", pid, [], ["4242"], [0], [True]):
        with pytest.raises(ps.UnsafeValue):
            ps.wait_process(bad, 5)  # type: ignore[arg-type]
    for bad_id in (0, -1, "4242", True):
        with pytest.raises(ps.UnsafeValue):
            ps.stop_process(bad_id)  # type: ignore[arg-type]
    # Stop-Process and Wait-Process only by Id: piped from Get-Process a refusal ends the
    # pipeline (Stop-Process), a process gone in between throws (Wait-Process); by name
    # with -ErrorAction SilentlyContinue a refusal would pass in silence.
    for text in (
        "Stop-Process -Name 'AuroraEdit' -Force -ErrorAction SilentlyContinue",
        "Get-Process -Name 'AuroraEdit' -ErrorAction SilentlyContinue | Stop-Process -Force",
        "Get-Process -Name 'AuroraEdit' -ErrorAction SilentlyContinue | "
        "Wait-Process -Timeout 5 -ErrorAction SilentlyContinue",
        "Stop-Process -Id 'AuroraEdit' -Force",
    ):
        alone = run(lab, "ED-01", text)
        assert alone.exit_status != 0 and "unsupported PowerShell" in alone.stderr, text


# -- registry and files -------------------------------------------------------------------------
def test_registry(lab: LabState) -> None:
    got = run(lab, "sb-y1", ps.get_registry(SB, ["Mode", "Missing"]))
    assert json.loads(got.stdout) == {"Mode": "Pseudo", "Missing": None}
    hostile = "$(Stop-Computer)'; x"
    assert run(lab, "sb-y1", ps.set_registry(SB, "Mode", hostile)).exit_status == 0
    assert json.loads(run(lab, "sb-y1", ps.get_registry(SB, ["Mode"])).stdout) == {"Mode": hostile}
    missing = run(lab, "sb-y1", ps.set_registry(r"HKLM:\SOFTWARE\Nope", "Mode", "x"))
    assert missing.exit_status == 1
    assert r"Cannot find path 'HKLM:\SOFTWARE\Nope' because it does not exist." in missing.stderr


def test_insync_direction_files(lab: LabState) -> None:
    got = run(
        lab,
        "cp-01",
        ps.get_registry(INSYNC, ["MasterSystem"]),
        ps.copy_file(r"C:\InsyncYtoX.cfg", r"C:\Insync.cfg"),
        ps.file_hash(r"C:\Insync.cfg"),
        ps.file_hash(r"C:\InsyncYtoX.cfg"),
        ps.get_content(r"c:\INSYNC.CFG"),
    )
    assert got.exit_status == 0, got.stderr
    lines = got.stdout.split("\n")  # Copy-Item prints nothing
    assert json.loads(lines[0]) == {"MasterSystem": "X"}
    assert lines[1] == lines[2]
    content = json.loads(lines[3])
    assert "Master=Y" in content
    expected = hashlib.sha256(content.encode()).hexdigest().upper()
    assert json.loads(lines[1]) == {"Hash": expected}


def test_browse_swap_by_renames(lab: LabState) -> None:
    active = rf"{CFG}\K2_MDI_Service.exe.config"
    backup = rf"{CFG}\K2_MDI_Service.backup.exe.config"
    assert "dsm-x" in json.loads(run(lab, "mdi-k2", ps.get_content(active)).stdout)
    clash = run(lab, "mdi-k2", ps.rename_file(active, "K2_MDI_Service.backup.exe.config"))
    assert clash.exit_status == 1 and "already exists" in clash.stderr
    swap = run(
        lab,
        "mdi-k2",
        ps.rename_file(active, "K2_MDI_Service.tmp.exe.config"),
        ps.rename_file(backup, "K2_MDI_Service.exe.config"),
        ps.rename_file(rf"{CFG}\K2_MDI_Service.tmp.exe.config", "K2_MDI_Service.backup.exe.config"),
        ps.get_content(active),
        ps.get_content(backup),
    )
    assert swap.exit_status == 0, swap.stderr
    lines = swap.stdout.split("\n")  # Rename-Item prints nothing
    assert "dsm-y" in json.loads(lines[0]) and "dsm-x" not in json.loads(lines[0])
    assert "dsm-x" in json.loads(lines[1])
    missing = run(lab, "mdi-k2", ps.rename_file(rf"{CFG}\Nope.exe.config", "x.exe.config"))
    assert missing.exit_status == 1 and "does not exist" in missing.stderr


def test_test_path_and_missing_files(lab: LabState) -> None:
    got = run(
        lab,
        "cp-01",
        ps.test_path("C:\\"),
        ps.test_path(r"C:\Insync.cfg"),
        ps.test_path(r"C:\Nope.cfg"),
        ps.test_path("V:\\"),
    )
    assert got.stdout == "True\nTrue\nFalse\nFalse\n"
    missing = run(lab, "cp-01", ps.get_content(r"C:\Nope.cfg"))
    assert missing.exit_status == 1
    assert r"Cannot find path 'C:\Nope.cfg' because it does not exist." in missing.stderr


def test_volumes_are_per_side_and_shared(lab: LabState) -> None:
    for host in ("ED-01", "sb-x1", "nas-cifs-x", "sb-y2", "nas-ftp-y"):
        got = run(lab, host, ps.test_path("V:\\"), ps.test_path(r"V:\VibrantAVIFiles"))
        assert got.stdout == "True\nTrue\n", host
    assert (
        run(lab, "ED-01", ps.copy_file(CLIP, r"V:\VibrantAVIFiles\News\new.vid")).exit_status == 0
    )
    # The other X hosts see the new file on X's volume; Y's volume does not have it.
    assert run(lab, "sb-x2", ps.test_path(r"v:\vibrantavifiles\news\NEW.VID")).stdout == "True\n"
    assert run(lab, "sb-y1", ps.test_path(r"V:\VibrantAVIFiles\News\new.vid")).stdout == "False\n"
    same = run(lab, "sb-x1", ps.file_hash(CLIP)).stdout
    assert same == run(lab, "sb-y1", ps.file_hash(CLIP)).stdout
    nodrive = run(lab, "cp-01", ps.get_content(CLIP))
    assert nodrive.exit_status == 1 and "A drive with the name 'V' does not exist" in nodrive.stderr


# -- the machine ------------------------------------------------------------------------------------
def test_restart_marks_the_host_down(lab: LabState) -> None:
    result = run(lab, "ED-01", ps.restart_computer())
    assert result.exit_status == 0 and result.stdout == "" and result.reboot
    assert doc(lab, "ED-01")["down_until"] is not None
    # A command that races the going down finds no host: the server drops the connection.
    with pytest.raises(HostDown, match="ED-01 is down"):
        run(lab, "ED-01", ps.boot_info())


def test_boot_info(lab: LabState) -> None:
    got = json.loads(run(lab, "ED-02", ps.boot_info()).stdout)
    assert got["CSName"] == "ED-02"
    assert ps.parse_datetime(got["LastBootUpTime"]).year >= 2024


X_PORTAL, Y_PORTAL = "198.51.100.31", "198.51.100.131"
NAMESERVERS = r"C:\Program Files\StorNext\config\fsnameservers"


def sessions(lab: LabState, host: str) -> list[dict]:
    out = run(lab, host, ps.iscsi_session_details()).stdout
    return ps.parse_json_list(out)


def test_connect_needs_a_target_discovered_through_a_registered_portal(lab: LabState) -> None:
    # learn.microsoft.com/powershell/module/iscsi/connect-iscsitarget: the target must
    # have been discovered (New-IscsiTargetPortal) before it can be logged in to.
    undiscovered = run(lab, "ED-01", ps.iscsi_connect(iqn("Y"), Y_PORTAL))
    assert undiscovered.exit_status == 1
    assert "The target name is not found or is marked as hidden from login." in undiscovered.stderr
    # The bridge's name is not its iSCSI portal: nothing answers SendTargets there.
    by_name = run(lab, "ED-01", ps.iscsi_add_portal("bridge-y", 3260))
    assert by_name.exit_status == 1 and "Connection Failed." in by_name.stderr
    added = run(
        lab,
        "ED-01",
        ps.iscsi_add_portal(Y_PORTAL, 3260),
        ps.iscsi_portals(),
        ps.iscsi_connect(iqn("Y"), X_PORTAL),
    )
    assert added.exit_status == 1 and "could not be reached" in added.stderr  # X's portal
    assert json.loads(added.stdout.split("\n")[0]) == [
        {"TargetPortalAddress": X_PORTAL, "TargetPortalPortNumber": 3260},
        {"TargetPortalAddress": Y_PORTAL, "TargetPortalPortNumber": 3260},
    ]
    again = run(lab, "ED-01", ps.iscsi_add_portal(Y_PORTAL, 3260))
    assert again.exit_status == 1 and "already exists" in again.stderr
    assert run(lab, "ED-01", ps.iscsi_refresh_portal(Y_PORTAL, 3260)).exit_status == 0


def test_connect_prints_the_session_object_unless_dropped(lab: LabState) -> None:
    assert run(lab, "ED-01", ps.iscsi_add_portal(Y_PORTAL, 3260)).exit_status == 0
    bare_connect = ps.iscsi_connect(iqn("Y"), Y_PORTAL).removesuffix(" | Out-Null")
    shown = run(lab, "ED-01", bare_connect)
    assert shown.exit_status == 0, shown.stderr
    # The MSFT_iSCSISession as the console's list view shows it: several lines.
    assert f"TargetNodeAddress    : {iqn('Y')}" in shown.stdout
    assert "IsPersistent         : True" in shown.stdout and shown.stdout.count("\n") > 5
    # The drivers' framing survives it: each statement's lines stay its own.
    framed = lab.run_script(
        "ED-02", ps.script(ps.iscsi_add_portal(Y_PORTAL, 3260), bare_connect, ps.test_path("V:\\"))
    )
    texts = ps.split_output(framed.stdout, 3)
    assert texts[0] == "" and "SessionIdentifier" in texts[1] and texts[2] == "True"
    dropped = run(
        lab, "IN-01", ps.iscsi_add_portal(Y_PORTAL, 3260), ps.iscsi_connect(iqn("Y"), Y_PORTAL)
    )
    assert dropped.exit_status == 0 and dropped.stdout == ""
    twice = run(lab, "IN-01", ps.iscsi_connect(iqn("Y"), Y_PORTAL))
    assert twice.exit_status == 1 and "already been logged in" in twice.stderr


def test_disconnect_leaves_the_persistent_login_and_it_comes_back_at_boot(lab: LabState) -> None:
    ed = doc(lab, "ED-01")
    # V: is mounted from X's disks: Windows will not log the session out.
    busy = run(lab, "ED-01", ps.iscsi_disconnect(iqn("X")))
    assert busy.exit_status == 1 and "currently being used" in busy.stderr
    with lab.transaction() as txn:
        txn.require_host("ED-01")["mounted_v"] = None  # as if SNFS had let go
    assert run(lab, "ED-01", ps.iscsi_disconnect(iqn("X"))).exit_status == 0
    assert sessions(lab, "ED-01") == []
    assert doc(lab, "ED-01")["iscsi"]["persistent"] == ed["iscsi"]["persistent"]
    reboot(lab, "ED-01")
    back = sessions(lab, "ED-01")
    assert [(s["TargetNodeAddress"], s["IsPersistent"]) for s in back] == [(iqn("X"), True)]
    assert doc(lab, "ED-01")["mounted_v"] == "X"


def reboot(lab: LabState, host: str) -> None:
    assert run(lab, host, ps.restart_computer()).reboot
    with lab.transaction() as txn:
        txn.require_host(host)["down_until"] = txn.now()
    assert lab.boot_due([host]) == [host]


def test_unregister_keeps_the_session_until_the_reboot_ends_it(lab: LabState) -> None:
    (x,) = sessions(lab, "ED-01")
    gone = run(lab, "ED-01", ps.iscsi_unregister("ffffe000-nope"))
    assert gone.exit_status == 1 and "No matching MSFT_iSCSISession objects" in gone.stderr
    switched = run(
        lab,
        "ED-01",
        ps.iscsi_add_portal(Y_PORTAL, 3260),
        ps.iscsi_connect(iqn("Y"), Y_PORTAL),
        ps.iscsi_unregister(x["SessionIdentifier"]),
        ps.set_content(NAMESERVERS, ["bridge-y"]),
    )
    assert switched.exit_status == 0, switched.stderr
    now = {s["TargetNodeAddress"]: s["IsPersistent"] for s in sessions(lab, "ED-01")}
    assert now == {iqn("X"): False, iqn("Y"): True}
    assert doc(lab, "ED-01")["mounted_v"] == "X"  # SNFS mounts at boot only
    reboot(lab, "ED-01")
    assert [s["TargetNodeAddress"] for s in sessions(lab, "ED-01")] == [iqn("Y")]
    assert doc(lab, "ED-01")["mounted_v"] == "Y"


def test_v_follows_the_name_servers_and_needs_the_sides_disks(lab: LabState) -> None:
    # iSCSI on Y, but the fsnameservers file still names X's server: X's file system
    # has no disks here, so SNFS mounts nothing.
    (x,) = sessions(lab, "ED-01")
    run(
        lab,
        "ED-01",
        ps.iscsi_add_portal(Y_PORTAL, 3260),
        ps.iscsi_connect(iqn("Y"), Y_PORTAL),
        ps.iscsi_unregister(x["SessionIdentifier"]),
    )
    reboot(lab, "ED-01")
    assert doc(lab, "ED-01")["mounted_v"] is None
    assert run(lab, "ED-01", ps.test_path("V:\\")).stdout == "False\n"
    run(lab, "ED-01", ps.set_content(NAMESERVERS, ["bridge-y"]))
    reboot(lab, "ED-01")
    assert doc(lab, "ED-01")["mounted_v"] == "Y"


def test_a_client_older_than_windows_8_has_no_iscsi_cmdlets(lab: LabState) -> None:
    with lab.transaction() as txn:
        txn.require_host("ED-02")["windows"] = "6.1"  # Windows 7
    got = run(lab, "ED-02", ps.iscsi_sessions())
    assert got.exit_status == 1
    assert "The term 'Get-IscsiSession' is not recognized as the name of a cmdlet" in got.stderr
    asked = run(lab, "ED-02", ps.get_commands(["Get-IscsiSession", "Test-Path"]))
    # Get-Command lists what exists; the missing one's silenced error makes $? false.
    assert asked.stdout == '{"Name":"Test-Path"}\n' and asked.exit_status == 1
    full = run(lab, "ED-01", ps.get_commands(["Get-IscsiSession", "Connect-IscsiTarget"]))
    assert full.exit_status == 0 and len(json.loads(full.stdout)) == 2


def test_connect_needs_the_bridge_up(lab: LabState) -> None:
    assert run(lab, "bridge-y", ps.restart_computer()).reboot
    down = run(lab, "ED-02", ps.iscsi_add_portal(Y_PORTAL, 3260))
    assert down.exit_status == 1 and "Connection Failed." in down.stderr
    assert run(lab, "ED-02", ps.iscsi_refresh_portal(X_PORTAL, 3260)).exit_status == 0


def test_test_net_connection(lab: LabState) -> None:
    got = run(
        lab,
        "ED-01",
        ps.test_port(Y_PORTAL, 3260),
        ps.test_port("BRIDGE-Y", 3260),  # its control-network name: no iSCSI there
        ps.test_port("sb-y1", 3260),
        ps.test_port("sb-y1", 22),
        ps.test_port("nowhere", 22),
        ps.test_port("a'; Stop-Computer; '", 3260),
    )
    assert got.stdout == "True\nFalse\nFalse\nTrue\nFalse\nFalse\n"
    run(lab, "bridge-y", ps.restart_computer())
    assert run(lab, "ED-01", ps.test_port(Y_PORTAL, 3260)).stdout == "False\n"


def test_unknown_host_is_refused(lab: LabState) -> None:
    from lab import LabError

    with pytest.raises(LabError):
        run(lab, "nope", ps.boot_info())


# -- what powershell.exe writes to pipes ---------------------------------------------------------
def test_the_drivers_script_is_framed_and_reads_back(lab: LabState) -> None:
    statements = [ps.get_process("Nope"), ps.test_path("V:\\"), ps.get_process("AllSync")]
    result = lab.run_script("nas-cifs-x", ps.script(*statements))
    assert result.exit_status == 0 and result.stderr == "" and result.progress == ()
    stdout, stderr = result.wire()
    texts = ps.split_output(stdout.decode("utf-8"), 3)
    assert texts[0] == "" and texts[1] == "True" and json.loads(texts[2])["Name"] == "AllSync"
    assert stdout.count(b"\r\n") == 5 and stderr == b""


def test_output_is_oem_until_the_script_sets_utf8(lab: LabState) -> None:
    key = r"HKLM:\SOFTWARE\GVG\Aurora"
    got = run(
        lab, "ED-01", ps.set_registry(key, "Site", "Genève ☃"), ps.get_registry(key, ["Site"])
    )
    stdout, _ = got.wire("cp850")
    # cp850 has è (0x8a) and no snowman: '?', as WideCharToMultiByte writes it.
    assert stdout == b'{"Site":"Gen\x8ave ?"}\r\n'
    utf8 = lab.run_script("ED-01", "\n".join([*ps.PREAMBLE, ps.get_registry(key, ["Site"])]))
    assert utf8.wire("cp850")[0] == '{"Site":"Genève ☃"}\r\n'.encode()


def test_json_escapes_like_windows_powershell(lab: LabState) -> None:
    key = r"HKLM:\SOFTWARE\GVG\Aurora"
    got = run(lab, "ED-01", ps.set_registry(key, "Site", "l'<a&b>"), ps.get_registry(key, ["Site"]))
    assert got.stdout == '{"Site":"l\\u0027\\u003ca\\u0026b\\u003e"}\n'


def test_errors_and_progress_go_to_stderr_as_clixml(lab: LabState) -> None:
    result = lab.run_script(
        "sb-x1", "\n".join([ps.PREAMBLE[0], ps.test_path("C:\\"), ps.get_services(["No_x0041_pe"])])
    )
    assert result.exit_status == 1 and result.progress == ("Preparing modules for first use.",)
    assert result.stderr.splitlines() == [
        "Get-Service : Cannot find any service with service name 'No_x0041_pe'.",
        "At line:3 char:1",
        f"+ {ps.get_services(['No_x0041_pe'])}",
        "+ " + "~" * len("Get-Service -Name 'No_x0041_pe'"),
    ]
    _, stderr = result.wire()
    text = stderr.decode("cp850")
    assert text.startswith('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns=')
    assert '<Obj S="progress" RefId="0">' in text
    assert "service name 'No_x005F_x0041_pe'._x000D__x000A_</S>" in text
    assert ps.parse_stderr(text).errors == result.stderr.strip()
    quiet = lab.run_script("sb-x1", ps.script(ps.get_services(["Nope"])))
    assert quiet.progress == () and ps.parse_stderr(quiet.wire()[1].decode()).errors


def test_exit_status_follows_the_last_statement(lab: LabState) -> None:
    # about_PowerShell_exe: 1 when the last statement's $? is false, even silenced.
    assert run(lab, "nas-cifs-x", ps.get_process("AllSync")).exit_status == 0
    assert run(lab, "nas-cifs-x", ps.get_process("Nope")).exit_status == 1
    assert run(lab, "nas-cifs-x", ps.get_process("Nope"), ps.test_path("C:\\")).exit_status == 0
    framed = lab.run_script("nas-cifs-x", ps.script(ps.get_process("Nope")))
    assert framed.exit_status == 0  # the marker is the last statement


@pytest.mark.parametrize(
    "statement",
    [
        "[Console]::OutputEncoding = [System.Text.Encoding]::Unicode",
        "[Console]::InputEncoding = [System.Text.Encoding]::UTF8",
        "[System.IO.File]::Delete('C:\\x')",
        "$ProgressPreference = 'Stop'",
        "$ProgressPreference",
        "'a' 'b'",
    ],
)
def test_settings_outside_the_subset_are_refused(statement: str) -> None:
    with pytest.raises(Unsupported):
        parse_script(bare(statement))


def test_settings_in_the_spellings_powershell_resolves() -> None:
    for text in (
        "[console]::outputencoding = [text.encoding]::utf8",
        "[System.Console]::OutputEncoding = [System.Text.Encoding]::UTF8",
    ):
        assert parse_script(bare(text))[1].setting == ("OutputEncoding", "UTF8")
