"""The console's sessions as the server keeps them: the cookie carries a random id, the
record is here, so the server can end a session (logout; the account's password
changed or the account removed from the accounts file: the record holds a digest of
the account's hash as it was at login) and a session ends 12 hours after its login
however busy it was (an absolute expiry, not one renewed by each click).

The records are kept in a file of this console's own (console-sessions-PORT.json beside
the accounts file, mode 0600; only digests of the ids, so reading the file gives no
cookie), written whole at each login and logout, so a restart of the console keeps
everyone logged in, and a cookie of another console on the same host (another port,
another file) opens nothing here. docs/site/accounts-and-tls.md says why."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LIFETIME = 12 * 3600.0  # a shift, from the login
MAX_SESSIONS = 10_000  # the oldest go first


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Sessions:
    def __init__(
        self,
        path: Path | None = None,
        lifetime: float = LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path, self.lifetime, self.clock = path, lifetime, clock
        self._records: dict[str, dict[str, Any]] = self._load()

    def open(self, user: str, account_hash: str) -> str:
        """A new session of `user` (whose accounts-file hash is `account_hash`): its id."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        self._prune(now)
        while len(self._records) >= MAX_SESSIONS:
            self._records.pop(next(iter(self._records)))
        self._records[_digest(sid)] = {
            "user": user.lower(),
            "since": now,
            "password": _digest(account_hash),
        }
        self._save()
        return sid

    def holds(self, sid: object, user: str, account_hash: str) -> bool:
        """Whether `sid` is a live session of `user`, opened with the password the account
        has now; a session that is not is ended."""
        if not isinstance(sid, str) or not sid:
            return False
        key = _digest(sid)
        record = self._records.get(key)
        if record is None or record.get("user") != user.lower():
            return False
        if (
            record.get("password") != _digest(account_hash)
            or self.clock() - float(record.get("since", 0)) >= self.lifetime
        ):
            self._records.pop(key, None)
            self._save()
            return False
        return True

    def end(self, sid: object) -> None:
        if isinstance(sid, str) and self._records.pop(_digest(sid), None) is not None:
            self._save()

    def __len__(self) -> int:
        return len(self._records)

    def _prune(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if now - r["since"] >= self.lifetime]:
            del self._records[key]

    def _load(self) -> dict[str, dict[str, Any]]:
        """The kept records; none when there is no file or it cannot be read (everyone
        logs in again: a session is never assumed)."""
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            k: r
            for k, r in data.items()
            if isinstance(r, dict) and isinstance(r.get("since"), int | float)
        }

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._records, f)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
