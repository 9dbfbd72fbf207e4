"""Signed acts in tests (docs/operators/signed-acts.md): a private key written as `amsm
keys new` writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from inventory import intent
from tests.support.lab import Lab


def key_file(folder: Path, name: str) -> tuple[str, str]:
    """A new private key in `folder` (PEM, mode 0600): its file and its public line."""
    key = Ed25519PrivateKey.generate()
    path = folder / f"{name}.key"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return str(path), intent.public_line(key.public_key())


def signed_only(lab: Lab, folder: Path, name: str = "ann") -> str:
    """Make `lab`'s pair take only signed acts (identity.require_signed), its operators
    `name`, with a new key, and `tester` (the tests' default operator, with none); the
    file of `name`'s private key."""
    path, line = key_file(folder, name)
    lab.edit_inventory(
        operators=[{"name": name, "key": line}, "tester"], identity={"require_signed": True}
    )
    return path


async def signed_lab(
    lab_factory: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Lab, str]:
    """A lab of one editor whose pair takes only signed acts (`signed_only`), the CLI
    acting as `tester` with no key of its own; the lab and ann's private key's file."""
    monkeypatch.setenv("AMSM_OPERATOR", "tester")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    return lab, signed_only(lab, folder)
