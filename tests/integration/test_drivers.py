"""Each driver against a lab device, over the real protocols (SSH, ODBC)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from activities.context import DeviceContext
from activities.drivers import powershell as ps
from activities.drivers import ssh
from activities.drivers.credentials import Secret
from activities.drivers.errors import (
    RULE_BROWSE_STOPPED,
    RULE_INSYNC_STOPPED,
    RULE_MAIN_NOT_REPLICATED_ONTO,
    RULE_REPLICATION_FROM_MAIN,
    RULE_REPLICATION_PEER_BACKUP,
    AuthenticationFailed,
    CommandFailed,
    InterlockRefused,
    Unreachable,
)
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import smartbins as smartbins_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import ExecResult
from activities.drivers.operations import browse as browse_ops
from activities.drivers.operations import sync_tools as sync_tools_ops
from activities.drivers.ssh import SshHostDriver
from activities.models import PairRef
from activities.probe import ProbeActivities
from lab.state import LabState
from tests.support.lab import Lab


@pytest.fixture
async def lab(lab_factory) -> Lab:  # type: ignore[no-untyped-def]
    return await lab_factory(editors=1, ingest=0)


def acts(lab: Lab) -> DeviceContext:
    return DeviceContext(lab.inventory, lab.inventory_path)


async def test_ssh_reads_facts_and_refuses_unknown_service(lab: Lab) -> None:
    a = acts(lab)
    sb = lab.inventory.sides["X"].smartbins[0]
    assert await smartbins_facts.smartbins_facts(a.host(sb), lab.inventory.devices) == (
        True,
        "Normal",
    )
    with pytest.raises(CommandFailed) as e:
        await a.host(sb).run(ps.get_services(["NoSuchService"]))
    assert e.value.host == sb.host and "NoSuchService" in str(e.value)


async def test_ssh_answers_are_read_whole(lab: Lab) -> None:
    a = acts(lab)
    inv = lab.inventory
    nas = inv.sides["Y"].nas.cifs
    drv = a.host(nas)
    # AllSync does not run on Y's NAS head: Get-Process prints nothing at all, and the
    # next statement's answer stays its own.
    assert await windows_facts.process_running(drv, inv.devices.allsync_process) is False
    got = await drv.run(ps.get_process(inv.devices.allsync_process), ps.test_path("V:\\"))
    assert got == ["", "True"]
    # The error's text, not its CLIXML.
    with pytest.raises(CommandFailed) as e:
        await drv.run(ps.test_path("C:\\"), ps.stop_service("NoSuchService"))
    assert "Stop-Service : Cannot find any service with service name 'NoSuchService'." in str(
        e.value
    )
    assert "CLIXML" not in str(e.value) and "_x000D_" not in str(e.value)


async def test_ssh_refuses_a_command_line_cmd_exe_would_refuse(lab: Lab) -> None:
    a = acts(lab)
    sb = lab.inventory.sides["X"].smartbins[0]
    assert sb.transport == "ssh"
    drv = a.host(sb)
    many = [ps.test_path(f"V:\\VibrantAVIFiles\\News\\clip-{i:04d}.vmf") for i in range(100)]
    assert not drv.fits(many) and drv.max_command_length == 8189
    with pytest.raises(CommandFailed) as e:
        await drv.run(*many)
    assert e.value.host == sb.host and f"{ps.command_length(many)} characters" in str(e.value)
    answers = [t for batch in ps.batches(many, "ssh") for t in await drv.run(*batch)]
    assert answers == ["False"] * 100
    # The host itself refuses it as cmd.exe does.
    raw = await asyncssh.connect(
        sb.address,
        sb.port,
        username="Administrator",
        client_keys=[str(lab.dir / "keys" / "id_ed25519")],
        known_hosts=str(lab.dir / "known_hosts"),
        agent_path=None,
        config=[],
    )
    # At the boundary: cmd.exe counts the quotes around the command (`/c "..."`), so a
    # command line of 8,190 characters is refused and the driver's 8,189 is the limit.
    over = next(
        st
        for k in range(1, 4000)
        if ps.command_length(st := [ps.test_path("C:\\" + "x" * k)]) == 8190
    )
    under = next(
        st
        for k in range(1, 4000)
        if ps.command_length(st := [ps.test_path("C:\\" + "x" * k)]) == 8186
    )
    assert not drv.fits(over) and drv.fits(under)
    assert await drv.run(*under) == ["False"]
    async with raw:
        r = await raw.run(ps.encoded_command(ps.script(*many)))
        at = await raw.run(ps.encoded_command(ps.script(*over)))
    assert (r.exit_status, r.stdout, r.stderr) == (1, "", "The command line is too long.\r\n")
    assert (at.exit_status, at.stderr) == (1, "The command line is too long.\r\n")


async def test_ssh_wrong_key_is_authentication_failed_naming_the_host(
    lab: Lab, tmp_path: Path
) -> None:
    a = acts(lab)
    cp = lab.inventory.control_point
    other_key = tmp_path / "other"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other_key))
    drv = SshHostDriver(cp, Secret("Administrator", other_key, None), a.creds.known_hosts, 5, 10)
    with pytest.raises(AuthenticationFailed) as e:
        await drv.run(ps.boot_info())
    assert e.value.host == "cp-01" and "refused" in str(e.value)


async def test_ssh_unknown_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    a = acts(lab)
    cp = lab.inventory.sides["X"].bridge  # an SSH host
    fake = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{cp.port} {fake}\n")
    drv = SshHostDriver(cp, a.creds.resolve(cp.credentials), kh, 5, 10)
    with pytest.raises(AuthenticationFailed) as e:
        await drv.run(ps.boot_info())
    assert "host key not verified" in str(e.value)


async def test_ssh_closed_port_is_unreachable(lab: Lab) -> None:
    a = acts(lab)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cp = lab.inventory.sides["X"].bridge.model_copy(update={"port": port})
    drv = SshHostDriver(cp, a.creds.resolve(cp.credentials), a.creds.known_hosts, 2, 5)
    with pytest.raises(Unreachable) as e:
        await drv.run(ps.boot_info())
    assert e.value.retryable and f"127.0.0.1:{port}" in str(e.value)


async def test_browse_switch_interlock_and_interrupted_swap(lab: Lab) -> None:
    a = acts(lab)
    comp = next(b for b in lab.inventory.browse if b.role == "k2-mdi")
    drv = a.host(comp.host)
    with pytest.raises(InterlockRefused) as e:
        await browse_ops.browse_switch(drv, comp, lab.inventory, "Y")
    assert e.value.rule == RULE_BROWSE_STOPPED and "GV K2 MDI" in str(e.value)
    assert "stopped" in await browse_ops.browse_stop(drv, comp)
    assert "already stopped" in await browse_ops.browse_stop(drv, comp)
    # Simulate a worker that died after the first rename of the swap.
    folder, f = comp.config_dir, comp.config_files[0]
    await drv.run(
        ps.rename_file(f"{folder}\\{f}", f.replace(".exe.config", ".amsm-swap.exe.config"))
    )
    msg = await browse_ops.browse_switch(drv, comp, lab.inventory, "Y")
    assert "interrupted swap completed" in msg
    facts = await browse_facts.browse_facts(drv, comp, lab.inventory)
    assert facts.side == "Y" and facts.stopped
    assert "already points at Y" in await browse_ops.browse_switch(drv, comp, lab.inventory, "Y")
    assert "switched to X" in await browse_ops.browse_switch(drv, comp, lab.inventory, "X")


async def test_insync_direction_only_while_stopped(lab: Lab) -> None:
    from lab.hands import set_insync

    a = acts(lab)
    drv = a.host(lab.inventory.control_point)
    d = lab.inventory.devices
    assert "already copies X -> Y" in await sync_tools_ops.insync_set_main(drv, d, "X")
    with pytest.raises(InterlockRefused) as e:
        await sync_tools_ops.insync_set_main(drv, d, "Y")
    assert e.value.rule == RULE_INSYNC_STOPPED
    set_insync(lab.dir, running=False)
    assert "set to copy Y -> X" in await sync_tools_ops.insync_set_main(drv, d, "Y")
    assert await sync_tools_facts.insync_facts(drv, d) == (False, "Y")


async def test_dsm_driver_modes_and_replication_interlocks(lab: Lab) -> None:
    a = acts(lab)
    x, y = a.dsm("X"), a.dsm("Y")
    st = await asyncio.to_thread(x.read)
    assert (st.mode, st.replication, st.role) == ("main", "running", "master")
    assert st.asset_count and st.asset_count > 0
    assert "already main" in await asyncio.to_thread(x.set_mode, "main")
    # From a backup DSM: refused.
    with pytest.raises(InterlockRefused) as e:
        await asyncio.to_thread(y.start_replication, x)
    assert e.value.rule == RULE_REPLICATION_FROM_MAIN
    # Y main while X's replication still copies onto it: refused (absolute).
    with pytest.raises(InterlockRefused) as e:
        await asyncio.to_thread(y.set_mode, "main")
    assert e.value.rule == RULE_MAIN_NOT_REPLICATED_ONTO
    assert (await asyncio.to_thread(y.read)).mode == "backup"
    # Split (both main): refused, the backup database would be overwritten.
    await asyncio.to_thread(x.stop_replication)
    for _ in range(100):  # the backup's replication processes follow the master's
        if (await asyncio.to_thread(y.read)).replication == "stopped":
            break
        await asyncio.sleep(0.1)
    await asyncio.to_thread(y.set_mode, "main")
    with pytest.raises(InterlockRefused) as e:
        await asyncio.to_thread(x.start_replication, y)
    assert e.value.rule == RULE_REPLICATION_PEER_BACKUP and "split" in str(e.value)
    assert "already stopped" in await asyncio.to_thread(x.stop_replication)


async def test_dsm_that_does_not_answer(lab: Lab) -> None:
    a = acts(lab)
    d = lab.inventory.sides["X"].dsm
    gone = d.model_copy(update={"odbc": d.odbc.replace("dsm-x.db", "missing.db")})
    drv = a.dsm("X")
    drv.dsm = gone
    st = await asyncio.to_thread(drv.status)
    assert not st.reachable and st.state_text == "Not Responding" and "dsm-x" in (st.error or "")
    with pytest.raises(Unreachable) as e:
        await asyncio.to_thread(drv.read)
    assert e.value.retryable


async def test_one_unreadable_answer_is_that_hosts_error_not_the_whole_status(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose answer comes back cut (its last marker missing): `amsm status`
    reports that client, and every other device as usual."""
    real = SshHostDriver._execute

    async def cut(self: SshHostDriver, script_text: str) -> ExecResult:
        got = await real(self, script_text)
        if self.name != "ED-01":
            return got
        return ExecResult(got.exit_status, got.stdout.rsplit(b"#amsm", 1)[0], got.stderr)

    monkeypatch.setattr(SshHostDriver, "_execute", cut)
    a = acts(lab)
    ed = lab.inventory.clients[0]
    assert ed.host == "ED-01" and ed.transport == "ssh"
    status = await ProbeActivities(a).probe_pair(PairRef(pair=lab.inventory.pair))
    broken = {c.host: c for c in status.clients}["ED-01"]
    assert broken.status == "unreachable" and broken.error is not None
    assert "ED-01" in broken.error and "answer not whole" in broken.error
    assert status.insync.reachable and status.insync.main == "X"
    assert all(s.reachable for s in status.smartbins)


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_commands_beside_a_restart_are_unreachable_never_garbage(
    lab_factory,  # type: ignore[no-untyped-def]
    transport: str,
) -> None:
    """A host restarting while other commands run on the same SSH connection (the pair's
    watch reads a client while its switch restarts it): each of those commands either
    answers whole or is Unreachable (read again later), never an unreadable answer and
    never a raw asyncssh error. At 500 clients a switch once failed a client with
    "PowerShell exited with 0; answer not whole" here."""
    lab: Lab = await lab_factory(editors=2, ingest=0)
    ed = next(c for c in lab.inventory.clients if c.transport == transport)
    drv = acts(lab).host(ed)
    seen: dict[str, int] = {}
    stop = False

    async def read_boot() -> None:
        while not stop:
            try:
                await windows_facts.uptime(drv)
                kind = "answered"
            except Unreachable:
                kind = "unreachable"
            except Exception as e:  # noqa: BLE001 - what must not happen is counted
                kind = f"{type(e).__name__}: {e}"
            seen[kind] = seen.get(kind, 0) + 1
            await asyncio.sleep(0)

    readers = [asyncio.create_task(read_boot()) for _ in range(6)]
    try:
        for _ in range(6):
            with contextlib.suppress(Unreachable):
                await drv.run_one(ps.restart_computer())
            await asyncio.sleep(1.0)
    finally:
        stop = True
        await asyncio.gather(*readers)
    assert set(seen) <= {"answered", "unreachable"}, seen
    assert seen.get("answered") and seen.get("unreachable"), seen


def _host_doc(lab: Lab, host: str, **fields: object) -> None:
    state = LabState(lab.dir)
    try:
        with state.transaction() as txn:
            doc = txn.require_host(host)
            for k, v in fields.items():
                if k == "stop_seconds":
                    doc["service_info"]["GVK2MDIMonitor"]["stop_seconds"] = v
                else:
                    doc[k] = v
    finally:
        state.close()


async def test_a_refused_ssh_channel_is_busy_and_the_connection_stays(lab: Lab) -> None:
    # sshd refuses a channel beyond MaxSessions on one connection (lab/ssh.py): the
    # command running on that connection must go on, and the refused ones wait their
    # turn. The inventory does not know the host's limit (it says sshd's default, 10).
    comp = next(c for c in lab.inventory.browse if c.name == "k2-mdi")
    host = lab.inventory.host(comp.host.host)
    _host_doc(lab, host.host, ssh_max_sessions=2, stop_seconds=1.5)
    drv = acts(lab).host(host)
    assert await drv.run(ps.test_path("C:\\")) == ["True"]  # the pooled connection
    # A command that runs 1.5 s on the host: Stop-Service -Force waits for the
    # dependent it stops first (lab/powershell/services.py _stop_service).
    slow = asyncio.ensure_future(drv.run("Stop-Service -Name 'GVK2MDI' -Force -NoWait"))
    await asyncio.sleep(0.3)
    quick = await asyncio.gather(*(drv.run(ps.test_path("C:\\")) for _ in range(6)))
    assert quick == [["True"]] * 6
    assert await slow == [""]
    assert ssh.busy_refusals(host) > 0


async def test_ssh_channels_per_host_stay_below_the_inventorys_limit(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inventory says the host's MaxSessions (3): a worker runs at most 2 commands on
    # it at once, one slot spare for the session sshd has not collected yet.
    sb = lab.inventory.sides["X"].smartbins[0]
    _host_doc(lab, sb.host, ssh_max_sessions=3)
    sides = lab.inventory.model_dump(mode="json")["sides"]
    for side in sides.values():
        for s in side["smartbins"]:
            if s["host"] == sb.host:
                s["ssh_max_sessions"] = 3
    lab.edit_inventory(sides=sides)
    sb = lab.inventory.sides["X"].smartbins[0]
    assert sb.ssh_max_sessions == 3 and ssh.channels_per_host(sb) == 2
    running, most = 0, 0
    open_channel, finish = SshHostDriver._open, SshHostDriver._finish

    async def counted_open(self: SshHostDriver, *args: Any) -> Any:
        nonlocal running, most
        process = await open_channel(self, *args)
        running += 1
        most = max(most, running)
        return process

    async def counted_finish(process: Any) -> Any:
        nonlocal running
        try:
            return await finish(process)
        finally:
            running -= 1

    monkeypatch.setattr(SshHostDriver, "_open", counted_open)
    monkeypatch.setattr(SshHostDriver, "_finish", staticmethod(counted_finish))
    drv = acts(lab).host(sb)
    got = await asyncio.gather(*(drv.run(ps.test_path("C:\\")) for _ in range(12)))
    assert got == [["True"]] * 12
    assert most == 2


async def test_ssh_closes_stdin_of_every_command(lab: Lab) -> None:
    # The script travels on the command line; powershell.exe given a redirected stdin
    # that never ends may wait on it (the known hang over SSH): the driver sends EOF as
    # the channel opens, and the lab's SSH server counts every command without it.
    a = acts(lab)
    sb = lab.inventory.sides["X"].smartbins[0]
    for _ in range(3):
        await smartbins_facts.smartbins_facts(a.host(sb), lab.inventory.devices)
    with LabState(lab.dir).transaction() as txn:
        assert txn.require_host(sb.host).get("stdin_left_open", 0) == 0
