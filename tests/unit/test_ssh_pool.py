"""The SSH driver's pool of connections: two commands that connect to one host at once
keep each other's connection open (the second is closed after its own command)."""

from __future__ import annotations

from typing import Any

from activities.drivers.ssh import _Connections


class Conn:
    """Only what the pool asks of a connection (pure logic: no network)."""

    def __init__(self) -> None:
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


KEY = ("127.0.0.1", 22, "admin", "keys/id")


async def test_a_second_connection_to_a_host_does_not_close_the_first() -> None:
    pool = _Connections()
    first, second = Conn(), Conn()
    assert pool.put(KEY, first) is True  # type: ignore[arg-type]
    # A command still runs on `first` (the watch's) when the check's own connect ends.
    assert pool.put(KEY, second) is False  # type: ignore[arg-type]
    assert not first.closed and not second.closed
    got: Any = pool.get(KEY)
    assert got is first
    # A closed connection in the pool is replaced.
    first.closed = True
    assert pool.put(KEY, second) is True  # type: ignore[arg-type]
    assert pool.get(KEY) is second
