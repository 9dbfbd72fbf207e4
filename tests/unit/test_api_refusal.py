"""The operator API's one refusal: its kind is what the CLI turns into an exit code and
the console into an HTTP status; the CLI's own errors are refusals too."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import BaseModel, Field, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from api.refusal import EXIT_FAIL, EXIT_USAGE, RefusalKind, Refused, refusal_of, server_refused
from client.session import CliError
from console.site import HTTP_STATUS


def test_every_kind_has_an_exit_code_and_an_http_status() -> None:
    codes = {k: Refused("x", k).code for k in get_args(RefusalKind)}
    assert codes == {
        "usage": EXIT_USAGE,
        "not-found": EXIT_USAGE,
        "refused": EXIT_FAIL,
        "forbidden": EXIT_FAIL,
        "login": EXIT_FAIL,
    }
    assert set(HTTP_STATUS) == set(get_args(RefusalKind))
    assert HTTP_STATUS["not-found"] == 404 and HTTP_STATUS["usage"] == 400


def test_a_cli_error_is_a_refusal_with_its_own_code() -> None:
    e = CliError("bad", EXIT_USAGE)
    assert isinstance(e, Refused) and e.code == EXIT_USAGE and e.kind == "usage"
    assert CliError("no").code == EXIT_FAIL
    made = CliError.of(Refused("no such run: r1", "not-found"))
    assert isinstance(made, CliError) and made.code == EXIT_USAGE and str(made) == "no such run: r1"
    assert CliError.of(e) is e
    assert Refused.with_code("h", EXIT_USAGE).kind == "usage"
    assert Refused.with_code("h", EXIT_FAIL).kind == "refused"


class _Input(BaseModel):
    reason: str = Field(max_length=3)


def test_what_callers_turn_into_a_refusal() -> None:
    with pytest.raises(ValidationError) as v:
        _Input(reason="too long")
    bad = refusal_of(v.value)
    assert bad is not None and bad.kind == "usage" and bad.message.startswith("bad input: --reason")
    rpc = RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    busy = refusal_of(rpc)
    assert busy is not None and busy.kind == "refused" and busy.message == server_refused(rpc)
    assert refusal_of(KeyError("x")) is None
