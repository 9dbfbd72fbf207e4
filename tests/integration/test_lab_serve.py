"""The lab end to end over real SSH (asyncssh, known_hosts checked) and real SQLite files."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
import pytest_asyncio

from activities.drivers import powershell as ps
from activities.drivers.dsm import DsmDriver
from inventory.load import load_inventory
from inventory.models import Inventory
from inventory.status import DsmStatus
from lab import LabError
from lab.faults import set_fault
from lab.init import init_lab, iqn
from lab.serve import serve_lab
from lab.state import LabState

REBOOT_SECONDS = 0.3


@dataclass
class Out:
    stdout: str
    stderr: str
    exit_status: int


def out(result: asyncssh.SSHCompletedProcess) -> Out:
    """The answer as text: CRLF line ends made '\n', a CLIXML stderr made its error text."""
    stdout = str(result.stdout or "").replace("\r\n", "\n")
    stderr = ps.parse_stderr(str(result.stderr or "")).text()
    return Out(stdout, stderr + ("\n" if stderr else ""), result.exit_status or 0)


def bare(*statements: str) -> str:
    """The drivers' preamble and the statements, without the drivers' markers: what
    PowerShell itself prints for them."""
    return "\n".join([*ps.PREAMBLE, *statements])


@dataclass
class Served:
    dir: Path
    inventory: Inventory

    async def connect(self, host: str, **options: object) -> asyncssh.SSHClientConnection:
        h = self.inventory.host(host)
        settings: dict[str, object] = {
            "username": "Administrator",
            "client_keys": [str(self.dir / "keys" / "id_ed25519")],
            "known_hosts": str(self.dir / "known_hosts"),
            "agent_path": None,
            "config": [],
            **options,
        }
        return await asyncssh.connect(h.address, h.port, **settings)  # type: ignore[arg-type]

    async def run(self, host: str, *statements: str) -> Out:
        conn = await self.connect(host)
        try:
            result = await conn.run(ps.encoded_command(bare(*statements)))
        finally:
            conn.close()
            await conn.wait_closed()
        return out(result)

    async def wait_up(self, host: str, timeout: float = 10) -> Out:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.run(host, ps.boot_info())
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


async def _serve(d: Path) -> AsyncIterator[Served]:
    ready = asyncio.Event()
    task = asyncio.create_task(serve_lab(d, ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
    try:
        yield Served(d, load_inventory(d / "inventory.yaml"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest_asyncio.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    d = tmp_path_factory.mktemp("lab")
    init_lab(d, editors=3, ingest=1, smartbins=2, reboot_seconds=REBOOT_SECONDS)
    async for s in _serve(d):
        yield s


async def test_get_services_over_ssh(served: Served) -> None:
    result = await served.run("sb-y2", ps.get_services(["SmartBins"]), ps.test_path("V:\\"))
    assert result.exit_status == 0, result.stderr
    assert result.stdout == '{"Name":"SmartBins","DisplayName":"SmartBins","Status":1}\nTrue\n'


async def test_output_is_in_the_oem_code_page_unless_the_script_sets_utf8(served: Served) -> None:
    key = r"HKLM:\SOFTWARE\GVG\Aurora"
    statements = [ps.set_registry(key, "Site", "Genève"), ps.get_registry(key, ["Site"])]
    async with await served.connect("ED-03") as conn:
        no_encoding = "\n".join([*ps.PREAMBLE[:2], *statements])
        oem = await conn.run(ps.encoded_command(no_encoding), encoding=None)
        utf8 = await conn.run(ps.encoded_command(bare(*statements)), encoding=None)
    assert oem.exit_status == 0 and utf8.exit_status == 0
    assert oem.stdout == '{"Site":"Gen\x8ave"}\r\n'.encode("latin-1")  # cp850: è is 0x8a
    assert utf8.stdout == '{"Site":"Genève"}\r\n'.encode()


async def test_errors_and_refusals_over_ssh(served: Served) -> None:
    bad = await served.run("sb-x1", ps.get_services(["a'; Stop-Computer; '"]))
    assert bad.exit_status == 1
    assert "Cannot find any service with service name 'a'; Stop-Computer; ''." in bad.stderr
    refused = await served.run("sb-x1", "Invoke-Expression 'Stop-Computer'")
    assert refused.exit_status == 1
    assert "amsm-lab: unsupported PowerShell: Invoke-Expression 'Stop-Computer'" in refused.stderr


async def test_only_encoded_powershell_is_accepted(served: Served) -> None:
    async with await served.connect("cp-01") as conn:
        for command in ["dir", "powershell.exe -Command Get-Service", "cmd /c whoami"]:
            result = out(await conn.run(command))
            assert result.exit_status == 1
            assert result.stderr == "amsm-lab: only PowerShell -EncodedCommand is accepted\n"
        tampered = ps.encoded_command(ps.script(ps.boot_info())) + "$(x)"
        assert (await conn.run(tampered)).exit_status == 1
        shell = out(await conn.run())  # an interactive shell request
        assert shell.exit_status == 1 and "only PowerShell" in shell.stderr
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("127.0.0.1", served.inventory.host("sb-x1").port)
        with pytest.raises((asyncssh.SFTPError, asyncssh.ChannelOpenError, OSError)):
            async with conn.start_sftp_client():
                pass


async def test_other_keys_and_unknown_host_keys_are_refused(served: Served, tmp_path: Path) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await served.connect("cp-01", client_keys=[stranger])
    with pytest.raises(asyncssh.PermissionDenied):
        await served.connect("cp-01", client_keys=[], password="x")
    # known_hosts is checked: another host's key for this port fails verification.
    lines = (served.dir / "known_hosts").read_text().splitlines()
    port = served.inventory.host("cp-01").port
    other_key = next(line for line in lines if f"]:{port} " not in line).split(" ", 1)[1]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{port} {other_key}\n")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await served.connect("cp-01", known_hosts=str(wrong))


async def test_reboot_closes_the_port_then_the_host_comes_back(served: Served) -> None:
    before = json.loads((await served.run("ED-01", ps.boot_info())).stdout)
    bystander = await served.connect("ED-01")
    restart = await served.run("ED-01", ps.restart_computer())
    assert restart.exit_status == 0 and restart.stdout == ""
    with pytest.raises(OSError):
        await served.run("ED-01", ps.boot_info())
    # A session that was open when the host went down is cut.
    await asyncio.wait_for(bystander.wait_closed(), 5)
    after = json.loads((await served.wait_up("ED-01")).stdout)
    assert after["CSName"] == "ED-01"
    assert ps.parse_datetime(after["LastBootUpTime"]) > ps.parse_datetime(before["LastBootUpTime"])
    # Aurora comes back with the client.
    proc = await served.run("ED-01", ps.get_process("AuroraEdit"))
    assert json.loads(proc.stdout)["Name"] == "AuroraEdit"


async def test_client_switch_to_y_mounts_y_after_reboot(served: Served) -> None:
    aurora = r"HKLM:\SOFTWARE\GVG\Aurora"
    y = served.inventory.sides["Y"]
    (old,) = ps.parse_json_list((await served.run("ED-02", ps.iscsi_session_details())).stdout)
    aurora_edit = json.loads((await served.run("ED-02", ps.get_process("AuroraEdit"))).stdout)
    # What client_prepare sends: the old session stays until the restart (its disks are
    # in use by SNFS), only its persistent login goes.
    step = await served.run(
        "ED-02",
        ps.stop_process(aurora_edit["Id"]),
        ps.iscsi_add_portal(y.portals[0], 3260),
        ps.iscsi_connect(iqn("Y"), y.portals[0]),
        ps.iscsi_unregister(old["SessionIdentifier"]),
        ps.set_content(served.inventory.devices.snfs_nameservers_file, y.fsnameservers or []),
        ps.set_registry(aurora, "DsmServer", "dsm-y"),
        ps.restart_computer(),
    )
    assert step.exit_status == 0, step.stderr
    await served.wait_up("ED-02")
    seen = await served.run(
        "ED-02",
        ps.test_path("V:\\"),
        ps.iscsi_sessions(),
        ps.get_registry(aurora, ["DsmServer"]),
        ps.copy_file(
            r"V:\VibrantAVIFiles\News\clip-001.vmf\clip-001.vid",
            r"V:\VibrantAVIFiles\News\ed02.vid",
        ),
    )
    assert seen.exit_status == 0, seen.stderr
    lines = seen.stdout.split("\n")
    assert lines[0] == "True"
    assert ps.parse_json_list(lines[1]) == [{"TargetNodeAddress": iqn("Y"), "IsConnected": True}]
    assert json.loads(lines[2]) == {"DsmServer": "dsm-y"}
    _, docs = LabState(served.dir).read()
    assert docs["ED-02"]["mounted_v"] == "Y"
    # The copy landed on Y's volume, which Y's SmartBins servers see and X's do not.
    ed02 = r"V:\VibrantAVIFiles\News\ed02.vid"
    assert (await served.run("sb-y1", ps.test_path(ed02))).stdout == "True\n"
    assert (await served.run("sb-x1", ps.test_path(ed02))).stdout == "False\n"


async def test_replicator_copies_and_stops(served: Served) -> None:
    x = sqlite3.connect(served.dir / "dsm-x.db", isolation_level=None)
    y = sqlite3.connect(served.dir / "dsm-y.db", isolation_level=None)
    x_inst = sqlite3.connect(served.dir / "dsm-x.instance.db", isolation_level=None)
    y_inst = sqlite3.connect(served.dir / "dsm-y.instance.db", isolation_level=None)
    try:
        x.execute("INSERT INTO assets (name, created) VALUES ('new-clip', '2025-01-01T00:00:00Z')")

        async def until(db: sqlite3.Connection, query: str, expected: object) -> None:
            deadline = time.monotonic() + 5
            while db.execute(query).fetchone() != expected:
                assert time.monotonic() < deadline, f"{query} never gave {expected}"
                await asyncio.sleep(0.05)

        await until(y, "SELECT name FROM assets WHERE name = 'new-clip'", ("new-clip",))
        # The whole database, not a table: what Y had of its own is gone too.
        y.execute("CREATE TABLE only_on_y (x)")
        await until(y, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'only_on_y'", (0,))
        # Each DSM keeps its own mode: it is not in the replicated database.
        assert y_inst.execute("SELECT mode FROM dsm").fetchone() == ("backup",)
        x_inst.execute("UPDATE dsm SET replication = 'stopped', replication_role = 'none'")
        await until(y_inst, "SELECT replication, replication_role FROM dsm", ("stopped", "none"))
    finally:
        for db in (x, y, x_inst, y_inst):
            db.close()


async def test_a_backup_restoring_with_norecovery_is_a_state(served: Served) -> None:
    inv = load_inventory(served.dir / "inventory.yaml")
    x = DsmDriver(inv.sides["X"].dsm, "X", None, timeout=5)
    y = DsmDriver(inv.sides["Y"].dsm, "Y", None, timeout=5)

    async def until(what: str, done: Callable[[DsmStatus], bool]) -> DsmStatus:
        deadline = time.monotonic() + 5
        while not done(st := await asyncio.to_thread(y.status)):
            assert time.monotonic() < deadline, f"never {what}: {st}"
            await asyncio.sleep(0.05)
        return st

    await asyncio.to_thread(x.start_replication, y)  # an earlier test may have stopped it
    assert "dsm-y: restoring set" == set_fault(served.dir, "dsm-y", "restoring")
    st = await until("restoring", lambda s: s.database_state == "restoring")
    assert st.reachable and (st.mode, st.replication, st.role) == ("backup", "running", "backup")
    assert st.asset_count is None
    assert set_fault(served.dir, "dsm-y", "clear") == "dsm-y: faults cleared"
    count = (await asyncio.to_thread(x.read)).asset_count
    st = await until("recovered", lambda s: s.database_state == "online")
    assert st.asset_count == count


async def test_a_pending_boot_finishes_when_serve_starts(tmp_path: Path) -> None:
    init_lab(tmp_path, editors=1, ingest=0, reboot_seconds=REBOOT_SECONDS)
    state = LabState(tmp_path)
    with state.transaction() as txn:
        ed = txn.require_host("ED-01")
        ed["down_until"] = time.time() - 1
        ed["processes"] = []
    async for s in _serve(tmp_path):
        got = await s.run("ED-01", ps.get_process("AuroraEdit"), ps.test_path("V:\\"))
        assert json.loads(got.stdout.split("\n")[0])["Name"] == "AuroraEdit"
        assert got.stdout.split("\n")[1] == "True"
        # A second serve on the same lab is refused: its ports are taken.
        with pytest.raises(LabError, match="is taken"):
            await serve_lab(tmp_path)


def test_main_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    init_lab(tmp_path, editors=1, ingest=0, reboot_seconds=REBOOT_SECONDS)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from lab.serve import main_serve; main_serve({str(tmp_path)!r})"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("lab: serving 15 hosts for pair 'lab' from ")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert out == "lab: stopped\n" and "Traceback" not in err
