"""The one refusal of the operator API: a sentence saying why, and its kind. The CLI
maps the kind to its exit code (`code`), the console to its HTTP status; neither
decides again what was refused."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError
from temporalio.service import RPCError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# usage: the request is malformed (an unknown step, a bad run id, a missing reason);
# not-found: no such run; refused: a well-formed request the pair or a rule refuses;
# forbidden / login: who asks may not (the console's sessions and roles).
RefusalKind = Literal["usage", "not-found", "refused", "forbidden", "login"]


class Refused(Exception):
    """An expected refusal: one clear sentence, never a traceback."""

    def __init__(self, message: str, kind: RefusalKind = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.kind: RefusalKind = kind

    @classmethod
    def with_code(cls, message: str, code: int) -> Refused:
        """A refusal from an exit code (a history's error carries one)."""
        return cls(message, "usage" if code == EXIT_USAGE else "refused")

    @property
    def code(self) -> int:
        """The CLI's exit code: 2 for a request it should not have made, else 1."""
        return EXIT_USAGE if self.kind in ("usage", "not-found") else EXIT_FAIL


def server_refused(e: RPCError) -> str:
    """A refusal of the Temporal server that no request explains itself (busy, the run
    closing just as it was asked), said in one line."""
    return (
        f"the Temporal server refused a request ({e.status.name}: {e.message}); "
        "`amsm show current` says where the pair stands, then try again"
    )


# The model's field where the command line's flag has another name.
FLAG_OF = {"initiator": "operator", "clients": "client", "hosts": "host"}


def bad_arguments(e: ValidationError) -> str:
    """An input outside the limits every workflow enforces, field by field."""
    parts = []
    for err in e.errors()[:5]:
        field = str(err["loc"][0]) if err["loc"] else "input"
        where = "--" + FLAG_OF.get(field, field).replace("_", "-")
        msg = err["msg"]
        if err["type"] == "string_pattern_mismatch":
            msg = "must be one line, without control characters"
        parts.append(f"{where}: {msg}")
    return "bad input: " + "; ".join(parts) + " (limits: docs/reference/limits.md)"


# What `refusal_of` turns into a refusal, for a caller that catches them (the console's
# buttons, console/site.py): it then needs no Temporal exception of its own.
REFUSALS: tuple[type[Exception], ...] = (Refused, ValidationError, RPCError)


def refusal_of(e: Exception) -> Refused | None:
    """What the API's callers turn into a refusal: an input out of bounds (usage) or a
    refusal of the server no request explains (the server busy, the run closing)."""
    if isinstance(e, Refused):
        return e
    if isinstance(e, ValidationError):
        return Refused(bad_arguments(e), "usage")
    if isinstance(e, RPCError):
        return Refused(server_refused(e))
    return None
