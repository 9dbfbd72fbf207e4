"""Resolve a credentials *reference* from the inventory into a secret, on the worker only."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from activities.drivers.errors import CredentialError
from inventory.load import resolve_path
from inventory.models import Inventory

# A resolved secret is kept this long, then read again (a rotated password file is
# picked up within it). Reading files for every device of every probe cost a status of
# 200 devices more than a second of CPU.
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Secret:
    username: str
    key_file: Path | None
    password: str | None

    def __repr__(self) -> str:  # never print the password
        return f"Secret(username={self.username!r}, key_file={self.key_file!s})"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class CredentialStore:
    def __init__(self, inventory: Inventory, inventory_path: str | Path) -> None:
        self._inventory = inventory
        # Resolved once: paths in the inventory are relative to its file.
        self._path = Path(inventory_path).resolve()
        self._cache: dict[str, tuple[float, Secret]] = {}
        self._files: dict[str, Path] = {}

    def resolve(self, ref: str) -> Secret:
        hit = self._cache.get(ref)
        now = time.monotonic()
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        secret = self._resolve(ref)
        self._cache[ref] = (now, secret)
        return secret

    def _resolve(self, ref: str) -> Secret:
        cred = self._inventory.credentials.get(ref)
        if cred is None:
            raise CredentialError(f"credentials {ref!r} are not defined in the inventory")
        key = resolve_path(self._path, cred.key_file) if cred.key_file else None
        password: str | None = None
        if cred.password_file:
            pf = resolve_path(self._path, cred.password_file)
            try:
                raw = pf.read_bytes()
            except OSError as e:
                raise CredentialError(
                    f"credentials {ref!r}: cannot read {pf}: {e.strerror}"
                ) from None
            try:
                password = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                # Fixed text: the decoder's own message names a byte of the password.
                raise CredentialError(
                    f"credentials {ref!r}: {pf} is not UTF-8 text; write the password in UTF-8"
                ) from None
        elif cred.password_env:
            password = os.environ.get(cred.password_env)
            if password is None:
                raise CredentialError(
                    f"credentials {ref!r}: environment variable {cred.password_env} is not set "
                    "on the worker"
                )
            if not _is_utf8(password):
                # os.environ keeps undecodable bytes as lone surrogates (PEP 383).
                raise CredentialError(
                    f"credentials {ref!r}: environment variable {cred.password_env} is not "
                    "UTF-8 text"
                )
        if password is not None and "\x00" in password:
            raise CredentialError(f"credentials {ref!r}: the password holds a NUL character")
        return Secret(cred.username, key, password)

    def resolve_file(self, value: str) -> Path:
        """A path written in the inventory (e.g. a WinRM `ca_file`), relative to its file."""
        path = self._files.get(value)
        if path is None:
            path = self._files[value] = resolve_path(self._path, value)
        return path

    @property
    def known_hosts(self) -> Path:
        return self.resolve_file(self._inventory.known_hosts)
