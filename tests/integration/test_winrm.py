"""The WinRM driver against lab hosts over the real WS-Management protocol (pywinrm).

The lab serves WinRM where its inventory says `transport: winrm`: over HTTPS with
the lab CA (Basic or NTLM) and over plain HTTP (Basic).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from winrm.protocol import Protocol

from activities.context import DeviceContext
from activities.drivers import powershell as ps
from activities.drivers.credentials import Secret
from activities.drivers.errors import AuthenticationFailed, CommandFailed, Unreachable
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import smartbins as smartbins_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.winrm import WinRmHostDriver, endpoint
from inventory.models import Host
from lab import winrm as lab_winrm
from lab.faults import set_fault
from lab.ssh import HostServer, load_authorized_keys, load_host_key
from lab.state import LabState
from tests.support.lab import Lab


@pytest.fixture
async def lab(lab_factory) -> Lab:  # type: ignore[no-untyped-def]
    return await lab_factory(editors=2, ingest=0)


def acts(lab: Lab) -> DeviceContext:
    return DeviceContext(lab.inventory, lab.inventory_path)


def winrm_host(lab: Lab, scheme: str, auth: str) -> Host:
    return next(
        h
        for _, h in lab.inventory.all_hosts()
        if h.transport == "winrm"
        and h.winrm_settings.scheme == scheme
        and h.winrm_settings.auth == auth
    )


def basic_protocol(lab: Lab, host: Host, at: Host | None = None) -> Protocol:
    """A pywinrm Protocol to `host` (or to `at`, its listener moved) with Basic over HTTPS,
    the lab CA validating the certificate: the WS-Management wire without the driver."""
    a = acts(lab)
    secret = a.creds.resolve(host.credentials)
    return Protocol(
        endpoint(at or host),
        transport="basic",
        username=secret.username,
        password=secret.password,
        ca_trust_path=str(a.creds.resolve_file("winrm-ca.pem")),
        server_cert_validation="validate",
        proxy=None,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_scripts_over_https_and_http_keep_the_devices_errors(lab: Lab) -> None:
    a = acts(lab)
    inv = lab.inventory
    cp = inv.control_point
    assert (cp.transport, cp.winrm_settings.scheme, cp.winrm_settings.auth) == (
        "winrm",
        "https",
        "ntlm",
    )
    drv = a.host(cp)
    assert isinstance(drv, WinRmHostDriver) and drv.endpoint.startswith("https://127.0.0.1:")
    # Facts and a multi-statement script, over HTTPS with NTLM.
    assert await sync_tools_facts.insync_facts(drv, inv.devices) == (True, "X")
    lines = await drv.run(ps.boot_info(), ps.test_path("C:\\"), ps.test_path("Q:\\nothing"))
    assert json.loads(lines[0])["CSName"] == "cp-01" and lines[1:] == ["True", "False"]

    # Over HTTPS with Basic: a failing statement keeps the device's own error text.
    sb = winrm_host(lab, "https", "basic")
    assert sb.host == "sb-y1"
    assert await smartbins_facts.smartbins_facts(a.host(sb), inv.devices) == (True, "Pseudo")
    with pytest.raises(CommandFailed) as e:
        await a.host(sb).run(ps.test_path("C:\\"), ps.get_services(["NoSuchService"]))
    assert e.value.host == "sb-y1"
    assert "Cannot find any service with service name 'NoSuchService'" in e.value.output

    # Over plain HTTP (allow_http) with Basic.
    mf = winrm_host(lab, "http", "basic")
    assert mf.host == "browse-srv" and endpoint(mf).startswith("http://")
    comp = next(b for b in inv.browse if b.host.host == mf.host)
    facts = await browse_facts.browse_facts(a.host(mf), comp, inv)
    assert facts.side == "X" and facts.running

    # The same PowerShell as over SSH: the lab also serves SSH for this host.
    ssh = acts(lab).host(cp.model_copy(update={"transport": "ssh", "credentials": "lab-admin"}))
    assert await ssh.run(ps.test_path("C:\\")) == ["True"]


async def test_untrusted_certificate_and_wrong_password_are_authentication_failed(
    lab: Lab, tmp_path: Path
) -> None:
    a = acts(lab)
    cp = lab.inventory.control_point
    good = a.creds.resolve(cp.credentials)
    ca = a.creds.resolve_file("winrm-ca.pem")
    # The server's certificate is signed by the lab CA, and names the host and 127.0.0.1.
    cert = x509.load_pem_x509_certificate((lab.dir / "keys/winrm/cp-01.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "cp-01" in san.get_values_for_type(x509.DNSName)
    # Another CA (a second lab's) did not sign it: refused before any credential is sent.
    other = tmp_path / "other"
    other.mkdir()
    lab_winrm.write_pki(other, ["cp-01"], "127.0.0.1")
    drv = WinRmHostDriver(cp, good, other / "winrm-ca.pem", 5, 10)
    with pytest.raises(AuthenticationFailed) as e:
        await drv.run(ps.boot_info())
    assert e.value.host == "cp-01" and "certificate" in str(e.value)
    assert str(other / "winrm-ca.pem") in str(e.value)

    # A wrong password, over NTLM (HTTPS) and over Basic (HTTPS, HTTP); never echoed.
    for host in (cp, winrm_host(lab, "https", "basic"), winrm_host(lab, "http", "basic")):
        wrong = Secret(good.username, None, "not-the-password")
        with pytest.raises(AuthenticationFailed) as e:
            await WinRmHostDriver(host, wrong, ca, 5, 10).run(ps.boot_info())
        assert e.value.host == host.host and "refused" in str(e.value)
        assert "not-the-password" not in str(e.value) and str(good.password) not in str(e.value)
    # No password at all: WinRM needs one.
    with pytest.raises(AuthenticationFailed, match="password"):
        WinRmHostDriver(cp, Secret("Administrator", None, None), ca, 5, 10)


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not reached within {timeout} s: {what}"
        await asyncio.sleep(0.05)


async def test_closed_port_and_unreachable_fault_are_unreachable(lab: Lab) -> None:
    a = acts(lab)
    cp = lab.inventory.control_point
    port = closed_port()
    settings = cp.winrm_settings.model_copy(update={"port": port})
    moved = cp.model_copy(update={"winrm": settings})
    t = time.monotonic()
    with pytest.raises(Unreachable) as e:
        await a.host(moved).run(ps.boot_info())
    assert e.value.retryable and e.value.host == "cp-01"
    assert f"127.0.0.1:{port}" in str(e.value) and time.monotonic() - t < 5

    # The lab's network fault closes the WinRM port with the SSH port; clear reopens both.
    drv = a.host(cp)
    boot = await windows_facts.boot(drv)
    web_port = cp.winrm_settings.endpoint_port
    set_fault(lab.dir, "cp-01", "unreachable")
    await wait_until(lambda: not port_open(web_port) and not port_open(cp.port), "ports closed")
    with pytest.raises(Unreachable):
        await drv.run(ps.boot_info())
    set_fault(lab.dir, "cp-01", "clear")
    await wait_until(lambda: port_open(web_port) and port_open(cp.port), "ports open again")
    assert not (await windows_facts.boot(drv)).after(boot.latest, 0.05)


async def test_a_kept_shell_the_host_lost_is_replaced_before_the_command(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = acts(lab)
    cp = lab.inventory.control_point
    drv = a.host(cp)
    opened: list[str] = []
    open_shell = WinRmHostDriver._open_shell

    def spy(self: WinRmHostDriver, s: object) -> str:
        opened.append(self.name)
        return open_shell(self, s)  # type: ignore[arg-type]

    monkeypatch.setattr(WinRmHostDriver, "_open_shell", spy)
    boot = await windows_facts.boot(drv)
    assert not (await windows_facts.boot(drv)).after(boot.latest, 0.05)
    assert opened == ["cp-01"], "the second command should reuse the first one's shell"
    # The host loses its network for a moment: its connections and shells are gone.
    web_port = cp.winrm_settings.endpoint_port
    set_fault(lab.dir, "cp-01", "unreachable")
    await wait_until(lambda: not port_open(web_port), "port closed")
    set_fault(lab.dir, "cp-01", "clear")
    await wait_until(lambda: port_open(web_port), "port open again")
    assert not (await windows_facts.boot(drv)).after(boot.latest, 0.05)
    assert opened == ["cp-01", "cp-01"], "the lost shell is replaced, the command runs once"


async def test_reboot_over_winrm_takes_both_ports_down_and_back(lab: Lab) -> None:
    a = acts(lab)
    ed = next(c for c in lab.inventory.clients if c.transport == "winrm")
    drv = a.host(ed)
    before = ps.parse_datetime(json.loads(await drv.run_one(ps.boot_info()))["LastBootUpTime"])
    assert await drv.run(ps.restart_computer()) == [""]
    # Down: the WinRM port and the SSH port refuse connections.
    assert not port_open(ed.winrm_settings.endpoint_port) and not port_open(ed.port)
    with pytest.raises(Unreachable):
        await drv.run(ps.boot_info())
    deadline = time.monotonic() + 10
    while True:
        try:
            after = json.loads(await drv.run_one(ps.boot_info()))
            break
        except Unreachable:
            assert time.monotonic() < deadline, "the host did not come back over WinRM"
            await asyncio.sleep(0.05)
    assert after["CSName"] == ed.host and ps.parse_datetime(after["LastBootUpTime"]) > before
    assert port_open(ed.port)


async def test_only_encoded_powershell_is_accepted(lab: Lab) -> None:
    sb = winrm_host(lab, "https", "basic")
    p = basic_protocol(lab, sb)

    def run(command: str, args: list[str]) -> tuple[bytes, bytes, int]:
        shell = p.open_shell()
        try:
            cid = p.run_command(shell, command, args)
            try:
                return p.get_command_output(shell, cid)
            finally:
                p.cleanup_command(shell, cid)
        finally:
            p.close_shell(shell)

    good = ps.encoded_command(ps.script(ps.test_path("C:\\"))).split(" ")
    for command, args in [
        ("cmd.exe", ["/c", "whoami"]),
        ("powershell.exe", ["-Command", "Get-Service"]),
        ("powershell.exe", [*good[1:], "$(x)"]),
    ]:
        out, err, status = await asyncio.to_thread(run, command, args)
        assert (out, status) == (b"", 1)
        assert err == b"amsm-lab: only PowerShell -EncodedCommand is accepted\r\n"
    ran = await asyncio.to_thread(run, good[0], good[1:])
    assert ran == (b"True\r\n#amsm 1/1\r\n", b"", 0)


async def test_long_output_comes_in_several_receives(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second listener for one host, in this process, on the lab's own lab.db."""
    monkeypatch.setattr(lab_winrm, "RECEIVE_CHUNK", 7)
    a = acts(lab)
    sb = winrm_host(lab, "https", "basic")
    users = lab_winrm.Users("Administrator", a.creds.resolve(sb.credentials).password or "")
    ssh_port, web_port = closed_port(), closed_port()
    web = lab_winrm.winrm_server(lab.dir, sb.host, web_port, "https", LabState(lab.dir), users)
    server = HostServer(
        sb.host,
        ssh_port,
        load_host_key(lab.dir / "keys/hosts" / f"{sb.host}.key"),
        load_authorized_keys(lab.dir / "keys/id_ed25519.pub"),
        web.state,
        web,
    )
    receives = 0
    original = lab_winrm.WinRmServer._receive

    async def counting(self, shell, req):  # type: ignore[no-untyped-def]
        nonlocal receives
        receives += 1
        return await original(self, shell, req)

    monkeypatch.setattr(lab_winrm.WinRmServer, "_receive", counting)
    await server.start()
    try:
        moved = sb.model_copy(
            update={"winrm": sb.winrm_settings.model_copy(update={"port": web_port})}
        )
        lines = await a.host(moved).run(ps.boot_info(), ps.get_services(["SmartBins"]))
        assert json.loads(lines[0])["CSName"] == sb.host
        assert json.loads(lines[1]) == {
            "Name": "SmartBins",
            "DisplayName": "SmartBins",
            "Status": 4,
        }
        assert receives > 10
    finally:
        await server.stop()


async def _own_listener(
    lab: Lab, host: Host, scheme: str, allow_unencrypted: bool = False
) -> tuple[HostServer, Host]:
    """A second WinRM listener for `host`, in this process (its shells can be counted),
    on the lab's own lab.db; and the host as the inventory would name it there."""
    a = acts(lab)
    users = lab_winrm.Users("Administrator", a.creds.resolve(host.credentials).password or "")
    ssh_port, web_port = closed_port(), closed_port()
    web = lab_winrm.winrm_server(
        lab.dir, host.host, web_port, scheme, LabState(lab.dir), users, allow_unencrypted
    )
    server = HostServer(
        host.host,
        ssh_port,
        load_host_key(lab.dir / "keys/hosts" / f"{host.host}.key"),
        load_authorized_keys(lab.dir / "keys/id_ed25519.pub"),
        web.state,
        web,
    )
    await server.start()
    w = host.winrm_settings.model_copy(
        update={"port": web_port, "scheme": scheme, "allow_http": scheme == "http"}
    )
    return server, host.model_copy(update={"winrm": w})


async def test_basic_over_http_is_refused_unless_the_service_allows_unencrypted(lab: Lab) -> None:
    """AllowUnencrypted is false on a default WinRM service: Basic over HTTP gets 401."""
    a = acts(lab)
    mf = winrm_host(lab, "http", "basic")
    for allow in (False, True):
        server, moved = await _own_listener(lab, mf, "http", allow_unencrypted=allow)
        try:
            if allow:
                assert await a.host(moved).run(ps.test_path("C:\\")) == ["True"]
                continue
            with pytest.raises(AuthenticationFailed) as e:
                await a.host(moved).run(ps.test_path("C:\\"))
            assert e.value.host == mf.host and "AllowUnencrypted" in str(e.value)
        finally:
            await server.stop()
    warnings = lab.inventory.warnings()
    assert any(mf.host in w and "AllowUnencrypted" in w for w in warnings), warnings


async def test_basic_is_refused_unless_the_service_allows_it(lab: Lab) -> None:
    """Auth/Basic is false on a default WinRM service (winrm/config/service/auth): Basic
    gets 401 even over HTTPS; the lab host's document says what its service allows, and
    a change applies to the next requests (lab/winrm_config.py)."""
    a = acts(lab)
    sb = winrm_host(lab, "https", "basic")
    state = LabState(lab.dir)
    with state.transaction() as txn:
        txn.require_host(sb.host)["winrm"]["basic"] = False
    server, moved = await _own_listener(lab, sb, "https")
    try:
        with pytest.raises(AuthenticationFailed) as e:
            await a.host(moved).run(ps.test_path("C:\\"))
        assert e.value.host == sb.host
        with state.transaction() as txn:
            txn.require_host(sb.host)["winrm"]["basic"] = True
        await asyncio.sleep(lab_winrm.CONFIG_SECONDS)
        assert await a.host(moved).run(ps.test_path("C:\\")) == ["True"]
    finally:
        await server.stop()


async def test_shells_are_bounded_and_deleted_not_leaked(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    import activities.drivers.winrm as drv_winrm

    a = acts(lab)
    sb = winrm_host(lab, "https", "basic")
    server, moved = await _own_listener(lab, sb, "https")
    web = server.winrm
    assert web is not None and web.max_shells_per_user == 30
    try:
        # Many commands at once to one host: never more shells than sessions allowed.
        drv = a.host(moved)
        peak = 0
        original = lab_winrm.WinRmServer._create

        def counting(self, user, options):  # type: ignore[no-untyped-def]
            nonlocal peak
            reply = original(self, user, options)
            peak = max(peak, len(self.shells))
            return reply

        monkeypatch.setattr(lab_winrm.WinRmServer, "_create", counting)
        got = await asyncio.gather(*(drv.run(ps.test_path("C:\\")) for _ in range(24)))
        assert got == [["True"]] * 24
        assert 1 <= peak <= drv_winrm.SESSIONS_PER_HOST
        # A session idle too long is dropped with its shell deleted, not just forgotten
        # (a forgotten one would count against MaxShellsPerUser until its IdleTimeout).
        monkeypatch.setattr(drv_winrm, "SESSION_IDLE_SECONDS", 0.0)
        before = set(web.shells)
        assert before
        await drv.run(ps.test_path("C:\\"))
        await wait_until(lambda: not (before & set(web.shells)), "stale shells deleted")
    finally:
        await server.stop()


async def test_max_shells_per_user_and_the_idle_timeout(lab: Lab) -> None:
    a = acts(lab)
    sb = winrm_host(lab, "https", "basic")
    server, moved = await _own_listener(lab, sb, "https")
    web = server.winrm
    assert web is not None
    p = basic_protocol(lab, sb, moved)
    try:
        # Shells closed without Delete: they stay, and the 31st is refused.
        for _ in range(30):
            await asyncio.to_thread(p.open_shell)
        with pytest.raises(Exception) as e:
            await asyncio.to_thread(p.open_shell)
        assert getattr(e.value, "wsman_fault_code", None) == lab_winrm.FAULT_QUOTA
        assert "maximum number of 30 concurrent shells" in str(e.value)
        # The driver says what it is.
        with pytest.raises(CommandFailed, match="MaxShellsPerUser") as f:
            await a.host(moved).run(ps.test_path("C:\\"))
        assert f.value.host == sb.host
        # Past the service's idle timeout they are gone and count no more.
        web.shell_idle_seconds = 0.0
        assert await a.host(moved).run(ps.test_path("C:\\")) == ["True"]
    finally:
        await server.stop()


async def test_a_command_line_too_long_for_createprocess(lab: Lab) -> None:
    a = acts(lab)
    sb = winrm_host(lab, "https", "basic")
    drv = a.host(sb)
    many = [ps.test_path(f"C:\\{i:05d}") for i in range(800)]
    assert not drv.fits(many) and drv.max_command_length == 32766
    # The driver refuses before sending, naming the host and the length.
    with pytest.raises(CommandFailed) as e:
        await drv.run(*many)
    assert e.value.host == sb.host and str(ps.command_length(many)) in str(e.value)
    # The host itself: CreateProcess's limit, as a fault on the Command.
    p = basic_protocol(lab, sb)
    args = ps.encoded_command(ps.script(*many)).split(" ")

    def too_long() -> None:
        shell = p.open_shell()
        try:
            p.run_command(shell, args[0], args[1:], skip_cmd_shell=True)
        finally:
            p.close_shell(shell)

    with pytest.raises(Exception) as f:
        await asyncio.to_thread(too_long)
    assert getattr(f.value, "wsman_fault_code", None) == lab_winrm.FAULT_COMMAND_TOO_LONG
    # In batches under the limit, the same statements all run.
    answers = [await drv.run(*b) for b in ps.batches(many, "winrm")]
    assert sum(len(x) for x in answers) == 800 and {t for x in answers for t in x} == {"False"}


async def test_shell_codepage_decides_the_output_without_the_utf8_setting(lab: Lab) -> None:
    a = acts(lab)
    sb = winrm_host(lab, "https", "basic")
    p = basic_protocol(lab, sb)
    key = r"HKLM:\SOFTWARE\GVG\SmartBins"
    text = "\n".join(
        [ps.PREAMBLE[0], ps.set_registry(key, "Site", "Genève"), ps.get_registry(key, ["Site"])]
    )
    args = ps.encoded_command(text).split(" ")

    def run(codepage: int | None) -> bytes:
        shell = p.open_shell(codepage=codepage) if codepage else p.open_shell()
        try:
            cid = p.run_command(shell, args[0], args[1:], skip_cmd_shell=True)
            out, _, status = p.get_command_output(shell, cid)
            assert status == 0
            return out
        finally:
            p.close_shell(shell)

    assert await asyncio.to_thread(run, 65001) == '{"Site":"Genève"}\r\n'.encode()
    assert await asyncio.to_thread(run, 850) == '{"Site":"Genève"}\r\n'.encode("cp850")
    # The driver asks for UTF-8 and reads the name whole.
    got = await a.host(sb).run(ps.get_registry(key, ["Site"]))
    assert json.loads(got[0]) == {"Site": "Genève"}
