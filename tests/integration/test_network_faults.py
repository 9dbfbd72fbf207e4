"""Network faults as networks make them: a link that drops packets silently (a dead
switch port), not a host that refuses. The lab is served in a network namespace of its
own, the drivers run in the worker's, and the link between them goes through a bridge
(tests/support/netns.py). Every transport's connect and read timeouts must hold: the
call fails naming the host within its timeout and a stated margin, and leaves no socket
open. Skipped where network namespaces cannot be made (not root, no iproute2)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from activities.context import DeviceContext
from activities.drivers import powershell as ps
from activities.drivers.errors import Unreachable
from inventory.load import load_inventory
from lab.init import CREDENTIALS as SSH_CREDENTIALS
from lab.init import init_lab
from tests.support.lab import AMSM
from tests.support.netns import (
    LAB_ADDRESS,
    DriverProcess,
    Net,
    names_to_hosts,
    network,
    stop,
)

# The inventory's timing for these tests: short, so that a hang is seen quickly.
CONNECT_TIMEOUT = 2.0
OPERATION_TIMEOUT = 5.0
# What the driver may take beyond its timeout: the event loop's wake-up, the
# exception's way out, the request and answer between processes. Not a retry.
MARGIN = 1.0
# How long after a failed WinRM call its thread may still hold a connection: pywinrm
# is synchronous, so the thread waits out requests' read timeout (the operation
# timeout plus max(5, connect timeout), activities/drivers/winrm.py _protocol), then
# tries to Delete the shell on a new connection (the connect timeout) before it closes
# the session; the caller has had its answer at the operation timeout.
WINRM_THREAD_SECONDS = OPERATION_TIMEOUT + max(5, CONNECT_TIMEOUT) + CONNECT_TIMEOUT
STATEMENT = ps.test_path("C:\\")


@dataclass
class Served:
    """The lab served in its namespace, for the module's tests."""

    net: Net
    inventory: Path
    ports: list[int]
    ssh_host: str
    winrm_host: str
    winrm_port: int


@dataclass
class NetLab:
    """The served lab and a driver process of the test's own (its connections, pools and
    sockets are the test's alone)."""

    served: Served
    driver: DriverProcess

    @property
    def net(self) -> Net:
        return self.served.net

    async def call(self, host: str, **extra: Any) -> dict[str, Any]:
        return await self.driver.ask({"host": host, "statements": [STATEMENT], **extra})

    async def sockets_after(self, seconds: float) -> int:
        answer = await self.driver.ask({"sleep": seconds})
        return int(answer["sockets"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with network(wire=True) as net:
        d = tmp_path_factory.mktemp("netlab")
        inv_path = init_lab(d, editors=2, ingest=0, smartbins=1, reboot_seconds=0.3)
        names = names_to_hosts(inv_path)
        data = yaml.safe_load(inv_path.read_text())
        data.setdefault("timing", {}).update(
            connect_timeout=CONNECT_TIMEOUT, operation_timeout=OPERATION_TIMEOUT
        )
        inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
        inv = load_inventory(inv_path)
        net.hosts_file(names)
        lab = net.spawn(
            net.lab_ns,
            [str(AMSM), "lab", "serve", "--dir", str(d)],
            {**os.environ, "AMSM_LAB_BIND_ADDRESS": LAB_ADDRESS},
        )
        try:
            hosts = [h for _, h in inv.all_hosts()]
            ports = [h.port for h in hosts] + [
                h.winrm_settings.endpoint_port for h in hosts if h.transport == "winrm"
            ]
            ssh_host = inv.sides["X"].smartbins[0]
            winrm_host = inv.sides["Y"].smartbins[0]
            assert ssh_host.transport == "ssh" and winrm_host.transport == "winrm"
            yield Served(
                net,
                inv_path,
                ports,
                ssh_host.host,
                winrm_host.host,
                winrm_host.winrm_settings.endpoint_port,
            )
        finally:
            stop(lab)


@pytest_asyncio.fixture
async def netlab(served: Served) -> AsyncIterator[NetLab]:
    driver = DriverProcess(served.net, served.inventory)
    try:
        ready = await driver.ask({"wait_ports": served.ports})
        assert ready["ok"], ready
        yield NetLab(served, driver)
    finally:
        driver.close()
        served.net.restore("lab")
        if served.net.wire:
            served.net.impair(0, 0)
        for side in ("lab", "worker"):
            served.net.restore_ports(side)


def assert_failed_in_time(answer: dict[str, Any], host: str, bound: float) -> None:
    assert not answer["ok"], answer
    assert answer["type"] == "Unreachable" and answer["host"] == host, answer
    assert host in answer["error"], answer
    assert answer["seconds"] <= bound + MARGIN, answer


async def test_the_lab_answers_over_the_bridge(netlab: NetLab) -> None:
    for host in (netlab.served.ssh_host, netlab.served.winrm_host):
        answer = await netlab.call(host)
        assert answer["ok"] and answer["out"] == ["True"], answer


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_connect_to_a_blackholed_host_fails_within_its_timeout(
    netlab: NetLab, transport: str
) -> None:
    host = netlab.served.ssh_host if transport == "ssh" else netlab.served.winrm_host
    before = await netlab.sockets_after(0)
    netlab.net.drop("lab")
    answer = await netlab.call(host)
    # A new connection: the connect timeout bounds it (SSH's connect and login
    # timeouts; requests' connect timeout), well inside the operation timeout.
    assert_failed_in_time(answer, host, OPERATION_TIMEOUT)
    assert answer["seconds"] >= CONNECT_TIMEOUT - 0.2, answer  # it did wait: a drop, not a refusal
    # and says which timeout it was, not the operation's
    assert f"no answer within {CONNECT_TIMEOUT:g} s" in answer["error"] or (
        "timed out" in answer["error"]
    ), answer
    assert await netlab.sockets_after(WINRM_THREAD_SECONDS if transport == "winrm" else 0.5) <= (
        before
    )


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_a_link_that_drops_under_an_open_connection_fails_within_the_timeout(
    netlab: NetLab, transport: str
) -> None:
    host = netlab.served.ssh_host if transport == "ssh" else netlab.served.winrm_host
    # A first command leaves its connection open for the next (both drivers pool).
    assert (await netlab.call(host))["ok"]
    before = await netlab.sockets_after(0)
    netlab.net.drop("lab")
    answer = await netlab.call(host)
    # The request goes out on the open connection and no answer ever comes: the
    # operation timeout bounds the whole call (SSH: the channel open waits at most the
    # connect timeout, then a new connection; WinRM: the caller's deadline).
    assert_failed_in_time(answer, host, OPERATION_TIMEOUT)
    after = await netlab.sockets_after(WINRM_THREAD_SECONDS if transport == "winrm" else 0.5)
    # The pooled connection to the dead host is closed, not kept.
    assert after < before, (before, after)


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_a_link_that_comes_back_mid_operation_lets_the_call_finish(
    netlab: NetLab, transport: str
) -> None:
    host = netlab.served.ssh_host if transport == "ssh" else netlab.served.winrm_host
    netlab.net.drop("lab")
    call = asyncio.create_task(netlab.call(host))
    await asyncio.sleep(0.5)
    netlab.net.restore("lab")
    answer = await call
    # TCP sends its SYN again after 1 s (the kernel's initial retransmission
    # timeout), by then the link is back: the call completes, within its timeout.
    assert answer["ok"] and answer["out"] == ["True"], answer
    assert 0.5 <= answer["seconds"] <= OPERATION_TIMEOUT + MARGIN, answer


async def test_a_host_whose_winrm_port_drops_while_ssh_answers(netlab: NetLab) -> None:
    host = netlab.served.winrm_host
    assert (await netlab.call(host))["ok"]
    netlab.net.drop_port("lab", netlab.served.winrm_port)
    answer = await netlab.call(host)
    # Its open WinRM connection takes a request and never answers: the operation
    # timeout bounds it.
    assert_failed_in_time(answer, host, OPERATION_TIMEOUT)
    # A new one hangs in connect: the connect timeout bounds it.
    again = await netlab.call(host)
    assert_failed_in_time(again, host, CONNECT_TIMEOUT)
    # The same host over SSH answers meanwhile: it is the port that is gone, not the host.
    over_ssh = await netlab.call(host, transport="ssh", credentials=SSH_CREDENTIALS)
    assert over_ssh["ok"] and over_ssh["out"] == ["True"], over_ssh
    netlab.net.restore_ports("lab")
    back = await netlab.call(host)
    assert back["ok"] and back["out"] == ["True"], back


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_a_call_across_a_slow_lossy_link_completes(netlab: NetLab, transport: str) -> None:
    # Sites joined by a WAN: 100 ms each way (a 200 ms round trip) and 1 % loss each way
    # (about 2 % of round trips), as in issue 29. Made by the lab's wire, not tc's netem,
    # which these kernels do not have (tests/support/wan.py).
    host = netlab.served.ssh_host if transport == "ssh" else netlab.served.winrm_host
    netlab.net.impair(100, 0.01)
    # The inventory's default timeouts (a WAN's, not this module's short ones).
    timing = {"connect_timeout": 10, "operation_timeout": 120}
    answer = await netlab.driver.ask({"host": host, "statements": [STATEMENT], "timing": timing})
    assert answer["ok"] and answer["out"] == ["True"], answer
    assert answer["seconds"] >= 0.2, answer  # at least a round trip: the link was slow


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_a_call_across_a_rate_limited_link_completes(netlab: NetLab, transport: str) -> None:
    host = netlab.served.ssh_host if transport == "ssh" else netlab.served.winrm_host
    for side in ("lab", "worker"):
        # 256 kbit/s each way (tbf: token bucket; Linux tc-tbf(8)).
        netlab.net.shape(side, "tbf", "rate", "256kbit", "burst", "4kb", "latency", "500ms")
    answer = await netlab.call(host)
    assert answer["ok"] and answer["out"] == ["True"], answer
    # Through the shaper, both ways.
    assert netlab.net.sent_bytes("lab") > 0 and netlab.net.sent_bytes("worker") > 0


@pytest.mark.parametrize("wire", [False, True], ids=["veth", "wire"])
def test_the_network_is_removed_even_when_the_test_fails(wire: bool) -> None:
    made: list[Net] = []
    with pytest.raises(RuntimeError, match="the test failed"), network(wire=wire) as net:
        made.append(net)
        net.drop("lab")
        if wire:
            net.impair(100, 0.5)
        raise RuntimeError("the test failed")
    net = made[0]
    assert net.wire == wire, "no /dev/net/tun"
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert net.worker_ns not in left.stdout and net.lab_ns not in left.stdout
    for link in (net.bridge, net.port("lab"), net.port("worker")):
        shown = subprocess.run(["ip", "link", "show", link], capture_output=True, text=True)
        assert shown.returncode != 0, f"{link} left behind"
    assert not (Path("/etc/netns") / net.worker_ns).exists()


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
async def test_a_host_that_accepts_and_never_speaks_fails_within_its_timeout(
    tmp_path: Path, transport: str
) -> None:
    # Not a dropped link but a hung service: TCP is accepted, then nothing (no SSH
    # banner, no TLS handshake). No namespace needed: a local listener that never reads.
    inv_path = init_lab(tmp_path / "lab", editors=2, ingest=0, smartbins=1)
    data = yaml.safe_load(inv_path.read_text())
    data.setdefault("timing", {}).update(
        connect_timeout=CONNECT_TIMEOUT, operation_timeout=OPERATION_TIMEOUT
    )
    inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
    inv = load_inventory(inv_path)
    held: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    host = inv.sides["X"].smartbins[0] if transport == "ssh" else inv.sides["Y"].smartbins[0]
    if transport == "ssh":
        host = host.model_copy(update={"port": port})
    else:
        winrm = host.winrm_settings.model_copy(update={"port": port})
        host = host.model_copy(update={"winrm": winrm})
    driver = DeviceContext(inv, inv_path).host(host)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(Unreachable) as e:
            await driver.run(STATEMENT)
    finally:
        for w in held:
            w.close()
        server.close()
    took = loop.time() - started
    assert e.value.host == host.host and host.host in str(e.value)
    # SSH: the connect timeout covers the banner, key exchange and login. WinRM:
    # requests' connect timeout is TCP's only; the TLS handshake waits under the read
    # timeout, and the caller's deadline (the operation timeout) ends it first.
    bound = CONNECT_TIMEOUT if transport == "ssh" else OPERATION_TIMEOUT
    assert took <= bound + MARGIN, (took, str(e.value))
    if transport == "ssh":
        assert f"no answer within {CONNECT_TIMEOUT:g} s" in str(e.value)
