"""The WinRM message templates send exactly what pywinrm would, and read answers as it does."""

from __future__ import annotations

import base64
import uuid

import pytest
from winrm.protocol import Protocol

from activities.drivers import winrm_messages as wm
from activities.drivers.winrm import command_arguments

FIXED = uuid.UUID("12345678-1234-5678-1234-567812345678")


class Sent(Protocol):
    """pywinrm's own code path; keeps what it would send and answers `reply`."""

    def __init__(self, operation_timeout_sec: int, reply: bytes) -> None:
        self.operation_timeout_sec = operation_timeout_sec
        self.reply = reply
        self.sent = ""

    def send_message(self, message: str) -> bytes:
        self.sent = message
        return self.reply


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uuid, "uuid4", lambda: FIXED)


COMMAND_REPLY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body>'
    b"<rsp:CommandResponse><rsp:CommandId>C-1</rsp:CommandId></rsp:CommandResponse>"
    b"</s:Body></s:Envelope>"
)


@pytest.mark.parametrize(
    "args",
    [
        command_arguments("$ErrorActionPreference = 'Stop'\nGet-Service 'a&b' | ConvertTo-Json"),
        ["-NoProfile", "<odd> & \"quoted\" 'AMSM0COMMAND0ID' AMSM0SHELL0ID"],
        [],
    ],
)
@pytest.mark.parametrize("timeout", [20, 5])
def test_command_is_pywinrms_message(fixed_ids: None, args: list[str], timeout: int) -> None:
    p = Sent(timeout, COMMAND_REPLY)
    assert Protocol.run_command(p, "SHELL-&-1", "powershell.exe", args, True, True) == "C-1"
    ours = wm.command_message(timeout, "SHELL-&-1", "powershell.exe", args, True, True)
    assert ours == p.sent
    assert wm.parse_command_id(COMMAND_REPLY) == "C-1"


def test_receive_is_pywinrms_message(fixed_ids: None) -> None:
    p = Sent(20, b"<r/>")
    Protocol.get_command_output_raw(p, "S-1", "C<1>")
    assert wm.receive_message(20, "S-1", "C<1>") == p.sent


def receive_reply(streams: list[tuple[str, bytes]], state: str, code: int | None) -> bytes:
    parts = "".join(
        f'<rsp:Stream Name="{n}" CommandId="C-1">{base64.b64encode(d).decode()}</rsp:Stream>'
        for n, d in streams
    )
    parts += '<rsp:Stream Name="stdout" CommandId="C-1" End="true"></rsp:Stream>'
    exit_code = f"<rsp:ExitCode>{code}</rsp:ExitCode>" if code is not None else ""
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body>'
        f"<rsp:ReceiveResponse>{parts}"
        f'<rsp:CommandState CommandId="C-1" '
        f'State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/{state}">'
        f"{exit_code}</rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    "reply",
    [
        receive_reply(
            [("stdout", b"line 1\n"), ("stderr", b"oops\n"), ("stdout", b"2\n")], "Done", 0
        ),
        receive_reply([("stdout", "é\n".encode())], "Done", 3),
        receive_reply([("stdout", b"partial")], "Running", None),
        receive_reply([], "Done", 1),
    ],
)
def test_receive_answers_are_read_as_pywinrm_reads_them(reply: bytes) -> None:
    p = Sent(20, reply)
    assert wm.parse_receive(reply) == Protocol.get_command_output_raw(p, "S-1", "C-1")


def test_a_message_that_cannot_be_captured_goes_pywinrms_own_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(wm.TemplatedProtocol, Sent):
        pass

    def cannot(*_: object) -> str:
        raise RuntimeError("no template")

    monkeypatch.setattr(wm, "command_message", cannot)
    p = Broken(20, COMMAND_REPLY)
    assert p.run_command("S-1", "powershell.exe", ["-NoProfile"]) == "C-1"
    assert "<rsp:Arguments>-NoProfile</rsp:Arguments>" in p.sent
