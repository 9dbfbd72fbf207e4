"""Reading a payload that comes from outside (a workflow input, a signal) into its model.

The workflows that anyone can start, and the signals anyone can send, take raw payloads
and read them here, so that a payload that is too big, is not JSON, does not fit the
model or could not be decrypted is refused with a sentence, instead of failing the
workflow task again and again (a run that never starts, or that stalls until a reset).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ApplicationError

from wire import payloads
from workflows.limits import MAX_CONTINUED_BYTES, MAX_PAYLOAD_BYTES, cut

M = TypeVar("M", bound=BaseModel)


class BadPayload(ValueError):
    """A payload that cannot be read into its model; the message says why, briefly.
    `undecodable`: the codec could not decrypt it (wire/payloads.py)."""

    def __init__(self, message: str, undecodable: bool = False) -> None:
        super().__init__(message)
        self.undecodable = undecodable


def _summary(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    more = len(e.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def read(model: type[M], raw: RawValue, limit: int = MAX_PAYLOAD_BYTES) -> M:
    """The payload as `model`, or BadPayload saying what is wrong (never the payload)."""
    return read_payload(model, raw.payload, workflow.payload_converter(), limit)


def read_payload(
    model: type[M], payload: Payload, converter: PayloadConverter, limit: int = MAX_PAYLOAD_BYTES
) -> M:
    """`read` with the converter given: it needs no workflow around it, so that a history
    read back (records/history.py) says of a malformed signal what the engine said."""
    why = payloads.reason(payload)  # what the codec left of a payload it could not decrypt
    if why is not None:
        raise BadPayload(f"payload could not be decrypted: {why}", undecodable=True)
    size = len(payload.data)
    if size > limit:
        raise BadPayload(f"payload of {size} bytes is over the limit of {limit}")
    try:
        data: Any = converter.from_payload(payload, dict)
    except Exception as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise BadPayload(f"not a JSON object: {cut(first)}") from None
    if not isinstance(data, dict):
        raise BadPayload(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadPayload(cut(_summary(e), 400)) from None


def read_input(model: type[M], raw: RawValue, what: str) -> M:
    """A workflow's input; a bad one fails the run at once, saying why. Only a run's own
    continuation (continue-as-new) may carry `resume`, the state it goes on from, and it
    may be bigger. The server also names a run before for a cron run and a retry of a
    whole workflow, which anyone who starts a workflow can ask for (a cron schedule, a
    retry policy with a short run timeout) with the `resume` they like: neither is a
    continuation. amsm starts its runs with neither."""
    info = workflow.info()
    continued = info.continued_run_id is not None and not info.cron_schedule and info.attempt == 1
    try:
        inp = read(model, raw, MAX_CONTINUED_BYTES if continued else MAX_PAYLOAD_BYTES)
        if getattr(inp, "resume", None) is not None and not continued:
            raise BadPayload("resume: only a run's own continuation (continue-as-new) has one")
        return inp
    except BadPayload as e:
        raise ApplicationError(
            f"{what} refused: bad input: {e}", type="BadInput", non_retryable=True
        ) from None
