"""What every command of `amsm` shares: its errors and exit codes, who acts, the
inventory and the output. Light (no Temporal SDK), so that `amsm --help` and `amsm lab`
start at once. Every module of `client/` may import it; it imports none of them."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from inventory.load import InventoryError, load_inventory
from inventory.models import Inventory

DEFAULT_INVENTORY = "var/lab/inventory.yaml"
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An expected failure: printed as one clear message, never a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def default_operator() -> str:
    """Who is acting: AMSM_OPERATOR, else the login name. Only as strong as the Temporal
    deployment's own authentication (README, "Who may act")."""
    if os.environ.get("AMSM_OPERATOR"):
        return os.environ["AMSM_OPERATOR"]
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return os.environ.get("USER", "operator")


def inventory_path(args: argparse.Namespace) -> str:
    return args.inventory or os.environ.get("AMSM_INVENTORY") or DEFAULT_INVENTORY


def load(args: argparse.Namespace) -> Inventory:
    path = inventory_path(args)
    if not Path(path).exists():
        raise CliError(
            f"no inventory at {path}: pass --inventory FILE or set AMSM_INVENTORY "
            "(the embedded default, `make run`, creates var/lab/inventory.yaml)",
            EXIT_USAGE,
        )
    try:
        return load_inventory(path)
    except InventoryError as e:
        raise CliError(e.explain(), EXIT_USAGE) from None


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=None, default=str))
    else:
        print(text)


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
