"""The console holds (issue 28): the login throttle counts an attempt before checking
it and counts networks as well as addresses; the server's records of sessions end them
at logout, at a password change and 12 hours after the login; the Host check; the body's
deadline is the whole body's."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from console.accounts import Account, Accounts
from console.auth import Gate, LoginThrottled, Throttle, network_of
from console.guard import Guard, host_allowed, host_name
from console.sessions import Sessions


def test_addresses_are_grouped_by_their_24_or_64() -> None:
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("127.0.0.12") == "127.0.0.0/24"
    assert network_of("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert network_of("::ffff:192.0.2.9") == "192.0.2.0/24"  # IPv4 as IPv6: IPv4
    assert network_of("not an address") == "not an address"


def test_twelve_addresses_of_one_network_get_ten_guesses_at_one_name() -> None:
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0])
    checked = 0
    for i in range(12):
        for _ in range(5):
            held, _, _ = throttle.claim("operator", f"127.0.0.{i + 2}")
            checked += held <= 0
    assert checked == 10
    held, whole, network = throttle.claim("operator", "127.0.0.40")
    assert held > 0 and not whole and network
    assert str(LoginThrottled(held, whole, network)) == (
        "too many failed logins for this user name from your network; try again in 300 s"
    )
    # Another network is not held back.
    assert throttle.claim("operator", "192.0.2.1")[0] == 0


def test_a_success_gives_back_what_its_attempt_counted() -> None:
    throttle = Throttle(clock=lambda: 1000.0)
    for _ in range(30):
        assert throttle.claim("ann", "10.0.0.1")[0] == 0
        throttle.claim_succeeded("ann", "10.0.0.1")
    # Thirty logins of ann are no failure of her address or network.
    assert throttle.hold("ann", "10.0.0.1") == (0.0, False, False)
    assert throttle.hold("bob", "10.0.0.2") == (0.0, False, False)
    throttle.failed("ann", "10.0.0.1")
    throttle.claim("ann", "10.0.0.1")
    throttle.claim_succeeded("ann", "10.0.0.1")
    assert len(throttle._addresses["10.0.0.1"]) == 1  # the failure before it stays


class SlowAccounts(Accounts):
    """An accounts file whose check takes a while, as Argon2 does: the guesses overlap."""

    def __init__(self) -> None:
        super().__init__({"operator": Account(name="operator", hash="$argon2id$x")})
        self.checks = 0
        self.lock = threading.Lock()

    def verify(self, name: str, password: str) -> Account | None:
        with self.lock:
            self.checks += 1
        time.sleep(0.2)
        return None


def test_thirty_parallel_guesses_get_five_checks() -> None:
    gate = Gate(None)
    accounts = SlowAccounts()
    gate.accounts = lambda: accounts  # type: ignore[method-assign]
    refused = []

    def guess() -> None:
        try:
            gate.login("operator", "guess", "192.0.2.1")
        except LoginThrottled:
            refused.append(1)

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert accounts.checks == 5 and len(refused) == 25


def test_a_session_ends_at_logout_at_a_new_password_and_twelve_hours_after_login(
    tmp_path: Path,
) -> None:
    now = [1_000_000.0]
    path = tmp_path / "console-sessions-8080.json"
    sessions = Sessions(path, clock=lambda: now[0])
    sid = sessions.open("Ann", "$argon2id$one")
    assert sessions.holds(sid, "ann", "$argon2id$one")
    assert sid not in path.read_text()  # the file keeps digests, never a usable id
    assert path.stat().st_mode & 0o077 == 0
    assert Sessions(path, clock=lambda: now[0]).holds(sid, "ann", "$argon2id$one")  # a restart
    assert not sessions.holds(sid, "bob", "$argon2id$one")  # another user's cookie

    now[0] += 11.9 * 3600  # busy all shift: the clicks do not extend it
    assert sessions.holds(sid, "ann", "$argon2id$one")
    now[0] += 0.2 * 3600
    assert not sessions.holds(sid, "ann", "$argon2id$one")

    other = sessions.open("ann", "$argon2id$one")
    assert not sessions.holds(other, "ann", "$argon2id$two")  # the password changed
    assert not sessions.holds(other, "ann", "$argon2id$one")  # and it stays ended
    third = sessions.open("ann", "$argon2id$one")
    sessions.end(third)
    assert not sessions.holds(third, "ann", "$argon2id$one")
    assert not Sessions(path).holds(third, "ann", "$argon2id$one")
    assert not sessions.holds("made-up", "ann", "$argon2id$one")
    assert not sessions.holds(None, "ann", "$argon2id$one")


def test_a_sessions_file_that_cannot_be_read_holds_no_session(tmp_path: Path) -> None:
    path = tmp_path / "console-sessions-8080.json"
    path.write_text("{not json")
    assert len(Sessions(path)) == 0


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST.", True),
        ("10.1.2.3", True),
        ("amsm.facility.example:443", True),
        ("rebound.attacker.example:8080", False),
        ("", False),
        ("localhost.attacker.example", False),
    ],
)
def test_the_console_answers_to_its_addresses_localhost_and_allowed_names(
    header: str, ok: bool
) -> None:
    assert host_allowed(header, frozenset({"amsm.facility.example"})) is ok


def test_a_host_name_is_read_without_its_port() -> None:
    assert host_name("[::1]:8080") == "::1"
    assert host_name("Example.Org:80") == "example.org"
    assert host_name("example.org") == "example.org"


async def test_a_body_trickling_a_byte_at_a_time_is_answered_408_at_the_deadline() -> None:
    """The deadline is the whole body's, not between its bytes: a byte every 0.1 s, and
    the Guard answers 408 at its deadline (1 s here) before the page has it whole."""
    read: list[bytes] = []

    async def page(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            read.append(message["body"])
            assert message["more_body"], "the page read the body whole"

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.1)
        return {"type": "http.request", "body": b"x", "more_body": True}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"host", b"127.0.0.1"), (b"content-length", b"1000")]}
    started = time.monotonic()
    await asyncio.wait_for(Guard(page, body_seconds=1.0)(scope, trickle, send), 5)
    assert 1.0 <= time.monotonic() - started < 3.0
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    assert sent[1]["body"] == b"request body not complete within 1 s\n"
    assert len(read) >= 3, read  # bytes kept coming; the deadline held
