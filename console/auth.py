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
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from console.accounts import Account, Accounts, AccountsError, Role, load_accounts, role_on
from inventory.models import Inventory

CSRF_FIELD = "csrf"


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


class Gate:
    """Decides who a request comes from, and what they may do on each pair."""

    def __init__(self, accounts_path: str | None, proxy: ProxyTrust | None = None) -> None:
        self.accounts_path = accounts_path
        self.proxy = proxy
        self._accounts: Accounts | None = None
        self._mtime = -1.0
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
        try:
            return self.accounts().verify(name, password)
        except (AccountsError, OSError):
            return None

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
