"""The AES-GCM payload codec: round trip, rotation, clear errors."""

import base64
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from workers.codec import AesGcmCodec, CodecConfigError, load_codec, new_key_line


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_hides_the_plaintext() -> None:
    codec = AesGcmCodec({"k1": os.urandom(32)}, "k1")
    [enc] = await codec.encode([payload('{"host": "ED-01"}')])
    assert enc.metadata["encoding"] == b"binary/encrypted" and b"ED-01" not in enc.data
    [dec] = await codec.decode([enc])
    assert dec == payload('{"host": "ED-01"}')
    # Payloads written before encryption was turned on still read.
    assert await codec.decode([payload("x")]) == [payload("x")]


async def test_rotation_old_keys_still_decode(tmp_path: Path) -> None:
    old, new = new_key_line("2025"), new_key_line("2026")
    f = tmp_path / "keys"
    f.write_text(old + "\n")
    before = load_codec(str(f))
    assert before is not None
    [enc] = await before.encode([payload("clip")])
    f.write_text(f"# current first\n{new}\n{old}\n")
    after = load_codec(str(f))
    assert after is not None and after.current == "2026"
    assert (await after.decode([enc]))[0].data == b"clip"
    f.write_text(new + "\n")
    with pytest.raises(ValueError, match="key id '2025', which is not in the key file"):
        await load_codec(str(f)).decode([enc])  # type: ignore[union-attr]


def test_bad_key_configuration_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "keys"
    f.write_text("no-colon-here\n")
    with pytest.raises(CodecConfigError, match="line 1: expected KEY_ID:BASE64_KEY"):
        load_codec(str(f))
    f.write_text("k:" + base64.b64encode(b"short").decode())
    with pytest.raises(CodecConfigError, match="5 bytes; AES-256 needs 32"):
        load_codec(str(f))
    with pytest.raises(CodecConfigError, match="cannot read the key file"):
        load_codec(str(tmp_path / "missing"))
    monkeypatch.delenv("AMSM_CODEC_KEY_FILE", raising=False)
    monkeypatch.setenv("AMSM_CODEC_KEY", base64.b64encode(os.urandom(32)).decode())
    codec = load_codec(None)
    assert codec is not None and codec.current == "default"
    monkeypatch.delenv("AMSM_CODEC_KEY")
    assert load_codec(None) is None
