"""Who is at the console: the login (an account of the accounts file, or a trusted
front proxy's user header when one is configured), the session it opens and the CSRF
token every form carries.

The session's cookie is signed (Starlette's SessionMiddleware: itsdangerous, HttpOnly,
SameSite=strict, Secure and `__Host-` when the console serves TLS); it holds the user's
name, the id of the server's record of the session (console/sessions.py) and the form
token, nothing else. Each request looks the account and the record up again, so an
account removed from the file, a changed password, a logout or the 12 hours since the
login end the session at its next click.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

from api.refusal import Refused
from console.accounts import Account, Accounts, AccountsError, Role, load_accounts, role_on
from console.directory import Directory, DirectoryRefused, DirectorySessions
from console.sessions import Sessions
from inventory.models import Inventory

CSRF_FIELD = "csrf"
SESSION_ID = "sid"  # the cookie's key of the server's record (console/sessions.py)
VIA = "via"  # where the login was checked: "local" (the accounts file) or "directory"


class LoginThrottled(Exception):
    def __init__(self, wait: float, whole_address: bool = False, network: bool = False) -> None:
        what = "" if whole_address else " for this user name"
        where = "network" if network else "address"
        super().__init__(
            f"too many failed logins{what} from your {where}; try again in {wait:.0f} s"
        )
        self.wait = wait
        self.whole_address = whole_address
        self.network = network


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


def network_of(address: str) -> str:
    """The network an address is counted in besides itself: its /24 (IPv4) or /64 (IPv6,
    an IPv4-mapped one as IPv4), as a person near one address has the rest of it too
    (a /64 is one IPv6 subnet, RFC 4291 2.5.4; 127.0.0.0/8 is all one host's)."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if isinstance(addr, ipaddress.IPv4Address) else 64
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


class Throttle:
    """Failed logins held back per user name and client address: after `limit` failures
    for one name from one address within `window` seconds, that name is refused from that
    address (the operator at another one still logs in) until the oldest of them leaves
    the window; after `address_limit` failures from one address across all names, that
    address is refused (no spraying of names). The same again per network (network_of:
    a /24 or /64), with `network_limit` per name and `network_address_limit` across
    names, so that the many addresses of one network do not multiply the guesses. Kept
    in memory, pruned as failures leave the window, and at most `max_keys` of each kind
    (the least recently failed go).

    `claim` checks and counts an attempt at once, under a lock, before the password is
    checked: of many guesses sent together, only `limit` are ever checked."""

    def __init__(
        self,
        limit: int = 5,
        window: float = 300.0,
        address_limit: int = 20,
        max_keys: int = 10_000,
        clock: Any = time.monotonic,
        network_limit: int = 10,
        network_address_limit: int = 40,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.address_limit, self.max_keys = address_limit, max_keys
        self.network_limit, self.network_address_limit = network_limit, network_address_limit
        self._lock = threading.Lock()  # logins are checked in threads (argon2)
        # The last failures of each key, least recently failed key first.
        self._names: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._addresses: OrderedDict[str, deque[float]] = OrderedDict()
        self._net_names: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._networks: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def _name(name: str) -> str:
        # As the accounts file finds it; no account name is longer than 128 characters.
        return name.strip().lower()[:129]

    def _tables(
        self, name: str, address: str
    ) -> list[tuple[OrderedDict[Any, deque[float]], Any, int]]:
        n, net = self._name(name), network_of(address)
        return [
            (self._names, (n, address), self.limit),
            (self._addresses, address, self.address_limit),
            (self._net_names, (n, net), self.network_limit),
            (self._networks, net, self.network_address_limit),
        ]

    def hold(self, name: str, address: str) -> tuple[float, bool, bool]:
        """Seconds until `name` may try again from `address` (0: now), whether all names
        are held back, and whether it is the address's network that is."""
        now = self.clock()
        self._prune(now)
        tables = self._tables(name, address)
        # The whole address or network first: its refusal says more.
        for i in (1, 3, 0, 2):
            table, key, limit = tables[i]
            held = self._held(table.get(key), limit, now)
            if held > 0:
                return held, i in (1, 3), i >= 2
        return 0.0, False, False

    def wait(self, name: str, address: str) -> tuple[float, bool]:
        """Seconds until `name` may try again from `address` (0: now), and whether it is
        all names that are held back."""
        held, whole, _ = self.hold(name, address)
        return held, whole

    def claim(self, name: str, address: str) -> tuple[float, bool, bool]:
        """As `hold`; when nothing is held back, the attempt is counted as a failure at
        once (`succeeded` takes it back), checked and counted under one lock."""
        with self._lock:
            held = self.hold(name, address)
            if held[0] <= 0:
                self._failed(name, address)
            return held

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            self._failed(name, address)

    def _failed(self, name: str, address: str) -> None:
        now = self.clock()
        for table, key, limit in self._tables(name, address):
            self._record(table, key, limit, now)
        self._prune(now)

    def succeeded(self, name: str, address: str) -> None:
        """Forget that name's failures from that address (not the address's total)."""
        with self._lock:
            self._names.pop((self._name(name), address), None)

    def claim_succeeded(self, name: str, address: str) -> None:
        """As `succeeded`, after a `claim`: the attempt it counted is taken back from the
        totals (the address's and the network's), the failures before it are not."""
        with self._lock:
            tables = self._tables(name, address)
            self._names.pop(tables[0][1], None)
            for table, key, _ in tables[1:]:
                times = table.get(key)
                if times:
                    times.pop()

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
        for table in (self._names, self._addresses, self._net_names, self._networks):
            while table and (
                len(table) > self.max_keys
                or not next(iter(table.values()))
                or now - next(iter(table.values()))[-1] >= self.window
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
        self.sessions = Sessions()  # the server's records of them (console/sessions.py)
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
        # Checked and counted as a failure at once (Throttle.claim), before the password is.
        wait, whole_address, network = self.throttle.claim(name, address)
        if wait > 0:
            raise LoginThrottled(wait, whole_address, network)
        try:
            account = self.accounts().verify(name, password)
        except (AccountsError, OSError):
            account = None
        if account is None and self.directory is not None:
            # A local account stays the break-glass: the directory is asked only after
            # it. DirectoryRefused (DirectoryDown too): the person in no mapped group, or
            # the directory unreachable: not a wrong guess, its count given back.
            try:
                account = self.held.login(name, password)
            except DirectoryRefused:
                self.throttle.claim_succeeded(name, address)
                raise
        if account is not None:
            self.throttle.claim_succeeded(name, address)
        return account

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
        name = request.session.get("user")
        if not name:
            return None
        sid = request.session.get(SESSION_ID)
        if request.session.get(VIA) == "directory":
            # Only the directory's word: never the local account of the same name (a
            # break-glass account is not anyone's whose directory name matches it).
            found = self.held.account(str(name), acting=request.method == "POST")
            if found is None or not self.sessions.holds(sid, found.name, found.hash):
                return None
            return found
        try:
            found = self.accounts().find(str(name))
        except (AccountsError, OSError):
            return None
        if found is None:
            self.sessions.end(sid)  # the account was removed: added again, it logs in again
            return None
        if not self.sessions.holds(sid, found.name, found.hash):
            return None  # logged out, expired, or the password changed since the login
        return found

    async def recheck(self, request: Request) -> None:
        """Before a session acts: a directory login's groups read again when `recheck`
        has passed (DirectorySessions.recheck); a Refused ends the session."""
        name = request.session.get("user")
        if not name or request.session.get(VIA) != "directory":
            return
        if self.proxy is not None and self.proxy.user(request):
            return
        try:
            await self.held.recheck(str(name))
        except Refused as e:
            if e.kind == "login":
                self.end_session(request)
            raise

    def open_session(self, request: Request, account: Account) -> None:
        """A new session for `account` (no fixation: nothing of the one before is kept)."""
        self.sessions.end(request.session.get(SESSION_ID))
        request.session.clear()
        request.session["user"] = account.name
        # Where the login was checked: a local account always has its password's hash,
        # a directory login never (the console keeps no password of the directory's).
        request.session[VIA] = "local" if account.hash else "directory"
        request.session[SESSION_ID] = self.sessions.open(account.name, account.hash)

    def end_session(self, request: Request) -> None:
        self.sessions.end(request.session.get(SESSION_ID))
        request.session.clear()

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
