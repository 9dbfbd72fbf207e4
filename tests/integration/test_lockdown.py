"""The lock-down as far as this machine can run it. The CLI and the worker reach Temporal over mutual TLS (docs/site/production.md,
Lock-down): Debian's HAProxy in front of the dev server, on loopback, terminating TLS
with the certificates `amsm auth init` made and requiring a client certificate the
site's CA signed. The dev server has no authorizer, so this proves the transport only:
a program with its certificate reaches the pair, one without is refused at the
handshake. And `amsm check`'s probes of the frontend where the inventory says production:
the dev server takes an unauthenticated write (a problem); the proxy refuses the stranger
but, with no authorizer behind it, takes the operator's certificate without a token (a
problem too: mutual TLS alone is not the lock-down)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import TLSConfig

from api.check import refused_at_handshake
from client import cli as amsm_cli
from tests.support.cli import cli
from tests.support.lab import AMSM, Lab, free_port, wait_ports
from tests.support.worker import running_worker

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
pytestmark = pytest.mark.skipif(
    HAPROXY is None, reason="HAProxy is missing: make setup installs it (the Makefile's haproxy)"
)


def haproxy_config(
    auth: Path,
    pem: Path,
    listen: int,
    upstream: str,
    verify: str = "required",
    ca: str = "ca.pem",
) -> str:
    """TCP mode, TLS ended at the bind line (HAProxy 2.6 Configuration Manual, 5.1 "Bind
    options"): `crt` the frontend's certificate and key, `ca-file` the site's CA,
    `verify required` (no client certificate, or one of another CA: the handshake
    fails), `alpn h2` (gRPC's HTTP/2: the SDK's client insists on it). Timeouts past a
    worker's long poll (about a minute)."""
    return "\n".join(
        [
            "defaults",
            "  mode tcp",
            "  timeout connect 5s",
            "  timeout client 10m",
            "  timeout server 10m",
            "frontend temporal",
            f"  bind 127.0.0.1:{listen} ssl crt {pem} ca-file {auth / ca} verify {verify} alpn h2",
            "  default_backend dev",
            "backend dev",
            f"  server dev {upstream}",
            "",
        ]
    )


@pytest.fixture
def auth(tmp_path: Path) -> Path:
    out = tmp_path / "auth"
    assert amsm_cli.main(["auth", "init", "--site", "lab", "--out", str(out)]) == 0
    return out


@contextlib.contextmanager
def haproxy(
    auth: Path, tmp_path: Path, temporal: Client, verify: str, internode: bool = False
) -> Iterator[str]:
    """HAProxy on 127.0.0.1, in front of the dev server; its address. `verify`: whether
    it asks a client certificate (`required`; `none`, TLS that is not mutual).
    `internode`: TLS as the server's own services take it (`global.tls.internode`: the
    internode certificate, clients of the internode CA only), not as the frontend."""
    port = free_port()
    name, ca = ("internode", "internode-ca.pem") if internode else ("temporal", "ca.pem")
    pem = tmp_path / f"{name}.pem"  # HAProxy's `crt`: the certificate, then its key
    pem.write_bytes((auth / f"{name}.pem").read_bytes() + (auth / f"{name}-key.pem").read_bytes())
    pem.chmod(0o600)
    conf = tmp_path / f"haproxy-{name}-{verify}.cfg"
    upstream = temporal.service_client.config.target_host
    conf.write_text(haproxy_config(auth, pem, port, upstream, verify, ca))
    log = open(tmp_path / f"haproxy-{name}-{verify}.log", "wb")  # noqa: SIM115 - closed below
    assert HAPROXY is not None
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ports([port], proc, timeout=15)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def proxy(auth: Path, tmp_path: Path, temporal: Client) -> Iterator[str]:
    with haproxy(auth, tmp_path, temporal, "required") as address:
        yield address


def env(lab: Lab, address: str, auth: Path, who: str | None) -> dict[str, str]:
    """The environment of a program reaching Temporal through the proxy as `who` (a
    certificate `amsm auth init` made), or with the CA alone (`who` None)."""
    e = {k: v for k, v in lab.env.items() if not k.startswith("TEMPORAL_TLS")}
    e |= {"TEMPORAL_ADDRESS": address, "TEMPORAL_TLS_CA": str(auth / "ca.pem")}
    e |= {"TEMPORAL_TLS_SERVER_NAME": "localhost"}
    if who is not None:
        e |= {"TEMPORAL_TLS_CERT": str(auth / f"{who}.pem")}
        e |= {"TEMPORAL_TLS_KEY": str(auth / f"{who}-key.pem")}
    return e


def amsm(environ: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AMSM), *argv], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


async def test_the_cli_and_the_worker_go_through_the_proxy_with_their_certificates(
    temporal: Client, lab_factory, auth: Path, proxy: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    with open(tmp_path / "worker.log", "wb") as out:
        worker = subprocess.Popen(
            [str(AMSM), "worker"],
            env=env(lab, proxy, auth, "worker"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        operator = env(lab, proxy, auth, "console")
        status = amsm(operator, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert lab.inventory.pair in status.stdout, status.stdout
        started = amsm(operator, "start", "switch", "--to", "Y", "--json")
        assert started.returncode == 0, started.stderr
        run = json.loads(started.stdout)["run_id"]
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        # Only the worker behind the proxy serves the pair's queue: a completed workflow
        # task is its work.
        deadline = time.monotonic() + 60
        done = False
        while not done and time.monotonic() < deadline:
            events = [e async for e in handle.fetch_history_events()]
            done = any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events)
            await asyncio.sleep(0.3)
        assert done, (tmp_path / "worker.log").read_text()[-3000:]
        aborted = amsm(operator, "abort", run, "--reason", "test over")
        assert aborted.returncode == 0, aborted.stderr
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


async def test_without_a_client_certificate_the_proxy_refuses(
    lab_factory, auth: Path, proxy: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    stranger = env(lab, proxy, auth, None)
    denied = amsm(stranger, "status", "--json")
    assert denied.returncode != 0, denied.stdout
    assert "Traceback" not in denied.stderr, denied.stderr
    assert denied.stderr.startswith("amsm: cannot reach Temporal"), denied.stderr
    assert "check the TLS options" in denied.stderr, denied.stderr
    started = amsm(stranger, "start", "switch", "--to", "Y", "--json")
    assert started.returncode != 0 and "Traceback" not in started.stderr, started.stderr
    # a certificate of another CA is no better
    other = tmp_path / "other"
    made = amsm(stranger, "auth", "init", "--site", "elsewhere", "--out", str(other))
    assert made.returncode == 0, made.stderr
    forged = env(lab, proxy, auth, None) | {
        "TEMPORAL_TLS_CERT": str(other / "worker.pem"),
        "TEMPORAL_TLS_KEY": str(other / "worker-key.pem"),
    }
    assert amsm(forged, "status", "--json").returncode != 0


async def test_no_client_certificate_of_the_site_passes_where_the_services_meet(
    temporal: Client, auth: Path, tmp_path: Path
) -> None:
    """Internode TLS as `amsm auth init` renders it (the internal frontend, history,
    matching: where a certificate taken is a system admin): the internode certificate
    passes, and no certificate of the site's CA does, a program's, the Web UI's or an
    engineer's (T1 of the review: one CA signed both, so any of them passed)."""

    def tls(who: str, server_ca: str, domain: str) -> TLSConfig:
        return TLSConfig(
            server_root_ca_cert=(auth / server_ca).read_bytes(),
            client_cert=(auth / f"{who}.pem").read_bytes(),
            client_private_key=(auth / f"{who}-key.pem").read_bytes(),
            domain=domain,
        )

    with haproxy(auth, tmp_path, temporal, "required", internode=True) as address:
        node = await Client.connect(
            address,
            namespace=temporal.namespace,
            tls=tls("internode", "internode-ca.pem", "internode"),
        )
        assert (
            await node.workflow_service.get_system_info(GetSystemInfoRequest())
        ).server_version is not None
        for who in ("console", "worker", "ui", "admin"):
            with pytest.raises(RuntimeError) as refused:
                await Client.connect(
                    address,
                    namespace=temporal.namespace,
                    tls=tls(who, "internode-ca.pem", "internode"),
                )
            assert refused_at_handshake(refused.value), (who, str(refused.value))


# -- amsm check: the frontend's lock-down where the inventory says production -----------
def frontend_findings(out: str) -> tuple[dict, list[dict]]:
    found = json.loads(out.splitlines()[0])
    hits = [f for f in found["problems"] + found["warnings"] if f["check"] == "temporal-frontend"]
    return found, hits


async def test_check_reports_a_frontend_that_takes_an_unauthenticated_write(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    """The dev server has no authorizer: a signal sent without credentials is looked up
    (NOT_FOUND), not refused. In production that is a problem; elsewhere not probed."""
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "check", "--json")
        assert rc == 0, out
        assert frontend_findings(out)[1] == []
        lab.edit_inventory(site={"production": True})
        rc, out = await cli(temporal, lab, "check", "--json")
        assert rc == 1, out
        found, (hit,) = frontend_findings(out)
        assert found["ready"] is False and hit in found["problems"]
        assert hit["host"] == f"temporal {temporal.service_client.config.target_host}"
        assert "accepted an unauthenticated write" in hit["found"]
        assert "docs/site/production.md#lock-down" in hit["fix"] and hit["steps"] == []
        rc, text = await cli(temporal, lab, "check")
        assert rc == 1 and "temporal-frontend" in text and "unauthenticated write" in text
    # the probe wrote nothing: no workflow under its id
    probes = [
        w
        async for w in temporal.list_workflows(
            f"WorkflowId STARTS_WITH 'amsm-{lab.inventory.pair}-probe-'"
        )
    ]
    assert probes == []


async def check_through(temporal: Client, lab: Lab, auth: Path, address: str) -> tuple[int, str]:
    """`amsm check --json` as an operator connected through `address` with the
    console's certificate."""
    tls = TLSConfig(
        server_root_ca_cert=(auth / "ca.pem").read_bytes(),
        client_cert=(auth / "console.pem").read_bytes(),
        client_private_key=(auth / "console-key.pem").read_bytes(),
        domain="localhost",
    )
    operator = await Client.connect(
        address, namespace=temporal.namespace, tls=tls, data_converter=temporal.data_converter
    )
    return await cli(operator, lab, "check", "--json")


async def test_check_reports_mutual_tls_without_an_authorizer(
    temporal: Client, lab_factory, auth: Path, proxy: str
) -> None:  # type: ignore[no-untyped-def]
    """Through the proxy, the stranger's probe is refused at the handshake, but the
    dev server behind has no authorizer: the probe with the operator's own client
    certificate and no token gets its signal looked up. Mutual TLS alone lets every
    certificate's holder (an engineer's, the Web UI's) write: a problem, not "holding"."""
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(site={"production": True})
    async with running_worker(temporal, lab):
        rc, out = await check_through(temporal, lab, auth, proxy)
    assert rc == 1, out
    found, (hit,) = frontend_findings(out)
    assert hit in found["problems"] and found["ready"] is False
    assert hit["host"] == f"temporal {proxy}"
    assert "accepted a write from a client certificate without a token" in hit["found"]


async def test_check_reports_tls_that_asks_no_client_certificate(
    temporal: Client, lab_factory, auth: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """TLS that is not mutual (the proxy asks no client certificate) keeps nobody out:
    the probe, trusting the same CA, gets through and its signal is looked up."""
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(site={"production": True})
    with haproxy(auth, tmp_path, temporal, "none") as address:
        async with running_worker(temporal, lab):
            rc, out = await check_through(temporal, lab, auth, address)
    assert rc == 1, out
    found, (hit,) = frontend_findings(out)
    assert hit in found["problems"] and hit["host"] == f"temporal {address}"
    assert "accepted an unauthenticated write" in hit["found"]
