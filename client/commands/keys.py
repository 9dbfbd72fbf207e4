"""`amsm keys new --operator NAME`: an operator's Ed25519 key (docs/operators/signed-acts.md).
Writes the private key to a file only its owner reads, and prints the public line
`ed25519:<base64>` to list beside the name in the inventory's `operators:`. Also where
confirm, approve, retry, skip and abort find the key they sign with (`--key`, AMSM_KEY)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from client.session import EXIT_OK, EXIT_USAGE, CliError, default_operator, emit
from inventory.intent import public_line
from inventory.models import SAFE_NAME_RE, Inventory

HINT = "docs/operators/signed-acts.md"


def add(sub: Any) -> None:
    s = sub.add_parser("keys", help="an operator's signing key (signed acts)")
    verbs = s.add_subparsers(dest="verb", metavar="VERB")
    n = verbs.add_parser("new", help="write a new private key; print its public line")
    n.add_argument("--operator", required=True, metavar="NAME", help="whose key it is")
    n.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="where to write the private key (default: $XDG_CONFIG_HOME/amsm/NAME.key)",
    )
    n.add_argument("--json", action="store_true")
    n.set_defaults(local=new)


def default_path(operator: str) -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "amsm" / f"{operator}.key"


def in_git_work_tree(path: Path) -> bool:
    """The folder is inside a Git work tree (a key there is one `git add` from being shared)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "true"


async def new(args: argparse.Namespace) -> int:
    name = args.operator
    if not isinstance(name, str) or not SAFE_NAME_RE.fullmatch(name):
        raise CliError(f"--operator {name!r} is not a valid user name", EXIT_USAGE)
    path = Path(args.out) if args.out else default_path(name)
    if path.exists():
        raise CliError(f"{path} exists already; a key is never overwritten (--out FILE)")
    # Asked of the nearest folder that exists, so that a refusal leaves nothing behind.
    here = next(p for p in path.absolute().parents if p.exists())
    if in_git_work_tree(here):
        raise CliError(
            f"{path.parent} is inside a Git work tree: a private key never goes in Git; "
            f"write it elsewhere (--out FILE, {HINT})",
            EXIT_USAGE,
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    # O_EXCL: never over a file made meanwhile; 0600 from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    line = public_line(key.public_key())
    emit(
        args,
        {"operator": name, "file": str(path), "public_key": line},
        f"{line}\n",
    )
    if not args.json:
        print(
            f"private key written to {path} (mode 0600; keep it out of Git). List the line "
            f'above in the inventory: operators: [{{name: {name}, key: "{line}"}}]',
            file=sys.stderr,
        )
    return EXIT_OK


def add_key_option(s: Any) -> None:
    s.add_argument(
        "--key",
        metavar="FILE",
        default=None,
        help="sign the act with this private key (default: $AMSM_KEY); "
        "you act as the key's operator",
    )


def load_key(path: str) -> Ed25519PrivateKey:
    """The private key of FILE; a clear refusal when it cannot be used."""
    p = Path(path)
    try:
        if p.stat().st_mode & 0o077:
            raise CliError(f"{p} can be read by others; chmod 600 it first ({HINT})", EXIT_USAGE)
        key = load_pem_private_key(p.read_bytes(), password=None)
    except OSError as e:
        raise CliError(f"cannot read the key {p}: {e.strerror}", EXIT_USAGE) from None
    except (ValueError, TypeError):
        raise CliError(f"{p} is not a private key amsm keys new wrote", EXIT_USAGE) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CliError(f"{p} is not an Ed25519 key", EXIT_USAGE)
    return key


def acting(args: argparse.Namespace, inv: Inventory) -> tuple[str, Ed25519PrivateKey | None]:
    """Who acts and the key they sign with: with a key (--key, AMSM_KEY), its operator in
    the inventory (refused when --operator names someone else); without, as before."""
    path = getattr(args, "key", None) or os.environ.get("AMSM_KEY") or None
    named = getattr(args, "operator", None)
    if path is None:
        return named or default_operator(), None
    key = load_key(path)
    line = public_line(key.public_key())
    owner = next((n for n, k in inv.operator_keys.items() if k == line), None)
    if owner is None:
        raise CliError(
            f"the key {path} is no operator's key in pair {inv.pair}'s inventory "
            f"(its public line: {line}; {HINT})",
            EXIT_USAGE,
        )
    name = next(o for o in inv.operators if o.lower() == owner)
    if named and named.lower() != owner:
        raise CliError(f"--operator {named} but the key {path} is {name}'s", EXIT_USAGE)
    return name, key
