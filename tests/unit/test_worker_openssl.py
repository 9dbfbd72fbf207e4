"""The worker's OpenSSL configuration for SQL Server 2005/2008 (etc/openssl-legacy-tls.cnf,
docs/site/sqlserver.md, TLS), tried with OpenSSL itself: a server that speaks only
TLS 1.0, as SQL Server 2005 does, refuses a client with OpenSSL 3's defaults and accepts
one with the configuration. (The ODBC driver loads the same libssl and reads the same
OPENSSL_CONF; the driver itself is not installed here.)"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "etc" / "openssl-legacy-tls.cnf"
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls10_server(tmp_path: Path) -> Iterator[int]:
    assert OPENSSL is not None
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=dsm-x"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    # The server side stands for SQL Server 2005: TLS 1.0 and nothing else (it needs the
    # legacy configuration itself to offer it at all).
    server = subprocess.Popen(
        [OPENSSL, "s_server", "-accept", str(port), "-tls1", "-cert", str(cert)]
        + ["-key", str(key), "-quiet"],
        env={**os.environ, "OPENSSL_CONF": str(CONF)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "openssl s_server did not listen"
                time.sleep(0.1)
        yield port
    finally:
        server.kill()
        server.wait()


def handshake(port: int, conf: Path | None) -> str:
    assert OPENSSL is not None
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    if conf is not None:
        env["OPENSSL_CONF"] = str(conf)
    done = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "dsm-x"],
        input=b"",
        env=env,
        capture_output=True,
        timeout=20,
    )
    return (done.stdout + done.stderr).decode(errors="replace")


def test_tls10_is_refused_by_default_and_accepted_with_the_workers_configuration(
    tls10_server: int,
) -> None:
    default = handshake(tls10_server, None)
    assert "Cipher is (NONE)" in default, default
    # The reason OpenSSL 3 gives (the driver reports it inside "SSL Provider: [...]";
    # activities/drivers/dsm.py recognises it; tests/dsm_facts/connect).
    assert any(
        r in default
        for r in ("legacy sigalg disallowed", "unsupported protocol", "no protocols available")
    ), default
    legacy = handshake(tls10_server, CONF)
    assert "Protocol  : TLSv1\n" in legacy or "New, TLSv1.0" in legacy, legacy
    assert "Cipher is (NONE)" not in legacy, legacy
