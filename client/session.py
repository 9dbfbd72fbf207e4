"""What every command of `amsm` shares: its errors and exit codes, who acts, the
inventory (as wire/options.py finds it) and the output. Every module of `client/` may
import it; it imports none of them."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.service import RPCError

from inventory.models import Inventory
from wire.options import BadInventory, inventory

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An expected failure: printed as one clear message, never a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def server_refused(e: RPCError) -> str:
    """A refusal of the Temporal server that no command explains itself (busy, the run
    closing just as it was asked), said in one line."""
    return (
        f"the Temporal server refused a request ({e.status.name}: {e.message}); "
        "`amsm show current` says where the pair stands, then try again"
    )


def default_operator() -> str:
    """Who is acting: AMSM_OPERATOR, else the login name. Only as strong as the Temporal
    deployment's own authentication (README, "Who may act")."""
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


# The model's field where the command line's flag has another name.
FLAG_OF = {"initiator": "operator", "clients": "client", "hosts": "host"}


def bad_arguments(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        field = str(err["loc"][0]) if err["loc"] else "input"
        where = "--" + FLAG_OF.get(field, field).replace("_", "-")
        msg = err["msg"]
        if err["type"] == "string_pattern_mismatch":
            msg = "must be one line, without control characters"
        parts.append(f"{where}: {msg}")
    return "bad input: " + "; ".join(parts) + " (limits: README, 'Limits')"
