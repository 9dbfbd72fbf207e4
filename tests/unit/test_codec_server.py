"""`amsm codec-server` over real HTTP: a token, a Host allow-list (DNS rebinding), a CORS
preflight for the UI's origin only, JSON only, and a size cap enforced before the body is
read (issue 14, item 14)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from wire.codec import AesGcmCodec
from workers.codec_server import TokenError, load_token, serve

UI = "http://localhost:8233"
TOKEN = "t0ken-for-the-tests-" + "x" * 12
MAX_BODY = 64 * 1024


@dataclass
class Server:
    port: int

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        host: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host if host is not None else f"localhost:{self.port}")
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None and "Content-Length" not in (headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post(self, path: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
        h = {
            "Content-Type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        return self.request("POST", path, body, h)


def payloads_json(*texts: str) -> bytes:
    p = [Payload(metadata={"encoding": b"json/plain"}, data=t.encode()) for t in texts]
    return json_format.MessageToJson(Payloads(payloads=p)).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    codec = AesGcmCodec({"k1": os.urandom(32)}, "k1")
    httpd = serve(codec, "127.0.0.1", 0, [UI], token=TOKEN, max_body=MAX_BODY)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield Server(httpd.server_port)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_round_trip_with_the_token_as_bearer_or_path(server: Server) -> None:
    status, headers, body = server.post(
        "/encode", payloads_json('{"host":"ED-01"}'), Authorization=f"Bearer {TOKEN}", Origin=UI
    )
    assert status == 200 and headers["access-control-allow-origin"] == UI
    assert headers["content-type"] == "application/json"
    encrypted = json.loads(body)
    assert b"ED-01" not in body
    # The Web UI's form: the token as the endpoint's first path segment, and the
    # query string it adds (preserveStorageRefs).
    status, _, body = server.post(
        f"/{TOKEN}/decode?preserveStorageRefs=true", json.dumps(encrypted).encode(), Origin=UI
    )
    assert status == 200
    data = json.loads(body)["payloads"][0]["data"]
    assert base64.b64decode(data) == b'{"host":"ED-01"}'


def test_no_token_or_a_wrong_one_is_refused(server: Server) -> None:
    body = payloads_json("x")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        status, h, out = server.post("/decode", body, **headers)
        assert status == 401, headers
        assert json.loads(out) == {"error": "a valid token is required"}
        assert h["www-authenticate"] == "Bearer"
    status, _, _ = server.post("/not-the-token/decode", body)
    assert status == 401


def test_hosts_outside_the_allow_list_are_refused(server: Server) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 still
    sends Host: evil.example; so does any name but the ones this server is."""
    body = payloads_json("x")
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    for host in (f"evil.example:{server.port}", "evil.example", f"127.0.0.1:{server.port + 1}",
                 "", "[::1:bad"):  # fmt: skip
        status, _, out = server.request("POST", "/decode", body, auth, host=host)
        assert status == 403, host
        assert json.loads(out) == {"error": "this Host is not served here"}
    for host in (f"127.0.0.1:{server.port}", f"LOCALHOST:{server.port}", f"[::1]:{server.port}"):
        status, _, _ = server.request("POST", "/decode", body, auth, host=host)
        assert status == 200, host


def test_the_preflight_is_answered_for_the_ui_origin_only(server: Server) -> None:
    ask = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    status, h, _ = server.request("OPTIONS", f"/{TOKEN}/decode", None, ask)
    assert status == 204
    assert h["access-control-allow-origin"] == UI
    assert h["access-control-allow-methods"] == "POST"
    assert "x-namespace" in h["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in h
    for bad in (
        {**ask, "Origin": "http://evil.example"},
        {k: v for k, v in ask.items() if k != "Origin"},
        {**ask, "Access-Control-Request-Method": "PUT"},
        {**ask, "Access-Control-Request-Headers": "content-type,x-evil"},
    ):
        status, h, _ = server.request("OPTIONS", "/decode", None, bad)
        assert status == 403, bad
        assert h.get("access-control-allow-origin") in (None, UI)
        assert "access-control-allow-methods" not in h
    # A browser POST from another origin (a form, a no-cors fetch) is refused too.
    status, h, _ = server.post(
        "/decode", payloads_json("x"), Authorization=f"Bearer {TOKEN}", Origin="http://evil.example"
    )
    assert status == 403 and "access-control-allow-origin" not in h


def test_json_only(server: Server) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, _, out = server.request(
            "POST", "/decode", payloads_json("x"), {**auth, "Content-Type": ctype}
        )
        assert status == 415, ctype
    status, _, out = server.post("/decode", b'{"payloads": [{"data": "s3cret-text"', **auth)
    assert status == 400 and json.loads(out) == {
        "error": "the body is not the JSON form of Payloads"
    }
    status, _, out = server.request("GET", "/decode", None, auth)
    assert status == 405 and json.loads(out)["error"] == "POST /encode or /decode"
    status, _, _ = server.post("/elsewhere", payloads_json("x"), **auth)
    assert status == 404


def test_large_bodies_are_refused_before_they_are_read(server: Server) -> None:
    # Claim 100 MB and send none of it: the answer comes at once.
    t0 = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(
            (
                f"POST /decode HTTP/1.1\r\nHost: localhost:{server.port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000000\r\n\r\n"
            ).encode()
        )
        chunks = []
        while chunk := sock.recv(4096):  # the server closes after its answer
            chunks.append(chunk)
        answer = b"".join(chunks).decode()
    finally:
        sock.close()
    assert answer.startswith("HTTP/1.0 413") or answer.startswith("HTTP/1.1 413"), answer
    assert f"larger than {MAX_BODY} bytes" in answer and time.monotonic() - t0 < 5
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, _, _ = server.request(
        "POST", "/decode", b"{}", {**auth, "Transfer-Encoding": "chunked", "Content-Length": "2"}
    )
    assert status == 411
    status, _, _ = server.request("POST", "/decode", None, {**auth})
    assert status == 411
    status, _, _ = server.post("/decode", payloads_json("a" * (MAX_BODY // 2)), **auth)
    assert status == 200  # about 43 KiB as base64: under the cap
    status, _, _ = server.post("/decode", payloads_json("a" * MAX_BODY), **auth)
    assert status == 413


def test_the_token_is_not_logged(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.post(f"/{TOKEN}/decode", payloads_json("x"))
    server.post("/decode", payloads_json("x"), Authorization=f"Bearer {TOKEN}")
    time.sleep(0.1)
    err = capsys.readouterr().err
    assert "POST /***/decode 200" in err and TOKEN not in err


def test_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMSM_CODEC_TOKEN_FILE", raising=False)
    monkeypatch.delenv("AMSM_CODEC_TOKEN", raising=False)
    token, generated = load_token(None)
    assert generated and len(token) >= 40
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert load_token(str(f)) == (TOKEN, False)
    f.write_bytes(b"short\n")
    with pytest.raises(TokenError, match="at least 16 characters"):
        load_token(str(f))
    f.write_bytes(b"\xe9" * 20)
    with pytest.raises(TokenError) as e:
        load_token(str(f))
    assert str(e.value) == f"{f}: the token must be ASCII"
    monkeypatch.setenv("AMSM_CODEC_TOKEN", TOKEN)
    assert load_token(None) == (TOKEN, False)
    with pytest.raises(ValueError, match="needs a token"):
        serve(AesGcmCodec({"k": os.urandom(32)}, "k"), "127.0.0.1", 0, [UI], token="")


def test_the_command_refuses_a_bad_token_file_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from amsm import main
    from wire.codec import new_key_line

    keys = tmp_path / "keys"
    keys.write_text(new_key_line("k1") + "\n")
    bad = tmp_path / "token"
    bad.write_text("short\n")
    rc = main(["--codec-key-file", str(keys), "codec-server", "--token-file", str(bad)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith(f"amsm: {bad}: the token must be at least 16 characters")
    assert "short" not in err
    rc = main(["--codec-key-file", str(keys), "codec-server", "--max-body", "10"])
    assert rc == 2 and "--max-body: at least 1024 bytes" in capsys.readouterr().err
