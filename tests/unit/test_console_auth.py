"""Who is at the console (console/auth.py): a front proxy's user header and its
X-Forwarded-For, believed only from the proxy; failed logins throttled per user name and
address, and per address."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from console.accounts import write_accounts
from console.auth import Gate, LoginThrottled, ProxyTrust, Throttle, parse_networks


def request(peer: str, headers: dict[str, str] | list[tuple[str, str]]) -> Request:
    pairs = headers.items() if isinstance(headers, dict) else headers
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in pairs],
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


def test_without_a_header_only_the_forwarded_address_is_believed() -> None:
    trust = ProxyTrust(None, parse_networks("10.0.0.5"))
    assert trust.user(request("10.0.0.5", {"X-Remote-User": "ann"})) is None
    assert trust.client_address(request("10.0.0.5", {"X-Forwarded-For": A})) == A


def test_the_login_address_is_the_rightmost_forwarded_one_not_a_proxy() -> None:
    trust = ProxyTrust("X-Remote-User", parse_networks("10.0.0.5, 192.168.7.0/24"))

    def address(peer: str, *xff: str) -> str:
        return trust.client_address(request(peer, [("X-Forwarded-For", f) for f in xff]))

    assert address("10.0.0.5", A) == A
    # What a client writes itself is to the left of what the proxy appended.
    assert address("10.0.0.5", f"{B}, {A}") == A
    # Proxies in front of the proxy are passed over, across several fields too.
    assert address("10.0.0.5", f"{B}, {A}", "192.168.7.3") == A
    assert address("10.0.0.5", f"{A}:51234") == A
    assert address("10.0.0.5", "[2001:DB8::1]:443") == "2001:db8::1"
    # Nothing usable: the proxy's own address, as before.
    assert address("10.0.0.5") == "10.0.0.5"
    assert address("10.0.0.5", "192.168.7.3") == "10.0.0.5"
    assert address("10.0.0.5", f"{B}, unknown") == "10.0.0.5"
    assert address("10.0.0.5", "") == "10.0.0.5"
    # From anyone else the header is not read at all.
    assert address(B, A) == B
    assert address("10.0.0.6", A) == "10.0.0.6"


def test_strangers_behind_a_trusted_proxy_do_not_lock_each_other_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    accounts = tmp_path / "console-accounts.yaml"
    write_accounts(accounts, {"operator": ("correct horse battery", "operator")})
    gate = Gate(str(accounts), ProxyTrust(None, parse_networks("10.0.0.5")))
    stranger = request("10.0.0.5", {"X-Forwarded-For": f"{A}, {B}"})
    for n in range(30):
        try:
            gate.login(f"guess{n}", "wrong", gate.address(stranger))
        except LoginThrottled as e:
            assert e.whole_address and n == 20
            break
    operator = request("10.0.0.5", {"X-Forwarded-For": A})
    assert gate.address(stranger) == B and gate.address(operator) == A
    account = gate.login("operator", "correct horse battery", gate.address(operator))
    assert account is not None and account.name == "operator"
    # Without --trusted-proxy, everyone behind the proxy is the proxy.
    plain = Gate(str(accounts))
    assert plain.address(stranger) == plain.address(operator) == "10.0.0.5"


def test_bad_networks_are_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0.300' is not an address"):
        parse_networks("10.0.0.1,10.0.0.300")
    with pytest.raises(ValueError, match="no address"):
        parse_networks(" , ")


A, B = "192.0.2.1", "198.51.100.7"


def test_failed_logins_for_a_name_from_an_address_are_throttled_then_forgiven() -> None:
    now = [1000.0]
    throttle = Throttle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("Ann", A) == (0, False)
        throttle.failed("ann", A)
    assert throttle.wait("ANN", A) == (60, False)  # the name, however it is typed
    assert throttle.wait(" ann ", A) == (60, False)  # as the accounts file finds it
    assert throttle.wait("bob", A) == (0, False)  # another name is not held up
    now[0] += 45
    assert throttle.wait("ann", A) == (15, False)
    now[0] += 15
    assert throttle.wait("ann", A) == (0, False)  # the oldest failure left the window
    throttle.failed("ann", A)
    throttle.succeeded("ann", A)
    assert throttle.wait("ann", A) == (0, False)


def test_a_name_held_back_at_one_address_still_logs_in_from_another() -> None:
    now = [1000.0]
    throttle = Throttle(limit=5, window=300, clock=lambda: now[0])
    for _ in range(5):
        throttle.failed("operator", A)  # a stranger guessing at A
    assert throttle.wait("operator", A) == (300, False)
    assert throttle.wait("operator", B) == (0, False)  # the operator at B is not locked out
    throttle.failed("operator", B)
    throttle.succeeded("operator", B)  # the operator's success clears B's entry only
    assert throttle.wait("operator", A) == (300, False)
    assert throttle.tracked() == (1, 2)


def test_one_address_cannot_spray_many_names() -> None:
    now = [1000.0]
    throttle = Throttle(limit=5, window=300, address_limit=20, clock=lambda: now[0])
    for i in range(20):
        assert throttle.wait(f"user{i}", A) == (0, False)
        throttle.failed(f"user{i}", A)
        now[0] += 1
    assert throttle.wait("someone-else", A) == (280, True)  # the whole address, any name
    assert throttle.wait("someone-else", B) == (0, False)
    throttle.succeeded("user19", A)  # a success does not clear the address's total
    assert throttle.wait("user19", A)[1] is True
    now[0] = 1300
    assert throttle.wait("user0", A) == (0, False)  # the first failure left the window


def test_the_refusals_say_what_is_held_back_and_for_how_long() -> None:
    assert str(LoginThrottled(286.6)) == (
        "too many failed logins for this user name from your address; try again in 287 s"
    )
    assert str(LoginThrottled(12.0, whole_address=True)) == (
        "too many failed logins from your address; try again in 12 s"
    )


def test_the_throttle_forgets_old_failures_and_keeps_a_bounded_number_of_keys() -> None:
    now = [1000.0]
    throttle = Throttle(limit=5, window=60, max_keys=100, clock=lambda: now[0])
    for i in range(50):
        throttle.failed("ann", f"10.0.0.{i}")
    assert throttle.tracked() == (50, 50)
    now[0] += 61
    throttle.wait("ann", A)  # a look prunes what left the window
    assert throttle.tracked() == (0, 0)
    for i in range(250):  # each from a network of its own (a /24 counts its addresses)
        throttle.failed(f"user{i}", f"10.{i // 200}.{i % 200}.1")
        now[0] += 0.01
    assert throttle.tracked() == (100, 100)  # the least recently failed were dropped
    throttle.failed("user249", "10.1.49.1")
    assert throttle.wait("user249", "10.1.49.1") == (0, False)  # 2 of 5
    assert throttle.wait("user0", "10.0.0.1") == (0, False)  # dropped, forgotten


def test_the_gate_counts_failures_per_name_and_address(tmp_path) -> None:  # type: ignore[no-untyped-def]
    accounts = tmp_path / "console-accounts.yaml"
    write_accounts(accounts, {"operator": ("correct horse battery", "operator")})
    gate = Gate(str(accounts))
    for _ in range(5):
        assert gate.login("operator", "wrong", A) is None
    with pytest.raises(LoginThrottled, match="for this user name from your address"):
        gate.login("operator", "correct horse battery", A)
    account = gate.login("operator", "correct horse battery", B)
    assert account is not None and account.name == "operator"
