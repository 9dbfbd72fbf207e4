"""pywinrm's Command and Receive messages, rendered once as templates and filled in.

pywinrm builds every message as a nested dict and renders it with xmltodict, which
cost the worker more than the HTTP request itself when hundreds of clients switch at
once. A template here is pywinrm's own rendering of the same request (its
`run_command` / `get_command_output_raw`, with placeholder values, captured before
anything is sent), so the envelope a host receives is byte for byte pywinrm's; only
the message id, shell id, command id and arguments are put in per request.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any, cast
from xml.sax.saxutils import escape

from winrm.protocol import Protocol

_MESSAGE = "AMSM0MESSAGE0ID"
_SHELL = "AMSM0SHELL0ID"
_COMMAND_ID = "AMSM0COMMAND0ID"
_COMMAND = "AMSM0COMMAND"
_ARGUMENTS = "AMSM0ARGUMENTS"
_MESSAGE_ID = re.compile(r"<a:MessageID>uuid:[0-9a-f-]+</a:MessageID>")
# One pass over the template: a value put in is never searched for placeholders.
_PLACEHOLDER = re.compile("AMSM0(?:MESSAGE0ID|SHELL0ID|COMMAND0ID|COMMAND|ARGUMENTS)")
_DONE = "CommandState/Done"

_templates: dict[tuple[Any, ...], str] = {}
_lock = threading.Lock()


class _Capture(Protocol):
    """Renders pywinrm's message for a request and sends nothing."""

    def __init__(self, operation_timeout_sec: int) -> None:  # no transport needed
        self.operation_timeout_sec = operation_timeout_sec
        self.max_env_sz = Protocol.DEFAULT_MAX_ENV_SIZE
        self.locale = Protocol.DEFAULT_LOCALE
        self.captured = ""

    def send_message(self, message: str) -> bytes:
        self.captured = message
        return b"<r><CommandId>x</CommandId></r>"


def _template(key: tuple[Any, ...], operation_timeout_sec: int, render: Any) -> str:
    with _lock:
        found = _templates.get(key)
    if found is None:
        capture = _Capture(operation_timeout_sec)
        render(capture)
        found, n = _MESSAGE_ID.subn(f"<a:MessageID>uuid:{_MESSAGE}</a:MessageID>", capture.captured)
        if n != 1:
            raise RuntimeError("pywinrm's message has no MessageID to fill in")
        with _lock:
            _templates[key] = found
    return found


def command_message(
    operation_timeout_sec: int,
    shell_id: str,
    command: str,
    arguments: Iterable[str],
    console_mode_stdin: bool = True,
    skip_cmd_shell: bool = False,
) -> str:
    """What pywinrm's `run_command` sends for these arguments (a new message id)."""
    args = list(arguments)
    key = ("command", operation_timeout_sec, console_mode_stdin, skip_cmd_shell, bool(args))
    tpl = _template(
        key,
        operation_timeout_sec,
        lambda p: Protocol.run_command(
            p, _SHELL, _COMMAND, [_ARGUMENTS] if args else [], console_mode_stdin, skip_cmd_shell
        ),
    )
    return _fill(
        tpl,
        {
            _MESSAGE: str(uuid.uuid4()),
            _SHELL: escape(shell_id),
            _COMMAND: escape(command),
            _ARGUMENTS: escape(" ".join(args)),
        },
    )


def receive_message(operation_timeout_sec: int, shell_id: str, command_id: str) -> str:
    """What pywinrm's `get_command_output_raw` sends (a new message id)."""
    tpl = _template(
        ("receive", operation_timeout_sec),
        operation_timeout_sec,
        lambda p: Protocol.get_command_output_raw(p, _SHELL, _COMMAND_ID),
    )
    return _fill(
        tpl,
        {_MESSAGE: str(uuid.uuid4()), _SHELL: escape(shell_id), _COMMAND_ID: escape(command_id)},
    )


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], template)


def parse_command_id(response: bytes) -> str:
    root = ET.fromstring(response)
    node = next(n for n in root.iter() if n.tag.endswith("CommandId"))
    return cast(str, node.text)


def parse_receive(response: bytes) -> tuple[bytes, bytes, int, bool]:
    """(stdout, stderr, exit code, done) of a Receive answer, as pywinrm reads it."""
    root = ET.fromstring(response)
    stdout: list[bytes] = []
    stderr: list[bytes] = []
    done = False
    code = -1
    exit_text: str | None = None
    for node in root.iter():
        tag = node.tag
        if tag.endswith("Stream") and node.text:
            name = node.attrib.get("Name")
            if name == "stdout":
                stdout.append(base64.b64decode(node.text.encode("ascii")))
            elif name == "stderr":
                stderr.append(base64.b64decode(node.text.encode("ascii")))
        elif node.get("State", "").endswith(_DONE):
            done = True
        elif tag.endswith("ExitCode") and exit_text is None:
            exit_text = node.text
    if done:
        code = int(exit_text or -1)
    return b"".join(stdout), b"".join(stderr), code, done


class TemplatedProtocol(Protocol):
    """pywinrm's Protocol, its Command and Receive sent from templates."""

    def run_command(
        self,
        shell_id: str,
        command: str,
        arguments: Iterable[str | bytes] = (),
        console_mode_stdin: bool = True,
        skip_cmd_shell: bool = False,
    ) -> str:
        args = [a if isinstance(a, str) else a.decode("utf-8") for a in arguments]
        try:
            message = command_message(
                self.operation_timeout_sec,
                shell_id,
                command,
                args,
                console_mode_stdin,
                skip_cmd_shell,
            )
        except Exception:  # a pywinrm whose message cannot be captured: its own way
            return super().run_command(shell_id, command, args, console_mode_stdin, skip_cmd_shell)
        return parse_command_id(self.send_message(message))

    def get_command_output_raw(
        self, shell_id: str, command_id: str
    ) -> tuple[bytes, bytes, int, bool]:
        try:
            message = receive_message(self.operation_timeout_sec, shell_id, command_id)
        except Exception:  # as above
            return super().get_command_output_raw(shell_id, command_id)
        return parse_receive(self.send_message(message))
