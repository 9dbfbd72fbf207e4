"""The lab: a simulated mirrored K2 pair reached only through real protocols.

Every Windows host is its own SSH server on 127.0.0.1 that runs a small PowerShell
subset (`lab.powershell`); each DSM is a SQLite file the worker opens through
unixODBC (`lab.dsm`). The device state lives in `DIR/lab.db` (`lab.state`), shared
by `amsm lab serve` (`lab.serve`) and the operator's hands (`lab.hands`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class LabError(Exception):
    """An expected lab problem, told as a sentence (no traceback for the operator)."""


def write_random_secret(path: Path) -> None:
    """A fresh random password in `path`, readable by its owner only (0600, in a 0700
    folder), created anew so that no old mode or content survives. URL-safe base64: no
    `:`, `;`, `{` or `}`, which an NTLM user file or an ODBC string would misread."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_urlsafe(24) + "\n")
