"""The console's accounts file: who may log in, with an Argon2id hash of their password.

The file is YAML, one entry per person (docs/operators/console.md):

    accounts:
      ann:
        hash: "$argon2id$v=19$m=65536,t=3,p=4$..."   # amsm console hash-password
      vic:
        hash: "$argon2id$..."
        role: viewer        # optional: caps the account at viewing

What a person may do on a pair is the pair's inventory's to say (`operators:` act,
`viewers:` read; the workflows check it again): an account's `role: viewer` can only
lower that, never raise it. A file readable by others than its owner is refused.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from inventory.models import SAFE_NAME_RE

Role = Literal["operator", "viewer"]
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name costs what a wrong
# password costs (no telling names apart by time).
_DUMMY = _HASHER.hash("not a password of anyone")


class AccountsError(Exception):
    """The accounts file cannot be used: one message saying what and where."""


@dataclass(frozen=True)
class Account:
    name: str
    hash: str
    role: Role = "operator"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


class Accounts:
    def __init__(self, accounts: dict[str, Account], path: str = "") -> None:
        self._by_name = {n.lower(): a for n, a in accounts.items()}
        self.path = path

    def __len__(self) -> int:
        return len(self._by_name)

    def find(self, name: str) -> Account | None:
        return self._by_name.get(name.strip().lower())

    def verify(self, name: str, password: str) -> Account | None:
        """The account when the password is its own; None otherwise (same cost either way)."""
        account = self.find(name)
        try:
            _HASHER.verify(account.hash if account else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return account


def load_accounts(path: str | Path) -> Accounts:
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise AccountsError(
            f"console accounts file {p}: cannot read it ({e.strerror or e}); "
            "pass --accounts FILE (`amsm lab init` writes DIR/secrets/console-accounts.yaml)"
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AccountsError(
            f"console accounts file {p}: readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"chmod 600 {p}"
        )
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise AccountsError(f"console accounts file {p}: not YAML ({e})") from None
    entries = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise AccountsError(f"console accounts file {p}: no `accounts:` mapping of name to hash")
    out: dict[str, Account] = {}
    for name, entry in entries.items():
        where = f"console accounts file {p}, account {name!r}"
        if not isinstance(name, str) or not SAFE_NAME_RE.fullmatch(name):
            raise AccountsError(f"{where}: not a user name (letters, digits, space, _ . ( ) -)")
        if not isinstance(entry, dict) or not str(entry.get("hash", "")).startswith("$argon2"):
            raise AccountsError(
                f"{where}: needs `hash:` an Argon2 hash (make one: amsm console hash-password)"
            )
        role = entry.get("role", "operator")
        if role not in ("operator", "viewer"):
            raise AccountsError(f"{where}: role {role!r}; allowed: operator, viewer")
        out[name] = Account(name=name, hash=str(entry["hash"]), role=role)
    return Accounts(out, str(p))


def write_accounts(path: str | Path, accounts: dict[str, tuple[str, Role]]) -> None:
    """Write {name: (password, role)} as an accounts file (mode 0600), hashing each password."""
    p = Path(path)
    body = {
        "accounts": {
            name: {"hash": hash_password(pw), **({"role": role} if role != "operator" else {})}
            for name, (pw, role) in accounts.items()
        }
    }
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# amsm console accounts (docs/operators/console.md): Argon2id hashes\n")
        yaml.safe_dump(body, f, sort_keys=False)
    os.chmod(p, 0o600)


def role_on(account: Account, inv_operators: list[str], inv_viewers: list[str]) -> Role | None:
    """What `account` may do on a pair whose inventory lists these operators and viewers:
    the inventory decides (an inventory that lists no operator lets anyone act, as for the
    CLI and the workflows); a listed viewer only views; the account's own role only lowers
    it. None: neither (the pair is not shown)."""
    who = account.name.lower()
    ops = {o.lower() for o in inv_operators}
    views = {v.lower() for v in inv_viewers}
    if who in ops:
        role: Role | None = "operator"
    elif who in views:
        role = "viewer"
    elif not ops and not views:
        role = "operator"
    else:
        role = None  # the inventory names who reads, and not them (Inventory.may_read)
    if role == "operator" and account.role == "viewer":
        role = "viewer"
    return role
