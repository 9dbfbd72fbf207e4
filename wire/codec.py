"""Optional payload encryption: AES-256-GCM over every payload, failure attributes too.

Keys come from a key file (AMSM_CODEC_KEY_FILE) with one `KEY_ID:BASE64_KEY` per line,
the first line the current key, later lines older keys kept for decoding (rotation);
or from AMSM_CODEC_KEY (base64) with AMSM_CODEC_KEY_ID. Worker and CLI use the same
converter, so histories in Temporal hold only ciphertext; `amsm codec-server` lets the
Web UI show them (docs/site/accounts-and-tls.md).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from wire.payloads import UndecodablePayloadConverter
from wire.payloads import marker as payload_marker

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
_NONCE, _TAG = 12, 16  # AES-GCM: 96-bit nonce, 128-bit tag
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CodecConfigError(Exception):
    """The key configuration cannot be used; the message says what and where."""


class AesGcmCodec(PayloadCodec):
    """Encrypts every payload with the current key; decrypts with any key of the file.

    Decoding never raises (wire/payloads.py says why): a payload that cannot be
    decrypted, and one that is not encrypted at all, is replaced by a marker that the
    data converter refuses with a fixed reason. `accept_plaintext=True` lets plaintext
    through instead, for readers only (the codec server's /decode, history files):
    never for a worker, or anyone who can reach Temporal could pass a payload off as
    one written with the key.
    """

    def __init__(
        self, keys: dict[str, bytes], current: str, *, accept_plaintext: bool = False
    ) -> None:
        if current not in keys:
            raise CodecConfigError(f"current key id {current!r} has no key")
        for kid, key in keys.items():
            if len(key) != 32:
                raise CodecConfigError(f"key {kid!r} is {len(key)} bytes; AES-256 needs 32")
        self._keys = dict(keys)
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = current
        self.accept_plaintext = accept_plaintext

    def reader(self) -> AesGcmCodec:
        """The same keys, letting plaintext through (for reading, never for a worker)."""
        return AesGcmCodec(self._keys, self.current, accept_plaintext=True)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            data = self._aead[self.current].encrypt(
                nonce, p.SerializeToString(), self.current.encode()
            )
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_META: self.current.encode()},
                    data=nonce + data,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def decode_one(self, p: Payload) -> Payload:
        """One payload decrypted, or the marker in its place (never raises)."""
        if p.metadata.get("encoding") != ENCODING:
            return p if self.accept_plaintext else payload_marker("not-encrypted")
        try:
            kid = p.metadata.get(KEY_ID_META, b"").decode("ascii")
        except UnicodeDecodeError:
            return payload_marker("unknown-key")
        aead = self._aead.get(kid)
        if aead is None:
            return payload_marker("unknown-key")
        if len(p.data) < _NONCE + _TAG:
            return payload_marker("bad-ciphertext")
        try:
            plain = aead.decrypt(p.data[:_NONCE], p.data[_NONCE:], kid.encode())
        except InvalidTag:
            return payload_marker("bad-ciphertext")
        try:
            inner = Payload.FromString(plain)
        except DecodeError:
            return payload_marker("not-a-payload")
        # Encrypted twice: no converter reads that, and the SDK would fail the task.
        return (
            payload_marker("not-a-payload") if inner.metadata.get("encoding") == ENCODING else inner
        )


def _key(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise CodecConfigError(f"{where}: the key is not valid base64") from None


def load_codec(key_file: str | None = None) -> AesGcmCodec | None:
    """The codec configured by flag or environment, or None (no encryption)."""
    key_file = key_file or os.environ.get("AMSM_CODEC_KEY_FILE")
    if key_file:
        path = Path(key_file)
        try:
            lines = [
                x.strip()
                for x in path.read_text().splitlines()
                if x.strip() and not x.startswith("#")
            ]
        except OSError as e:
            raise CodecConfigError(f"{path}: cannot read the key file ({e.strerror})") from None
        keys: dict[str, bytes] = {}
        for n, line in enumerate(lines, 1):
            kid, sep, b64 = line.partition(":")
            if not sep or not _KEY_ID.fullmatch(kid):
                raise CodecConfigError(f"{path}, line {n}: expected KEY_ID:BASE64_KEY")
            keys[kid] = _key(b64, f"{path}, line {n}")
        if not keys:
            raise CodecConfigError(f"{path}: no keys")
        return AesGcmCodec(keys, next(iter(keys)))
    env_key = os.environ.get("AMSM_CODEC_KEY")
    if env_key:
        kid = os.environ.get("AMSM_CODEC_KEY_ID", "default")
        if not _KEY_ID.fullmatch(kid):
            raise CodecConfigError(f"AMSM_CODEC_KEY_ID {kid!r}: letters, digits, _ . -")
        return AesGcmCodec({kid: _key(env_key, "AMSM_CODEC_KEY")}, kid)
    return None


def new_key_line(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class AmsmPayloadConverter(PydanticPayloadConverter):
    """Pydantic JSON, and the codec's marker for a payload it could not decode, which
    it refuses to turn into a value (wire/payloads.py)."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(*self.converters.values(), UndecodablePayloadConverter())


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic converter, with the codec and encoded failure attributes when given."""
    base = DataConverter(payload_converter_class=AmsmPayloadConverter)
    if codec is None:
        return base
    return dataclasses.replace(
        base,
        payload_codec=codec,
        # Failure messages carry device errors (host names, paths): encrypt them too.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
