"""Look for secrets where Temporal keeps them: every string of every event, and every
payload decoded (issue 14, item 12).

A history's JSON shows payloads as base64 (and, with encryption on, as ciphertext), so a
secret in an activity result, a failure's encoded attributes, a memo or a signal is not
in its text. Here every `Payload` anywhere in a message (inputs, results, signal and
update arguments, failures and their causes, heartbeat details, memo, search attributes,
headers) is decrypted with the codec when given, and its data is searched as text, as
JSON (every string in it, unescaped), and as base64 inside those strings.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

PAYLOAD = "temporal.api.common.v1.Payload"
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")

Decrypt = Callable[[Payload], Payload]


def texts(msg: Message, decrypt: Decrypt | None = None) -> Iterator[str]:
    """Every text `msg` holds, payloads decoded."""
    if msg.DESCRIPTOR.full_name == PAYLOAD:
        yield from payload_texts(msg, decrypt)  # type: ignore[arg-type]
        return
    for field, value in msg.ListFields():
        values = value if field.is_repeated else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = []
            for k, v in value.items():
                yield str(k)
                values.append(v)
        for v in values:
            if isinstance(v, Message):
                yield from texts(v, decrypt)
            elif isinstance(v, str):
                yield v
            elif isinstance(v, bytes):
                yield v.decode("utf-8", errors="replace")


def payload_texts(p: Payload, decrypt: Decrypt | None = None) -> Iterator[str]:
    if decrypt is not None and p.metadata.get("encoding") == b"binary/encrypted":
        p = decrypt(p)
    for k, v in p.metadata.items():
        yield k
        yield v.decode("utf-8", errors="replace")
    text = p.data.decode("utf-8", errors="replace")
    yield text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    for s in _strings(value):
        yield s
        yield from _unbase64(s)
    yield from _unbase64(text)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _unbase64(text: str) -> Iterator[str]:
    for m in _B64.finditer(text):
        token = m.group(0)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(token + "=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            yield raw.decode("utf-8", errors="replace")


def leaked(secrets: Iterable[str], found: Iterable[str]) -> list[str]:
    """The secrets (shown as their first 6 characters) that appear in `found`."""
    pool = "\n".join(found)
    return [s[:6] + "..." for s in secrets if s in pool]
