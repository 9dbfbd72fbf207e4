"""What every command of `amsm` shares: its errors and exit codes (the API's refusal,
api/refusal.py, carries its own), who acts, the inventory (as wire/options.py finds it)
and the output. Every module of `client/` may import it; it imports none of them."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from api.refusal import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Refused, bad_arguments, server_refused
from inventory.models import Inventory
from wire.options import BadInventory, inventory

__all__ = [
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "bad_arguments",
    "default_operator",
    "emit",
    "load",
    "server_refused",
    "write_output",
]


class CliError(Refused):
    """An expected failure of the CLI: printed as one clear message, never a traceback;
    its exit code `code` (an API refusal becomes one, with the code its kind maps to)."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message, "usage" if code == EXIT_USAGE else "refused")
        self._code = code

    @property
    def code(self) -> int:
        return self._code

    @classmethod
    def of(cls, e: Refused) -> CliError:
        return e if isinstance(e, CliError) else cls(e.message, e.code)


def default_operator() -> str:
    """Who is acting: AMSM_OPERATOR, else the login name. Only as strong as the Temporal
    deployment's own authentication (docs/site/accounts-and-tls.md)."""
    if os.environ.get("AMSM_OPERATOR"):
        return os.environ["AMSM_OPERATOR"]
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return os.environ.get("USER", "operator")


def load(args: argparse.Namespace) -> Inventory:
    try:
        return inventory(args)
    except BadInventory as e:
        raise CliError(str(e), EXIT_USAGE) from None


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=None, default=str))
    else:
        print(text)


def write_output(path: str | None, text: str) -> str | None:
    """Write `text` to `path` ('-' or None: stdout). Returns the path written, if any."""
    if path in (None, "-"):
        sys.stdout.write(text)
        return None
    assert path is not None
    p = Path(path)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as e:
        raise CliError(f"{p}: cannot write it ({e.strerror or e})", EXIT_FAIL) from None
    return str(p)
