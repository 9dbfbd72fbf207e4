"""Who is at the console: the login (an account of the accounts file, or a trusted
front proxy's user header when one is configured), the session it opens and the CSRF
token every form carries.

The session lives in a signed cookie (Starlette's SessionMiddleware: itsdangerous,
HttpOnly, SameSite=strict, Secure when the console serves TLS); it holds the user's
name and the form token, nothing else. Each request looks the account up again, so an
account removed from the file is out at its next click.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

from console.accounts import Account, Accounts, AccountsError, Role, load_accounts, role_on
from inventory.models import Inventory

CSRF_FIELD = "csrf"


class LoginThrottled(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"too many failed logins for this user name; try again in {wait:.0f} s")
        self.wait = wait


@dataclass(frozen=True)
class ProxyTrust:
    """Take the user from `header` of requests coming from `networks` only."""

    header: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def user(self, request: Request) -> str | None:
        peer = request.client.host if request.client else ""
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return None
        if not any(addr in n for n in self.networks):
            return None
        name = (request.headers.get(self.header) or "").strip()
        return name or None


class Throttle:
    """At most `limit` failed logins per user name in `window` seconds; then that name is
    refused until the oldest failure leaves the window (whoever types it: a guesser
    cannot keep trying, and the person is told how long to wait)."""

    def __init__(self, limit: int = 5, window: float = 300.0, clock: Any = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, list[float]] = {}

    def wait(self, name: str) -> float:
        """Seconds until `name` may try again (0: now)."""
        now = self.clock()
        recent = [t for t in self._failures.get(name.lower(), []) if now - t < self.window]
        self._failures[name.lower()] = recent
        return 0.0 if len(recent) < self.limit else self.window - (now - recent[0])

    def failed(self, name: str) -> None:
        self._failures.setdefault(name.lower(), []).append(self.clock())

    def succeeded(self, name: str) -> None:
        self._failures.pop(name.lower(), None)


class Gate:
    """Decides who a request comes from, and what they may do on each pair."""

    def __init__(self, accounts_path: str | None, proxy: ProxyTrust | None = None) -> None:
        self.accounts_path = accounts_path
        self.proxy = proxy
        self._accounts: Accounts | None = None
        self._mtime = -1.0
        self.throttle = Throttle()
        if accounts_path:
            self.accounts()  # a bad file is said at start, not at the first login

    def accounts(self) -> Accounts:
        """The accounts file, read again when it changed (a facility edits it live)."""
        if not self.accounts_path:
            return Accounts({})
        try:
            mtime = Path(self.accounts_path).stat().st_mtime
        except OSError as e:
            raise AccountsError(
                f"console accounts file {self.accounts_path}: cannot read it "
                f"({e.strerror or e}); pass --accounts FILE (`amsm lab init` writes "
                "DIR/secrets/console-accounts.yaml)"
            ) from None
        if self._accounts is None or mtime != self._mtime:
            self._accounts = load_accounts(self.accounts_path)
            self._mtime = mtime
        return self._accounts

    def login(self, name: str, password: str) -> Account | None:
        """The account, or None; LoginThrottled after too many failures for the name."""
        wait = self.throttle.wait(name)
        if wait > 0:
            raise LoginThrottled(wait)
        try:
            account = self.accounts().verify(name, password)
        except (AccountsError, OSError):
            account = None
        if account is None:
            self.throttle.failed(name)
        else:
            self.throttle.succeeded(name)
        return account

    def user(self, request: Request) -> Account | None:
        """The logged-in account of this request, or None."""
        if self.proxy is not None:
            name = self.proxy.user(request)
            if name:
                # An account of the file keeps its cap (role: viewer); others are the name.
                try:
                    known = self.accounts().find(name)
                except (AccountsError, OSError):
                    known = None
                return known or Account(name=name, hash="")
        name = request.session.get("user")
        if not name:
            return None
        try:
            found = self.accounts().find(str(name))
        except (AccountsError, OSError):
            return None
        return found

    @staticmethod
    def role(account: Account, inv: Inventory) -> Role | None:
        return role_on(account, inv.operators, inv.viewers)


def csrf_token(request: Request) -> str:
    """The session's form token (made on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return str(token)


def csrf_ok(request: Request, sent: object) -> bool:
    want = request.session.get(CSRF_FIELD)
    return bool(want) and isinstance(sent, str) and hmac.compare_digest(str(want), sent)


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """'127.0.0.1, 10.0.0.0/8' as networks; ValueError names the bad one."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an address or network") from None
    if not out:
        raise ValueError("no address given")
    return tuple(out)
