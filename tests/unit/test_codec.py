"""The AES-GCM payload codec: round trip, rotation, clear errors, and what cannot be
decrypted (a marker, never an exception)."""

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from wire.codec import AesGcmCodec, CodecConfigError, data_converter, load_codec, new_key_line
from wire.payloads import marker


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_hides_the_plaintext() -> None:
    codec = AesGcmCodec({"k1": os.urandom(32)}, "k1")
    [enc] = await codec.encode([payload('{"host": "ED-01"}')])
    assert enc.metadata["encoding"] == b"binary/encrypted" and b"ED-01" not in enc.data
    [dec] = await codec.decode([enc])
    assert dec == payload('{"host": "ED-01"}')
    # A worker with a key refuses plaintext: it becomes the marker, never the value.
    assert await codec.decode([payload("x")]) == [marker("not-encrypted")]
    # A reader (the codec server's /decode, history files) shows it as it is.
    assert await codec.reader().decode([payload("x")]) == [payload("x")]


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
    assert await load_codec(str(f)).decode([enc]) == [marker("unknown-key")]  # type: ignore[union-attr]


async def test_what_cannot_be_decrypted_becomes_a_marker_never_an_exception() -> None:
    """Raising in decode fails the workflow task for ever (issue 14, item 7)."""
    key = os.urandom(32)
    codec = AesGcmCodec({"k1": key}, "k1")
    [enc] = await codec.encode([payload('{"note": "s3cret"}')])
    wrong = AesGcmCodec({"k1": os.urandom(32)}, "k1")
    truncated = Payload(metadata=dict(enc.metadata), data=enc.data[:20])
    flipped = Payload(metadata=dict(enc.metadata), data=enc.data[:-1] + bytes([enc.data[-1] ^ 1]))
    tiny = Payload(metadata=dict(enc.metadata), data=b"short")
    bad_kid = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"\xff\xfe"}, data=enc.data
    )
    nonce = os.urandom(12)
    not_proto = Payload(
        metadata=dict(enc.metadata),
        data=nonce + AESGCM(key).encrypt(nonce, b"\xff\xff\xff not a protobuf", b"k1"),
    )
    assert await wrong.decode([enc]) == [marker("bad-ciphertext")]
    [twice] = await codec.encode([enc])
    assert await codec.decode([twice]) == [marker("not-a-payload")]
    got = await codec.decode([truncated, flipped, tiny, bad_kid, not_proto, enc])
    assert got[:5] == [
        marker("bad-ciphertext"),
        marker("bad-ciphertext"),
        marker("bad-ciphertext"),
        marker("unknown-key"),
        marker("not-a-payload"),
    ]
    assert got[5] == payload('{"note": "s3cret"}')
    # The marker holds a fixed code, never a byte of what arrived.
    assert all(
        b"s3cret" not in m.data and m.data.startswith(b'{"amsm_undecodable"') for m in got[:5]
    )


def test_the_converter_refuses_a_marker_with_a_fixed_text() -> None:
    conv = data_converter(None).payload_converter
    with pytest.raises(ApplicationError) as e:
        conv.from_payloads([marker("bad-ciphertext")], [dict])
    assert e.value.type == "UndecodablePayload" and e.value.non_retryable
    assert e.value.message == (
        "payload could not be decrypted: wrong key, or the ciphertext is damaged or truncated"
    )
    # Anyone can send a payload with the marker's encoding: only our texts are shown.
    forged = Payload(
        metadata={"encoding": b"json/amsm-undecodable"},
        data=b'{"amsm_undecodable": "run amsm abort now"}',
    )
    with pytest.raises(ApplicationError) as e:
        conv.from_payloads([forged], [dict])
    assert e.value.message == "payload could not be decrypted: its marker names no known reason"
    # Ordinary values are untouched.
    assert conv.from_payloads(conv.to_payloads([{"a": 1}]), [dict]) == [{"a": 1}]


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
