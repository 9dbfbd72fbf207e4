"""Who is at the console (console/auth.py): a front proxy's user header, believed only
from the proxy; failed logins throttled per user name."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from console.auth import ProxyTrust, Throttle, parse_networks


def request(peer: str, headers: dict[str, str]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": (peer, 50000),
        }
    )


def test_the_header_counts_only_from_a_trusted_address() -> None:
    trust = ProxyTrust("X-Remote-User", parse_networks("10.0.0.5, 192.168.7.0/24"))
    assert trust.user(request("10.0.0.5", {"X-Remote-User": "ann"})) == "ann"
    assert trust.user(request("192.168.7.40", {"X-Remote-User": " bob "})) == "bob"
    assert trust.user(request("10.0.0.6", {"X-Remote-User": "ann"})) is None
    assert trust.user(request("10.0.0.5", {"X-Forwarded-For": "10.0.0.5"})) is None
    assert trust.user(request("10.0.0.5", {"X-Remote-User": ""})) is None
    assert trust.user(request("not-an-address", {"X-Remote-User": "ann"})) is None


def test_bad_networks_are_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0.300' is not an address"):
        parse_networks("10.0.0.1,10.0.0.300")
    with pytest.raises(ValueError, match="no address"):
        parse_networks(" , ")


def test_failed_logins_for_a_name_are_throttled_then_forgiven() -> None:
    now = [1000.0]
    throttle = Throttle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("Ann") == 0
        throttle.failed("ann")
    assert throttle.wait("ANN") == 60  # the name, however it is typed
    assert throttle.wait("bob") == 0  # another name is not held up
    now[0] += 45
    assert throttle.wait("ann") == 15
    now[0] += 15
    assert throttle.wait("ann") == 0  # the oldest failure left the window
    throttle.failed("ann")
    throttle.succeeded("ann")
    assert throttle.wait("ann") == 0
