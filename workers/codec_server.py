"""`amsm codec-server`: lets the Temporal Web UI and CLI show encrypted payloads.

Implements Temporal's codec-server protocol (POST /encode and /decode with the JSON
form of Payloads). Whoever may call it can decrypt, so every request must pass, in
this order (each refusal a JSON error, nothing decoded):

- the Host header names this server (`allowed_hosts`, default the loopback names and
  the bind address): a page whose DNS name was rebound to 127.0.0.1 sends its own
  name and is refused (403);
- a request from a browser (an `Origin` header) comes from a configured UI origin;
  the CORS preflight (OPTIONS) is answered only for such an origin, for POST and the
  headers the Web UI sends (403 otherwise);
- the token: `Authorization: Bearer TOKEN` (the temporal CLI's `--codec-auth`), or as
  the first path segment, `/TOKEN/decode`, for the Web UI, which can send an
  Authorization header only with its own OIDC login and only over HTTPS
  (temporalio/ui `codeServerRequest`); compared in constant time (401);
- `Content-Type: application/json` (415), a `Content-Length` (411) no larger than
  `max_body`, refused before the body is read (413);
- the body is the JSON form of Payloads, at most `MAX_PAYLOADS` of them (400).

The token never appears in the log: paths are logged with it replaced by `***`.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import secrets
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from wire.codec import CodecConfigError, load_codec
from wire.options import add_options

DEFAULT_MAX_BODY = 8 * 1024 * 1024
MAX_PAYLOADS = 10_000
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# What the Web UI sends (temporalio/ui src/lib/utilities/decode-payload.ts): the
# Authorization pair only with "Pass access token"; lower case, as browsers list them.
ALLOWED_HEADERS = ("content-type", "x-namespace", "authorization", "authorization-extras")
ROUTES = ("encode", "decode")


class TokenError(Exception):
    """The token cannot be used; a fixed text (it never quotes the file)."""


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def load_token(token_file: str | None) -> tuple[str, bool]:
    """(token, generated): from `token_file`, AMSM_CODEC_TOKEN_FILE or AMSM_CODEC_TOKEN;
    none of them: a fresh random one for this run (generated=True)."""
    token_file = token_file or os.environ.get("AMSM_CODEC_TOKEN_FILE")
    if token_file:
        try:
            raw = Path(token_file).read_bytes()
        except OSError as e:
            raise TokenError(f"{token_file}: cannot read the token file ({e.strerror})") from None
        try:
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise TokenError(f"{token_file}: the token must be ASCII") from None
        where = token_file
    elif os.environ.get("AMSM_CODEC_TOKEN"):
        token, where = os.environ["AMSM_CODEC_TOKEN"].strip(), "AMSM_CODEC_TOKEN"
    else:
        return secrets.token_urlsafe(32), True
    # URL-safe: it may be sent as a path segment.
    if len(token) < 16 or not set(token) <= _TOKEN_CHARS:
        raise TokenError(
            f"{where}: the token must be at least 16 characters of A-Z a-z 0-9 - _ . ~ "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token, False


def allowed_host_names(bind: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names this server answers to: loopback, the bind address when it is a
    specific one, and any named with --allow-host."""
    names = list(LOOPBACK_HOSTS)
    if bind not in ("", "0.0.0.0", "::"):
        names.append(bind)
    names += list(extra)
    return sorted({n.lower().strip("[]") for n in names})


def _host_name(header: str) -> tuple[str, int | None] | None:
    """(name, port) of a Host header, or None when it is not one."""
    try:
        parts = urlsplit(f"//{header}")
        return (parts.hostname or "", parts.port)
    except ValueError:
        return None


class CodecHandler(BaseHTTPRequestHandler):
    """The codec server's requests, checked in the module's order; make_handler gives
    it its codec, origins, token, Host names and body limit."""

    codec: PayloadCodec
    origins: Sequence[str] = ()
    token_bytes: bytes = b""
    hosts: frozenset[str] = frozenset()
    max_body: int = DEFAULT_MAX_BODY

    # A client that stops sending mid-request holds a thread this long at most.
    timeout = 15
    error_content_type = "application/json"
    error_message_format = '{"error": "%(code)d %(message)s"}'

    # -- answers ------------------------------------------------------------------------
    def _answer(self, code: int, body: dict[str, object] | bytes, **headers: str) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self._cors()
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, code: int, why: str, **headers: str) -> None:
        # The body may still be on the wire: do not keep the connection for another.
        self.close_connection = True
        self._answer(code, {"error": why}, Connection="close", **headers)

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin and origin in self.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Vary", "Origin")

    # -- checks -------------------------------------------------------------------------
    def _host_ok(self) -> bool:
        parsed = _host_name(self.headers.get("Host", ""))
        if parsed is None or parsed[0].lower() not in self.hosts:
            return False
        return parsed[1] is None or parsed[1] == getattr(self.server, "server_port", None)

    def _origin_ok(self) -> bool:
        origin = self.headers.get("Origin")
        return origin is None or origin in self.origins

    def _route(self) -> tuple[str | None, str | None]:
        """(route, token from the path) for /decode, /encode, /TOKEN/decode ..."""
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) == 1 and parts[0] in ROUTES:
            return parts[0], None
        if len(parts) == 2 and parts[1] in ROUTES:
            return parts[1], parts[0]
        return None, None

    def _token_ok(self, path_token: str | None) -> bool:
        given = path_token
        auth = self.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            given = value.strip()
        if not given:
            return False
        return hmac.compare_digest(given.encode(errors="replace"), self.token_bytes)

    # -- methods ------------------------------------------------------------------------
    def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._host_ok():
            return self._refuse(403, "this Host is not served here")
        origin = self.headers.get("Origin")
        method = self.headers.get("Access-Control-Request-Method", "")
        wanted = [
            h.strip().lower()
            for h in self.headers.get("Access-Control-Request-Headers", "").split(",")
            if h.strip()
        ]
        if origin is None or origin not in self.origins:
            return self._refuse(403, "this origin may not call the codec server")
        if method != "POST" or self._route()[0] is None:
            return self._refuse(403, "only POST to /encode or /decode")
        if any(h not in ALLOWED_HEADERS for h in wanted):
            return self._refuse(403, "a requested header is not allowed")
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "POST")
        self.send_header("Access-Control-Allow-Headers", ", ".join(ALLOWED_HEADERS))
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        route, path_token = self._route()
        refusal = self._refusal(route, path_token)
        if refusal is not None:
            code, why, headers = refusal
            return self._refuse(code, why, **headers)
        assert route is not None
        length = int(self.headers["Content-Length"])
        try:
            payloads = json_format.Parse(self.rfile.read(length), Payloads())
        except (json_format.ParseError, UnicodeDecodeError, ValueError):
            # Fixed text: the parser's message can quote the body.
            return self._refuse(400, "the body is not the JSON form of Payloads")
        if len(payloads.payloads) > MAX_PAYLOADS:
            return self._refuse(413, f"more than {MAX_PAYLOADS} payloads")
        fn = self.codec.encode if route == "encode" else self.codec.decode
        try:
            result = asyncio.run(fn(list(payloads.payloads)))
        except Exception:
            return self._answer(500, {"error": f"the codec could not {route} the payloads"})
        self._answer(200, json_format.MessageToJson(Payloads(payloads=result)).encode())

    def _refusal(
        self, route: str | None, path_token: str | None
    ) -> tuple[int, str, dict[str, str]] | None:
        """Why a POST is refused before its body is read (code, text, headers), in the
        module's order, or None."""
        if not self._host_ok():
            return 403, "this Host is not served here", {}
        if not self._origin_ok():
            return 403, "this origin may not call the codec server", {}
        if route is None:
            return 404, "POST /encode or /decode", {}
        if not self._token_ok(path_token):
            return 401, "a valid token is required", {"WWW_Authenticate": "Bearer"}
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 415, "the body must be application/json", {}
        if self.headers.get("Transfer-Encoding"):
            return 411, "send a Content-Length, not a chunked body", {}
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            return 411, "a Content-Length is required", {}
        if int(length_text) > self.max_body:
            return 413, f"the body is larger than {self.max_body} bytes", {}
        return None

    def _no_method(self) -> None:
        self._refuse(405, "POST /encode or /decode", Allow="POST, OPTIONS")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _no_method  # noqa: N815

    # -- log ----------------------------------------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urlsplit(self.path).path if hasattr(self, "path") else "?"
        shown = "/".join("***" if p and p not in ROUTES else p for p in path.split("/"))
        self.log_message("%s %s %s", getattr(self, "command", "?"), shown, code)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"codec-server: {self.address_string()} {format % args}\n")


def make_handler(
    codec: PayloadCodec,
    origins: Sequence[str],
    token: str,
    allowed_hosts: Sequence[str],
    max_body: int = DEFAULT_MAX_BODY,
) -> type[BaseHTTPRequestHandler]:
    """A CodecHandler for this server's codec, origins, token, Host names and limit."""
    settings = {
        "codec": codec,
        "origins": tuple(origins),
        "token_bytes": token.encode(),
        "hosts": frozenset(h.lower() for h in allowed_hosts),
        "max_body": max_body,
    }
    return type("Handler", (CodecHandler,), settings)


def serve(
    codec: PayloadCodec,
    bind: str,
    port: int,
    origins: Sequence[str],
    *,
    token: str,
    allowed_hosts: Sequence[str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> ThreadingHTTPServer:
    if not token:
        raise ValueError("the codec server needs a token")
    hosts = allowed_hosts if allowed_hosts is not None else allowed_host_names(bind)
    server = ThreadingHTTPServer((bind, port), make_handler(codec, origins, token, hosts, max_body))
    server.daemon_threads = True
    return server


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amsm codec-server",
        description="decrypt payloads for the Temporal Web UI (needs --codec-key-file)",
    )
    add_options(p)
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument(
        "--ui-origin",
        action="append",
        default=None,
        help="Web UI origin allowed by CORS (default http://localhost:8233; repeat for more)",
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="the token every request must carry (env AMSM_CODEC_TOKEN_FILE or "
        "AMSM_CODEC_TOKEN; default: a random one for this run, printed once)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host name the server answers to besides localhost, 127.0.0.1, ::1 and "
        "--bind (repeat for more); any other Host is refused (DNS rebinding)",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest request body accepted (default 8 MiB)",
    )
    return p


class _Refused(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """`amsm [--codec-key-file FILE] codec-server [--bind ...]`: serve until Ctrl-C."""
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except _Refused as e:
        print(f"amsm: {e}", file=sys.stderr)
        return e.code


def _run(args: argparse.Namespace) -> int:
    try:
        codec = load_codec(args.codec_key_file)
    except CodecConfigError as e:
        raise _Refused(str(e)) from None
    if codec is None:
        raise _Refused(
            "no key: pass --codec-key-file FILE or set AMSM_CODEC_KEY_FILE / AMSM_CODEC_KEY"
        )
    origins = args.ui_origin or ["http://localhost:8233"]
    try:
        token, generated = load_token(args.token_file)
    except TokenError as e:
        raise _Refused(str(e)) from None
    if args.max_body is not None and args.max_body < 1024:
        raise _Refused("--max-body: at least 1024 bytes")
    hosts = allowed_host_names(args.bind, args.allow_host or [])
    try:
        server = serve(
            codec.reader(),  # shows plaintext payloads as they are; a worker refuses them
            args.bind,
            args.port,
            origins,
            token=token,
            allowed_hosts=hosts,
            max_body=args.max_body or DEFAULT_MAX_BODY,
        )
    except OSError as e:
        raise _Refused(f"cannot listen on {args.bind}:{args.port}: {e.strerror}", 1) from None
    if args.bind not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.bind}: whoever has the token can decrypt payloads")
    base = f"http://{args.bind}:{args.port}"
    shown = token if generated else "TOKEN"
    print(
        f"codec server on {base} (current key {codec.current}). Web UI codec endpoint: "
        f"{base}/{shown}/ ; temporal CLI: --codec-endpoint {base} --codec-auth "
        f"'Bearer {shown}'. Allowed origins: {', '.join(origins)}; hosts: {', '.join(hosts)}"
        + ("; the token was generated for this run" if generated else ""),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
