"""Signed acts in tests (docs/operators/signed-acts.md): a private key written as `amsm
keys new` writes it."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from inventory import intent


def key_file(folder: Path, name: str) -> tuple[str, str]:
    """A new private key in `folder` (PEM, mode 0600): its file and its public line."""
    key = Ed25519PrivateKey.generate()
    path = folder / f"{name}.key"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return str(path), intent.public_line(key.public_key())
