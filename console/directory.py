"""Directory login for the console (docs/site/directory-login.md): a person logs in with
their directory password, the console binds to the directory as them (over TLS: ldaps://
or StartTLS, the server's certificate checked against `ca_file`), reads the groups they
are in, nested groups too, and maps those the inventory names (`console.ldap.groups`) to
a role. Their groups are read again, with the search account, when they act after
`recheck`.

The library is python-ldap (over OpenLDAP's libldap, the client the directory's own
tools use; maintained, with StartTLS and a CA file per connection). Its calls block: the
console calls these in a thread (asyncio.to_thread).

Nested groups:
- Active Directory answers in one search with the matching rule
  LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941), which "walks the chain of
  ancestry in objects all the way to the root until it finds a match" (Microsoft Learn,
  "Search Filter Syntax"): `(member:1.2.840.113556.1.4.1941:=<user DN>)`.
- OpenLDAP has no such rule: its groups (groupOfNames, RFC 4519 `member`) are searched
  level by level, the groups whose `member` is the person, then the groups whose `member`
  is one of those, at most NESTING_DEPTH levels (no memberOf overlay is needed on the
  server).
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.refusal import Refused
from console.accounts import Account, Role
from inventory.load import resolve_path
from inventory.models import SAFE_NAME_RE, ConsoleLdap, Inventory

# libldap reads ldap.conf, ~/.ldaprc, ./ldaprc and LDAP* variables at its first call
# (ldap.conf(5)): a TLS_CACERTDIR there could add trust anchors beside ca_file, a URI or
# TLS_REQCERT change what a connection is. LDAPNOINIT makes it read none of them
# (ldap.conf(5), ENVIRONMENT; python-ldap's own tests set it); every option the console
# needs it sets itself (Directory._connect). Set before python-ldap is first imported.
os.environ["LDAPNOINIT"] = "1"

TIMEOUT = 5.0  # seconds to connect, and for each operation, before the directory is "down"
NESTING_DEPTH = 8  # levels of groups in groups read on OpenLDAP
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (Microsoft Learn)
BIT_AND = "1.2.840.113556.1.4.803"  # LDAP_MATCHING_RULE_BIT_AND (Microsoft Learn)
DOCS = "docs/site/directory-login.md"


class DirectoryError(Exception):
    """`console.ldap` cannot be used (a file missing or open to others): said at start."""


class DirectoryRefused(Exception):
    """A login the directory answered but the console refuses (the person is in no
    group the inventory maps), or could not ask (the directory unreachable)."""


class DirectoryDown(DirectoryRefused):
    pass


@dataclass(frozen=True)
class DirectoryUser:
    name: str  # as the inventory and the histories know them: the login, in lower case
    dn: str
    role: Role


class Directory:
    """One directory, as `console.ldap` describes it; `where` is the inventory file its
    paths are relative to."""

    def __init__(self, settings: ConsoleLdap, where: str | Path) -> None:
        import ldap  # noqa: F401 (said at start, not at the first login)

        self.settings = settings
        self.ca_file = _readable(resolve_path(where, settings.ca_file), "ca_file", secret=False)
        self.password_file = (
            _readable(resolve_path(where, settings.search.password_file), "search.password_file")
            if settings.search
            else None
        )
        self.recheck = settings.recheck
        if settings.server == "openldap":
            outside = [g for g in settings.groups if not _under(g, settings.base_dn)]
            if outside:
                # OpenLDAP's groups are searched under base_dn only: one outside it would
                # never give a role, silently.
                raise DirectoryError(
                    f"console.ldap.groups: {', '.join(outside)} not under base_dn "
                    f"{settings.base_dn}: groups are searched there only ({DOCS})"
                )
        if self.password_file is not None:
            try:
                self._search_password()  # an empty one is said at start
            except DirectoryDown as e:
                raise DirectoryError(str(e)) from None

    # -- what the console asks ---------------------------------------------------------------
    def login(self, name: str, password: str) -> DirectoryUser | None:
        """The person, when the directory takes the password; None when it does not (or
        the name could be no one's); DirectoryRefused when it takes it but the person is
        in no group the inventory maps, DirectoryDown when it cannot be asked."""
        name = name.strip()
        # An empty password would be an unauthenticated bind, which a server answers
        # with success (RFC 4513 5.1.2): never sent.
        if not password or not SAFE_NAME_RE.fullmatch(name):
            return None
        import ldap

        conn = self._connect()
        try:
            try:
                conn.simple_bind_s(self._bind_name(name), password)
            except ldap.INVALID_CREDENTIALS:
                return None
            dn = self._dn_of(conn, name)
            role = self._role(conn, dn) if dn else None
        except ldap.LDAPError as e:
            raise self._down(e) from None
        finally:
            _close(conn)
        if role is None:
            raise DirectoryRefused(
                f"{name} is in no directory group that gives a role on this console "
                f"({', '.join(self.settings.groups)}); ask the directory's administrators "
                f"to add you to one ({DOCS})"
            )
        return DirectoryUser(name.lower(), str(dn), role)

    def role_now(self, dn: str) -> Role | None:
        """The role `dn`'s groups give now, read with the search account; None: none
        (removed from the groups, the entry gone or, on Active Directory, disabled).
        DirectoryDown when the directory cannot be asked or the search account cannot
        bind."""
        import ldap

        search = self.settings.search
        assert search is not None and self.password_file is not None
        conn = self._connect()
        try:
            conn.simple_bind_s(search.bind_dn, self._search_password())
            return self._role(conn, dn) if self._present(conn, dn) else None
        except ldap.INVALID_CREDENTIALS:
            raise DirectoryDown(
                f"the directory refused the search account {search.bind_dn}: check "
                f"console.ldap.search and its password file ({DOCS})"
            ) from None
        except ldap.LDAPError as e:
            raise self._down(e) from None
        finally:
            _close(conn)

    # -- the directory -----------------------------------------------------------------------
    def _connect(self) -> Any:
        import ldap

        try:
            conn = ldap.initialize(self.settings.url)
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            # Active Directory answers searches with referrals to other partitions; they
            # are not followed (python-ldap FAQ: "set ldap.OPT_REFERRALS to 0").
            conn.set_option(ldap.OPT_REFERRALS, 0)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, TIMEOUT)
            conn.set_option(ldap.OPT_TIMEOUT, TIMEOUT)
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(self.ca_file))
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: the TLS options above take
            if self.settings.start_tls:
                conn.start_tls_s()
        except ldap.LDAPError as e:
            raise self._down(e) from None
        return conn

    def _down(self, e: Exception) -> DirectoryDown:
        info = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
        why = "; ".join(str(info[k]) for k in ("desc", "info") if info.get(k)) or str(e)
        return DirectoryDown(
            f"the directory at {self.settings.url} could not be asked ({why}); local "
            f"accounts still log in ({DOCS})"
        )

    def _bind_name(self, name: str) -> str:
        from ldap.dn import escape_dn_chars

        s = self.settings
        if s.user_template is not None:
            return s.user_template.replace("{user}", escape_dn_chars(name))
        return f"{name}@{s.upn_suffix}"

    def _dn_of(self, conn: Any, name: str) -> str | None:
        """The person's DN: the template's, or (Active Directory) the one person whose
        userPrincipalName is the one bound with or, bound by the implicit UPN
        (sAMAccountName@domain, MS-ADTS 5.1.1.1.1), whose sAMAccountName is the name;
        None unless exactly one entry answers."""
        import ldap
        from ldap.filter import escape_filter_chars

        if self.settings.user_template is not None:
            return self._bind_name(name)
        upn, sam = (escape_filter_chars(v) for v in (self._bind_name(name), name))
        flt = f"(&(objectCategory=person)(|(userPrincipalName={upn})(sAMAccountName={sam})))"
        found = conn.search_s(self.settings.base_dn, ldap.SCOPE_SUBTREE, flt, ["1.1"])
        dns = [dn for dn, _ in found if dn]
        return dns[0] if len(dns) == 1 else None

    def _present(self, conn: Any, dn: str) -> bool:
        """Whether the person's entry is still there and, on Active Directory, not
        disabled (userAccountControl's ACCOUNTDISABLE bit, 0x2, tested with the matching
        rule LDAP_MATCHING_RULE_BIT_AND 1.2.840.113556.1.4.803: Microsoft Learn,
        "Search Filter Syntax" and "userAccountControl")."""
        import ldap

        flt = "(objectClass=*)"
        if self.settings.server == "active-directory":
            flt = f"(&(objectCategory=person)(!(userAccountControl:{BIT_AND}:=2)))"
        try:
            return bool(conn.search_s(dn, ldap.SCOPE_BASE, flt, ["1.1"]))
        except ldap.NO_SUCH_OBJECT:
            return False

    def _role(self, conn: Any, dn: str) -> Role | None:
        """The highest role the mapped groups `dn` is in (directly or through others)
        give. Groups are named by their whole DN (a cn alone would be any group of that
        name), compared as DNs (dn_key)."""
        wanted = {dn_key(g): role for g, role in self.settings.groups.items()}
        roles = {wanted.get(dn_key(g)) for g in self._groups(conn, dn)}
        if "operator" in roles:
            return "operator"
        return "viewer" if "viewer" in roles else None

    def _groups(self, conn: Any, dn: str) -> list[str]:
        """The DNs of the groups `dn` is a member of, nested ones included: on Active
        Directory, of the mapped ones (`groups:`) only, each asked on its own entry (a base search,
        so nothing else under base_dn is read); on OpenLDAP, every group, level by
        level."""
        import ldap
        from ldap.filter import escape_filter_chars

        if self.settings.server == "active-directory":
            flt = f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})"
            out = []
            for group in self.settings.groups:
                try:
                    if conn.search_s(group, ldap.SCOPE_BASE, flt, ["1.1"]):
                        out.append(group)
                except ldap.NO_SUCH_OBJECT:
                    pass  # a mapped group that is not there: no one is in it
            return out
        base, sub = self.settings.base_dn, ldap.SCOPE_SUBTREE
        found: dict[str, str] = {}
        level = [dn]
        for _ in range(NESTING_DEPTH):
            members = "".join(f"(member={escape_filter_chars(m)})" for m in level)
            flt = f"(&(objectClass=groupOfNames)(|{members}))"
            new = [g for g, _ in conn.search_s(base, sub, flt, ["1.1"]) if g]
            level = [g for g in new if dn_key(g) not in found]
            found.update((dn_key(g), g) for g in new)
            if not level:
                break
        return list(found.values())

    def _search_password(self) -> str:
        """The search account's password: the file's text without its one trailing newline
        (spaces are the password's own). Empty (or only spaces) is refused: a bind with an
        empty password is an unauthenticated bind, which a server answers with success
        (RFC 4513 5.1.2), and the re-check would read groups as no one."""
        assert self.password_file is not None
        where = f"console.ldap.search.password_file {self.password_file}"
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DirectoryDown(f"{where}: cannot read it ({e})") from None
        password = text.removesuffix("\n").removesuffix("\r")
        if not password.strip():
            raise DirectoryDown(
                f"{where}: empty; it holds the search account's password (an empty one "
                f"would be an unauthenticated bind, RFC 4513 5.1.2) ({DOCS})"
            )
        return password


@dataclass
class _Held:
    user: DirectoryUser
    checked: float


class DirectorySessions:
    """The people logged in through the directory (console/directory.py), by name."""

    def __init__(self, directory: Directory | None, clock: Any = time.monotonic) -> None:
        self.directory, self.clock = directory, clock
        self._held: dict[str, _Held] = {}

    def login(self, name: str, password: str) -> Account | None:
        assert self.directory is not None
        user = self.directory.login(name, password)
        if user is None:
            return None
        self._held[user.name] = _Held(user, self.clock())
        return Account(name=user.name, hash="", role=user.role)

    def _due(self, held: _Held) -> bool:
        assert self.directory is not None
        return self.clock() - held.checked >= self.directory.recheck

    def account(self, name: str, acting: bool) -> Account | None:
        """The directory login of that name; None when there is none, or when it would
        act with groups older than `recheck` (recheck reads them first)."""
        held = self._held.get(name.strip().lower())
        if held is None or acting and self._due(held):
            return None
        return Account(name=held.user.name, hash="", role=held.user.role)

    async def recheck(self, name: str) -> None:
        """Read the groups of the directory login `name` again when `recheck` has passed:
        its role as they give it now. Refused ("login") when they give none (every session
        of theirs ends) or when no search account is named (they log in again);
        Refused when the directory cannot be asked (nothing is done; the session stays)."""
        held = self._held.get(name.strip().lower())
        if held is None or self.directory is None or not self._due(held):
            return
        user, every = held.user, _duration(self.directory.recheck)
        if self.directory.settings.search is None:
            del self._held[user.name]
            raise Refused(
                f"refused: {user.name}'s directory groups are read again every {every} "
                "and console.ldap names no search account to read them: log in again to "
                "act (docs/site/directory-login.md)",
                "login",
            )
        try:
            role = await asyncio.to_thread(self.directory.role_now, user.dn)
        except DirectoryDown as e:
            raise Refused(f"refused: nothing was done: {e}", "refused") from None
        if role is None:
            self._held.pop(user.name, None)
            raise Refused(
                f"refused: {user.name} is no longer in a directory group that gives a role "
                "on this console: nothing was done and the session is ended "
                "(docs/site/directory-login.md)",
                "login",
            )
        self._held[user.name] = _Held(DirectoryUser(user.name, user.dn, role), self.clock())


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s}s" if m and s else f"{m}m" if m else f"{s}s"


def _close(conn: Any) -> None:
    import ldap

    try:
        conn.unbind_s()
    except ldap.LDAPError:
        pass  # a connection the server dropped is closed already


def dn_key(dn: str) -> str:
    """`dn` as compared (N2): parsed and written again by python-ldap (ldap.dn.str2dn,
    dn2str: escapes and spaces in one form; RFC 4514), in lower case (the attribute types,
    and cn, dc, ou, uid, compare without regard to case); a DN it cannot parse, as is,
    in lower case."""
    import ldap
    import ldap.dn

    try:
        return str(ldap.dn.dn2str(ldap.dn.str2dn(dn))).lower()
    except ldap.DECODING_ERROR:
        return dn.lower()


def _under(dn: str, base: str) -> bool:
    """Whether `dn` is `base` or an entry below it (compared as DNs: dn_key)."""
    import ldap
    import ldap.dn

    try:
        rdns, tail = ldap.dn.str2dn(dn), ldap.dn.str2dn(base)
    except ldap.DECODING_ERROR:
        return False
    n = len(tail)
    return n <= len(rdns) and dn_key(ldap.dn.dn2str(rdns[len(rdns) - n :])) == dn_key(base)


def _readable(path: Path, what: str, secret: bool = True) -> Path:
    where = f"console.ldap.{what} {path}"
    try:
        st = path.stat()
        path.read_bytes()
    except OSError as e:
        raise DirectoryError(f"{where}: cannot read it ({e.strerror or e})") from None
    if secret and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DirectoryError(
            f"{where}: readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 {path}"
        )
    return path


def directory_of(invs: list[Inventory], paths: list[str]) -> Directory | None:
    """The directory the inventories' `console.ldap` names (one console, one directory),
    or None when none names one. DirectoryError when two name different ones, or when
    python-ldap is missing."""
    named = [
        (inv, path)
        for inv, path in zip(invs, paths, strict=True)
        if inv.console is not None and inv.console.ldap is not None
    ]
    if not named:
        return None
    first, where = named[0]
    for inv, _ in named[1:]:
        if inv.console != first.console:
            raise DirectoryError(
                f"pairs {first.pair} and {inv.pair} name different directories in "
                "console.ldap; one console logs in against one directory: make them the same"
            )
    assert first.console is not None and first.console.ldap is not None
    try:
        return Directory(first.console.ldap, where)
    except ImportError:
        raise DirectoryError(
            "console.ldap: directory login needs python-ldap: pip install 'amsm[directory]' "
            f"(and libldap-dev, libsasl2-dev to build it; {DOCS})"
        ) from None
