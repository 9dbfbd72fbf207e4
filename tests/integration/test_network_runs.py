"""Whole runs across network faults as networks make them: the worker in a network
namespace of its own, the lab in another, joined by a bridge (tests/support/netns.py);
the Temporal server in the root namespace on the bridge, a link the lab's faults do not
touch (a data centre's server). A link that drops packets silently, not a host that
refuses: connections hang until their timeouts.

- A client whose link blackholes mid-restart is reported failed naming it, the run waits
  for the operator's decision, and neither the activity's own retries nor the link
  coming back restart it again (the lab's own log counts its boots); the operator's
  retry finishes its switch.
- A planned switch across a WAN's link, 100 ms each way (a 200 ms round trip) and 1 %
  of frames lost each way (about 2 % of round trips), completes: the lab's link is a
  wire of our own that delays and drops frames (tests/support/wan.py), since these
  kernels have no netem.
- An unplanned switch with side X blackholed (its SmartBins, NAS heads and bridge answer
  nothing): each try at the lost side ends within the lost-side timeout and a stated
  margin, Y serves, and when X comes back the fence puts X's DSM and SmartBins in backup.
  The lab's DSMs are SQLite files behind ODBC, not hosts on its network: X's DSM is
  taken away with the lab's `unreachable` fault beside the dropped link.

Skipped where network namespaces cannot be made (not root, no iproute2)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.show import client_stages
from inventory.load import load_inventory
from lab.faults import set_fault
from lab.init import init_lab
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.lab import AMSM, TEMPORAL, Lab
from tests.support.netns import (
    LAB_ADDRESS,
    ROOT_ADDRESS,
    DriverProcess,
    Net,
    names_to_hosts,
    network,
    stop,
)
from workflows import search, server
from workflows.models import Checklist

CONNECT_TIMEOUT = 2.0
LOST_SIDE_TIMEOUT = 5.0
# What a step at the lost side may take beyond its one try's limit: the activity's
# failure reaching the workflow and the next workflow task (a worker on this machine).
MARGIN = 3.0
REASON = "X's switch port died at 02:10"


@dataclass
class NetRun:
    net: Net
    lab: Lab
    temporal: Client
    log: Path  # the lab's own log: one "NAME: booted" line per boot

    def boots(self, host: str) -> int:
        return len(re.findall(rf" {re.escape(host)}: booted$", self.log.read_text(), re.M))

    def restarting(self, host: str) -> bool:
        """The lab took a Restart-Computer of `host` (lab/host.py logs it)."""
        return (
            re.search(rf" {re.escape(host)}: restarting$", self.log.read_text(), re.M) is not None
        )

    def ports(self, *hosts: str) -> list[int]:
        """The TCP ports of `hosts` in the lab's namespace (SSH, or WinRM's endpoint)."""
        out: list[int] = []
        for _, h in self.lab.inventory.all_hosts():
            if h.host in hosts:
                out.append(h.winrm_settings.endpoint_port if h.transport == "winrm" else h.port)
        return out


@pytest_asyncio.fixture
async def netrun(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[NetRun]:
    """The net, the server, the lab and a worker; `timing` as the module's, or as a test
    gives it (parametrized indirectly)."""
    with network(with_root=True, wire=True) as net:
        env = await WorkflowEnvironment.start_local(
            # Every address: the worker reaches it on the bridge (ROOT_ADDRESS); the SDK
            # itself waits for it on 127.0.0.1, and the dev server dials its own services
            # there too (bound to one other address it does not start).
            ip="0.0.0.0",
            dev_server_existing_path=str(TEMPORAL),
            data_converter=pydantic_data_converter,
            ui=False,
            dev_server_log_level="error",
            search_attributes=search.ALL,
            dev_server_extra_args=server.limit_flags(),
        )
        d = tmp_path / "lab"
        inv_path = init_lab(d, editors=2, ingest=0, smartbins=1, reboot_seconds=1.0)
        names = names_to_hosts(inv_path)
        data = yaml.safe_load(inv_path.read_text())
        tag = uuid.uuid4().hex[:8]
        data["pair"], data["task_queue"] = f"n{tag}", f"amsm-net-{tag}"
        data.setdefault("timing", {}).update(
            connect_timeout=CONNECT_TIMEOUT,
            lost_side_timeout=LOST_SIDE_TIMEOUT,
            reboot_timeout=6,
            heartbeat_timeout=5,
            max_attempts=2,
        )
        data["timing"].update(getattr(request, "param", {}))
        inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
        net.hosts_file(names)
        log = tmp_path / "lab.log"
        with log.open("wb") as sink:
            lab_proc = subprocess.Popen(
                ["ip", "netns", "exec", net.lab_ns, str(AMSM), "lab", "serve", "--dir", str(d)],
                env={**os.environ, "AMSM_LAB_BIND_ADDRESS": LAB_ADDRESS},
                stdout=subprocess.DEVNULL,
                stderr=sink,
                start_new_session=True,
            )
        address = f"{ROOT_ADDRESS}:{env.client.service_client.config.target_host.rsplit(':')[1]}"
        lab = Lab(d, inv_path, load_inventory(inv_path), lab_proc, address)
        worker = None
        try:
            probe = DriverProcess(net, inv_path)
            try:
                ports = [h.port for _, h in lab.inventory.all_hosts()]
                assert (await probe.ask({"wait_ports": ports}))["ok"]
            finally:
                probe.close()
            worker = net.spawn(net.worker_ns, [str(AMSM), "worker"], lab.env)
            yield NetRun(net, lab, env.client, log)
        finally:
            if worker is not None:
                stop(worker)
            stop(lab_proc)
            await env.shutdown()


async def _stages(run: NetRun, run_id: str) -> dict[str, str]:
    shown = await cli_json(run.temporal, run.lab, "show", run_id)
    return await client_stages(run.temporal, Checklist.model_validate(shown))


async def test_a_client_whose_link_drops_mid_restart_fails_and_waits_for_the_operator(
    netrun: NetRun,
) -> None:
    temporal, lab = netrun.temporal, netrun.lab
    run_id = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
    await drive(
        temporal, lab, run_id, "Y", until=lambda s: step(s, "switch-clients")["status"] != "pending"
    )
    # ED-01 is in its first restart (1/2), the lab has taken its Restart-Computer: its
    # link drops (a dead switch port) while it reboots.
    for _ in range(600):
        if netrun.restarting("ED-01"):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"ED-01 never restarted: {await _stages(netrun, run_id)}")
    netrun.net.drop_port("lab", *netrun.ports("ED-01"))

    by_host: dict[str, dict] = {}
    shown: dict = {}
    for _ in range(600):
        shown = await cli_json(temporal, lab, "show", run_id)
        by_host = {c["host"]: c for c in step(shown, "switch-clients").get("clients") or []}
        if by_host.get("ED-01", {}).get("status") == "failed":
            break
        await asyncio.sleep(0.1)
    assert by_host["ED-01"]["status"] == "failed", by_host
    assert by_host["ED-02"]["status"] == "done", by_host
    error = by_host["ED-01"]["error"] or ""
    assert "ED-01" in error, error
    assert shown["state"] == "awaiting-operator", shown["state"]
    # Its own restart happened (the lab rebooted it behind the dead link), and no try
    # of the activity restarted it again.
    assert netrun.boots("ED-01") == 1, netrun.log.read_text()

    # The link comes back. Nothing restarts it on its own: the run waits for the
    # operator, whatever the worker could now reach.
    netrun.net.restore_ports("lab")
    await asyncio.sleep(3 * lab.inventory.timing.poll_interval + 1)
    assert netrun.boots("ED-01") == 1, netrun.log.read_text()
    shown = await cli_json(temporal, lab, "show", run_id)
    assert shown["state"] == "awaiting-operator", shown["state"]

    # The operator retries: the switch of ED-01 starts again from its reconfiguration
    # (a retry of the step starts without the failed attempt's record, activities/
    # clients.py prior_beat), so ED-01 restarts twice more: three restarts in all, each
    # one an operator's decision or the plan's, none the worker's own.
    rc, out = await cli(temporal, lab, "retry", run_id, "switch-clients")
    assert rc == 0, out
    final = await drive(temporal, lab, run_id, "Y", timeout=120)
    assert final["state"] == "completed", final
    assert step(final, "switch-clients")["status"] == "done"
    assert netrun.boots("ED-01") == 3 and netrun.boots("ED-02") == 2, netrun.log.read_text()


# A WAN's timeouts, not the module's short ones: the inventory's default connect timeout
# (a connection whose SYN is lost twice is answered after 3 s: Linux's first
# retransmission timeout is 1 s, doubling; the module's 2 s would call that a dead
# link), and room for a restart's polls and heartbeats across it.
WAN = {"connect_timeout": 10, "reboot_timeout": 120, "heartbeat_timeout": 30}


@pytest.mark.parametrize("netrun", [WAN], indirect=True, ids=["wan"])
async def test_a_planned_switch_across_a_slow_lossy_link_completes(netrun: NetRun) -> None:
    temporal, lab = netrun.temporal, netrun.lab
    before = netrun.net.impair(100, 0.01)
    run_id = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
    final = await drive(temporal, lab, run_id, "Y", timeout=300)
    after = netrun.net.wire_counts()
    assert final["state"] == "completed", [(s["id"], s["status"]) for s in final["steps"]]
    assert all(s["status"] in ("done", "skipped") for s in final["steps"]), final["steps"]
    # The link was the WAN's all along: frames were lost (and resent by TCP), and every
    # one carried waited its 100 ms.
    assert after["dropped"] > before["dropped"], (before, after)
    assert after["carried"] - before["carried"] > 100, (before, after)
    status = await cli_json(temporal, lab, "status")
    assert status["dsm"]["Y"]["mode"] == "main", status["dsm"]
    assert status["dsm"]["X"]["mode"] == "backup", status["dsm"]


def _seconds(s: dict) -> float:
    return (
        datetime.fromisoformat(s["ended_at"]) - datetime.fromisoformat(s["started_at"])
    ).total_seconds()


async def test_an_unplanned_switch_with_x_blackholed_serves_on_y_and_fences_x(
    netrun: NetRun,
) -> None:
    temporal, lab = netrun.temporal, netrun.lab
    x_hosts = [h.host for path, h in lab.inventory.all_hosts() if path.startswith("sides.X.")]
    assert len(x_hosts) >= 4, x_hosts  # SmartBins, the NAS heads, the bridge
    dsm_x = lab.inventory.sides["X"].dsm.host
    netrun.net.drop_port("lab", *netrun.ports(*x_hosts))
    set_fault(lab.dir, dsm_x, "unreachable")
    started = await cli_json(
        temporal, lab, "start", "switch", "--to", "Y", "--unplanned", "--reason", REASON,
        "--operator", "night",
    )  # fmt: skip
    shown = await drive(temporal, lab, started["run_id"], "Y", timeout=180)
    assert shown["state"] == "completed", shown
    lost = [s for s in shown["steps"] if (s.get("note") or "").startswith("skipped: side lost: ")]
    assert lost, [(s["id"], s["status"], s.get("note")) for s in shown["steps"]]
    for s in lost:
        # One try each, bounded: a silent drop hangs until the connect timeout, within
        # the lost side's limit.
        assert _seconds(s) <= LOST_SIDE_TIMEOUT + MARGIN, s
    for sid in ("dsm-y-main", "switch-clients"):
        assert step(shown, sid)["status"] == "done", step(shown, sid)

    # X comes back: fenced within one backoff interval and one try (and a margin).
    netrun.net.restore_ports("lab")
    set_fault(lab.dir, dsm_x, "clear")
    timing = lab.inventory.timing
    bound = timing.fence_max_interval + timing.lost_side_timeout + 5
    began = time.monotonic()
    while True:
        # `amsm fence` reads the fence itself (a fence it cannot read is an error, where
        # `amsm status` leaves it out), and says how it ended.
        fence = (await cli_json(temporal, lab, "fence"))["fence"]
        if fence["state"]["status"] != "waiting" or time.monotonic() - began > bound:
            break
        await asyncio.sleep(0.3)
    assert fence["state"]["status"] == "fenced", f"not fenced within {bound} s: {fence}"
    # Read after the fence ended: a status read that began while it still waited may show
    # X's DSM as it was before the fence put it in backup.
    status = await cli_json(temporal, lab, "status")
    assert status["fence"] is None, status["fence"]
    assert status["dsm"]["X"]["mode"] == "backup", status["dsm"]["X"]
    assert status["dsm"]["Y"]["mode"] == "main", status["dsm"]["Y"]
    assert [s["mode"] for s in status["smartbins"] if s["side"] == "X" and s["running"]] == [
        "Pseudo"
    ], status["smartbins"]
