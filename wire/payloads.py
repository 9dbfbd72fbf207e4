"""A payload the worker could not decrypt, as the workflows see it.

The payload codec (wire/codec.py) never raises while decoding: an exception there
fails the whole workflow task, and Temporal retries it for ever, so one bad signal
would stall a run until a reset. It puts this marker in the payload's place instead:
JSON `{"amsm_undecodable": CODE}` with its own encoding, CODE one of `REASONS` (a fixed
text: never a byte of what arrived). The data converter knows the encoding and refuses
to turn it into a value with `ApplicationError(type=UNDECODABLE_TYPE)`, so that

- a signal handler taking `RawValue` (workflows/base.py `PairWorkflow._raw`) rejects
  the signal, visibly in the checklist, and the run goes on;
- an update is refused, a typed signal dropped by the SDK (logged);
- a workflow input fails the run at once, before anything is done: Temporal fails the
  workflow, not the task, for an ApplicationError raised while decoding its arguments;
- an activity's input fails the activity ("Failed decoding arguments", caused by it),
  tried again only as the activity's retry policy says;
- an activity's or child's result fails the run that waits for it: only a worker with
  the key can write one, so this is a damaged history or a foreign worker on the queue,
  and no retry of the task could read it.

Nothing here does I/O; workflows may import it.
"""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import EncodingPayloadConverter
from temporalio.exceptions import ApplicationError

ENCODING = "json/amsm-undecodable"
KEY = "amsm_undecodable"
UNDECODABLE_TYPE = "UndecodablePayload"

REASONS = {
    "not-encrypted": "it is not encrypted, and this worker takes only encrypted payloads",
    "unknown-key": "it was encrypted with a key id that is not in the key file",
    "bad-ciphertext": "wrong key, or the ciphertext is damaged or truncated",
    "not-a-payload": "what it decrypts to is not a payload",
}
UNKNOWN_REASON = "its marker names no known reason"


def marker(code: str) -> Payload:
    """The payload the codec puts in place of one it cannot decode."""
    assert code in REASONS, code
    return Payload(metadata={"encoding": ENCODING.encode()}, data=json.dumps({KEY: code}).encode())


def reason(payload: Payload) -> str | None:
    """The fixed text for a marker payload; None for any other payload."""
    if payload.metadata.get("encoding") != ENCODING.encode():
        return None
    try:
        code = json.loads(payload.data).get(KEY)
    except (ValueError, AttributeError):
        code = None
    # Anyone can send a payload with this encoding: only our own texts are ever shown.
    return REASONS.get(code, UNKNOWN_REASON) if isinstance(code, str) else UNKNOWN_REASON


def undecodable_error(text: str) -> ApplicationError:
    return ApplicationError(
        f"payload could not be decrypted: {text}", type=UNDECODABLE_TYPE, non_retryable=True
    )


class UndecodablePayloadConverter(EncodingPayloadConverter):
    """Refuses to turn a marker into a value; writes nothing (to_payload declines)."""

    @property
    def encoding(self) -> str:
        return ENCODING

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise undecodable_error(reason(payload) or UNKNOWN_REASON)
