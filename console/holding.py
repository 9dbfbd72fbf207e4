"""How the console's server holds its connections (uvicorn's options, and its HTTP/1.1
protocol with a deadline for a request's headers), so that clients sending requests a
byte at a time, or never finishing them, cannot take the console's open files
(docs/operators/console.md "How the console holds").

uvicorn bounds the time a kept-alive connection waits for its next request
(timeout_keep_alive), but not the time a request's headers take once their first byte
came, nor a new connection that sends nothing: HeldH11Protocol closes a connection
whose request headers are not complete within HEADER_SECONDS of its opening or of the
previous answer. The body's deadline and bound are console/guard.py's."""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
# Open files the console keeps for itself (its Temporal connection, the accounts file,
# templates, logs); the rest of its limit is for connections.
OWN_FILES = 64
MAX_CONNECTIONS = 1000


def connection_limit() -> int:
    """Connections held at once: at most MAX_CONNECTIONS, and never so many that the
    console runs out of open files (RLIMIT_NOFILE less OWN_FILES)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft - OWN_FILES))


class HeldH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on a request's headers, and new
    connections closed at once over the connection limit."""

    limit = MAX_CONNECTIONS
    _headers_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limit:
            transport.abort()  # over the limit: refused before it holds anything
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers came whole
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # the next request's headers are due in time too (kept alive)
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._headers_due = self.loop.call_later(HEADER_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _too_slow(self) -> None:
        self._headers_due = None
        if not self.transport.is_closing():
            self.transport.abort()


def hold_options() -> dict[str, Any]:
    """uvicorn.Config's options of console/main.py."""
    HeldH11Protocol.limit = connection_limit()
    return {
        "http": HeldH11Protocol,
        "timeout_keep_alive": 5,  # an idle kept-alive connection, seconds
        # Requests served at once (uvicorn answers 503 over it); below the connection
        # limit, so that a flood of requests is answered rather than dropped.
        "limit_concurrency": HeldH11Protocol.limit,
        # The most of one request's start line and headers held before they end.
        "h11_max_incomplete_event_size": 16 * 1024,
        "backlog": 128,
    }
