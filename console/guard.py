"""What every request to the console passes before any page sees it (a pure ASGI
middleware, docs/operators/console.md "How the console holds"):

- the Host header: an address, `localhost` or a name the operator allowed
  (`--allowed-host`); any other name is refused with 400, so a name an attacker
  rebinds to the console's address (DNS rebinding) cannot drive it through a browser;
- the body: a Content-Length over the bound refused with 413 before routing, a chunked
  body counted as it streams and cut at the bound; the whole body within a deadline
  (408), so a client sending it a byte at a time holds nothing for long; no multipart
  bodies at all (415: no page takes a file, so nothing is spooled to disk);
- the answer: the security headers on every response (a Content-Security-Policy
  allowing only the console's own scripts and styles and no framing, X-Frame-Options,
  Referrer-Policy, X-Content-Type-Options).

The header deadline (a request's headers within a few seconds of the connection or of
the previous answer) is uvicorn's protocol's, console/main.py."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# The largest body a page takes: a start form with every pilot of a pair, a gate's
# typed count and a note are a few kilobytes.
MAX_BODY = 64 * 1024
# The whole body must arrive within this many seconds of the request's headers.
BODY_SECONDS = 10.0
# No inline script or style: the pages load /static/console.js and console.css only
# (MDN, Content-Security-Policy; frame-ancestors replaces X-Frame-Options, sent too for
# older browsers).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)
LOOPBACK_NAMES = frozenset({"localhost"})


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def host_name(header: str) -> str:
    """The name of a Host header without its port ("[::1]:8080" -> "::1")."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    name, _, port = text.rpartition(":")
    return name if name and port.isdigit() else text


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """An address (a rebinding attack needs a name), `localhost`, or an allowed name."""
    name = host_name(header).rstrip(".")
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in LOOPBACK_NAMES or name in allowed


class Guard:
    """The console's outermost middleware (console/app.py)."""

    def __init__(
        self,
        app: App,
        allowed_hosts: frozenset[str] = frozenset(),
        max_body: int = MAX_BODY,
        body_seconds: float = BODY_SECONDS,
    ) -> None:
        self.app, self.max_body, self.body_seconds = app, max_body, body_seconds
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await _answer(send_with_headers, *refusal)
            return
        try:
            await self.app(scope, self._bounded(receive), send_with_headers)
        except BodyRefused as e:
            if started:
                raise
            await _answer(send_with_headers, e.status, e.message)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.allowed_hosts):
            return 400, (
                f"host {host_name(host)!r} is not this console's: allowed are its addresses, "
                "localhost and the names given with --allowed-host "
                "(docs/operators/console.md)"
            )
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Content-Length is not a number"
            if int(length) > self.max_body:
                return 413, f"request body over {self.max_body} bytes"
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype == b"multipart/form-data":
            return 415, "no page of the console takes a file: send the form urlencoded"
        return None

    def _bounded(self, receive: Receive) -> Receive:
        """`receive` counting the body's bytes against the bound, and the whole body
        within the deadline; once the body is complete, `receive` as it is (a stream
        listens on it for the browser leaving)."""
        deadline = time.monotonic() + self.body_seconds
        seen = 0
        done = False

        async def bounded() -> Message:
            nonlocal seen, done
            if done:
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(
                    408, f"request body not complete within {self.body_seconds:.0f} s"
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyRefused(413, f"request body over {self.max_body} bytes")
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        return bounded


async def _answer(send: Send, status: int, message: str) -> None:
    body = (message + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
