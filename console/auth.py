"""Who is at the console: the login (an account of the accounts file, or a trusted
front proxy's user header when one is configured), the session it opens and the CSRF
token every form carries.

The session lives in a signed cookie (Starlette's SessionMiddleware: itsdangerous,
HttpOnly, SameSite=strict, Secure when the console serves TLS); it holds the user's
name, where it logged in ("via": the accounts file, "local", or the directory,
"directory") and the form token, nothing else. Each request looks the account up again
where it logged in, and only there (a directory person named like a local account never
becomes that account), so an account removed from the file is out at its next click.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

from api.refusal import Refused
from console.accounts import Account, Accounts, AccountsError, Role, load_accounts, role_on
from console.directory import Directory, DirectorySessions
from inventory.models import Inventory

CSRF_FIELD = "csrf"


class LoginThrottled(Exception):
    def __init__(self, wait: float, whole_address: bool = False) -> None:
        what = "" if whole_address else " for this user name"
        super().__init__(
            f"too many failed logins{what} from your address; try again in {wait:.0f} s"
        )
        self.wait = wait
        self.whole_address = whole_address


@dataclass(frozen=True)
class ProxyTrust:
    """What is believed of requests whose peer is one of `networks` (the front proxies):
    the user from `header` when one is configured, and the client's address from
    `X-Forwarded-For`."""

    header: str | None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def _trusted(self, address: str) -> bool:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(addr in n for n in self.networks)

    def user(self, request: Request) -> str | None:
        if self.header is None or not self._trusted(peer_of(request)):
            return None
        name = (request.headers.get(self.header) or "").strip()
        return name or None

    def client_address(self, request: Request) -> str:
        """The address a login is counted under: the peer's, or, from a trusted proxy, the
        rightmost `X-Forwarded-For` entry that is not a trusted proxy itself. Entries are
        appended by each proxy (nginx `$proxy_add_x_forwarded_for`), so only those right
        of the first untrusted one were written by proxies; whatever a client put there
        sits to its left and is never read (MDN, X-Forwarded-For: "Selecting an IP
        address", the rightmost-trusted method)."""
        peer = peer_of(request)
        if not self._trusted(peer):
            return peer
        # Every X-Forwarded-For field, in order: several are one comma-separated list
        # (RFC 9110 5.3).
        entries = [
            e.strip()
            for field in request.headers.getlist("x-forwarded-for")
            for e in field.split(",")
        ]
        for entry in reversed(entries):
            address = _bare_address(entry)
            if address is None:
                # Not an address (a proxy's "unknown", garbage): nothing left of it can
                # be told from a client's own words; count it as the proxy's.
                return peer
            if not self._trusted(address):
                return address
        return peer  # none, or every entry a trusted proxy: the proxy's own


def peer_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _bare_address(entry: str) -> str | None:
    """`entry` as an address without a port ("192.0.2.1:4711", "[2001:db8::1]:80"), in its
    canonical form; None when it is none."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class Throttle:
    """Failed logins held back per user name and client address: after `limit` failures
    for one name from one address within `window` seconds, that name is refused from that
    address (the operator at another one still logs in) until the oldest of them leaves
    the window; after `address_limit` failures from one address across all names, that
    address is refused (no spraying of names). Kept in memory, pruned as failures leave
    the window, and at most `max_keys` of each kind (the least recently failed go)."""

    def __init__(
        self,
        limit: int = 5,
        window: float = 300.0,
        address_limit: int = 20,
        max_keys: int = 10_000,
        clock: Any = time.monotonic,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.address_limit, self.max_keys = address_limit, max_keys
        # The last failures of each key, least recently failed key first.
        self._names: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._addresses: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def _name(name: str) -> str:
        # As the accounts file finds it; no account name is longer than 128 characters.
        return name.strip().lower()[:129]

    def wait(self, name: str, address: str) -> tuple[float, bool]:
        """Seconds until `name` may try again from `address` (0: now), and whether it is
        the whole address that is held back."""
        now = self.clock()
        self._prune(now)
        by_address = self._held(self._addresses.get(address), self.address_limit, now)
        if by_address > 0:
            return by_address, True
        return self._held(self._names.get((self._name(name), address)), self.limit, now), False

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        self._record(self._names, (self._name(name), address), self.limit, now)
        self._record(self._addresses, address, self.address_limit, now)
        self._prune(now)

    def succeeded(self, name: str, address: str) -> None:
        """Forget that name's failures from that address (not the address's total)."""
        self._names.pop((self._name(name), address), None)

    def tracked(self) -> tuple[int, int]:
        """How many (name, address) and address entries are kept."""
        return len(self._names), len(self._addresses)

    def _held(self, times: deque[float] | None, limit: int, now: float) -> float:
        if times is None or len(times) < limit or now - times[0] >= self.window:
            return 0.0
        return self.window - (now - times[0])

    @staticmethod
    def _record(table: OrderedDict[Any, deque[float]], key: Any, limit: int, now: float) -> None:
        times = table.pop(key, None) or deque(maxlen=limit)  # only the last `limit` count
        times.append(now)
        table[key] = times  # last: the most recently failed

    def _prune(self, now: float) -> None:
        for table in (self._names, self._addresses):
            while table and (
                len(table) > self.max_keys or now - next(iter(table.values()))[-1] >= self.window
            ):
                table.popitem(last=False)


class Gate:
    """Decides who a request comes from, and what they may do on each pair."""

    def __init__(
        self,
        accounts_path: str | None,
        proxy: ProxyTrust | None = None,
        directory: Directory | None = None,
    ) -> None:
        self.accounts_path = accounts_path
        self.proxy = proxy
        self.directory = directory
        # Who logged in through the directory, by name: their DN, role and when their
        # groups were last read (monotonic). Kept in memory only: a restart of the
        # console logs them in again; a removal from the groups ends every session of
        # theirs (DirectorySessions).
        self.held = DirectorySessions(directory)
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

    def login(self, name: str, password: str, address: str) -> Account | None:
        """The account, or None; LoginThrottled after too many failures for the name from
        `address` (Gate.address), or from it."""
        wait, whole_address = self.throttle.wait(name, address)
        if wait > 0:
            raise LoginThrottled(wait, whole_address)
        try:
            account = self.accounts().verify(name, password)
        except (AccountsError, OSError):
            account = None
        if account is None and self.directory is not None:
            # A local account stays the break-glass: the directory is asked only after
            # it (DirectoryRefused, DirectoryDown: the person in no mapped group, or the
            # directory unreachable: not counted as a guess).
            account = self.held.login(name, password)
        if account is None:
            self.throttle.failed(name, address)
        else:
            self.throttle.succeeded(name, address)
        return account

    @staticmethod
    def session_for(account: Account) -> dict[str, str]:
        """What a login's session holds of it: the name and where it logged in. A local
        account always carries its Argon2 hash (load_accounts requires one), a directory
        login never does (DirectorySessions.login)."""
        return {"user": account.name, "via": "local" if account.hash else "directory"}

    def address(self, request: Request) -> str:
        """The client address failed logins are counted under (ProxyTrust.client_address)."""
        return self.proxy.client_address(request) if self.proxy else peer_of(request)

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
        name, via = request.session.get("user"), request.session.get("via")
        if not name:
            return None
        if via == "directory":
            return self.held.account(str(name), acting=request.method == "POST")
        if via != "local":
            return None  # a session that does not say where it logged in: none
        try:
            return self.accounts().find(str(name))
        except (AccountsError, OSError):
            return None

    async def recheck(self, request: Request) -> None:
        """Before a session acts: a directory login's groups read again when `recheck`
        has passed (DirectorySessions.recheck); a Refused ends the session."""
        name = request.session.get("user")
        if not name or self.proxy is not None and self.proxy.user(request):
            return
        if request.session.get("via") != "directory":
            return  # a local account (Gate.user refuses a session of neither)
        try:
            await self.held.recheck(str(name))
        except Refused as e:
            if e.kind == "login":
                request.session.clear()
            raise

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
