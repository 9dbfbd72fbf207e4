"""What a script prints, as powershell.exe does with redirected output
(`ScriptResult.wire`):
- a statement prints its output lines; one that has nothing to say prints nothing
  at all (an empty pipeline into ConvertTo-Json writes nothing: ConvertToJsonCommand
  writes only in EndProcessing, and only when it received objects); a string
  statement prints the string;
- stdout is in the console's OEM code page (cp850 here) unless the script set
  `[Console]::OutputEncoding` to UTF-8; lines end with CRLF;
- a failing statement's error goes to stderr as CLIXML (an `<S S="Error">` per line
  of the error as the console shows it), and so do progress records unless
  `$ProgressPreference = 'SilentlyContinue'`;
- the exit status is 1 after a terminating error, else 1 when the last statement's
  `$?` is false (an error silenced with -ErrorAction SilentlyContinue still makes it
  false), else 0 (about_PowerShell_exe, -Command: "the exit code is determined by
  status of the last command").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# The console's OEM code page of a Western European Windows (cp437 in the US).
OEM_CODEPAGE = "cp850"


@dataclass
class ScriptResult:
    """What powershell.exe printed: `stdout` as text ('\n' line ends), `stderr` as the
    console would show its error records (or the transport's own refusal when
    `clixml` is False); `wire()` gives the bytes a redirected powershell.exe writes."""

    stdout: str
    stderr: str
    exit_status: int
    # Restart-Computer ran: the host goes down once the command has returned.
    reboot: bool = False
    # stderr is PowerShell's (serialised as CLIXML on the wire), not the transport's.
    clixml: bool = True
    # Seconds the script spent waiting on the host (Stop-Service waiting on dependents):
    # the listeners answer this much later (lab/host.py run_script).
    waited: float = 0.0
    # Progress records written (their activity), in order.
    progress: tuple[str, ...] = ()
    # Where in stdout the script had set UTF-8 output (None: it never did); errors
    # come after every output line, in the encoding set by then.
    utf8_from: int | None = None

    def wire(self, codepage: str = OEM_CODEPAGE) -> tuple[bytes, bytes]:
        """(stdout, stderr) bytes as written to pipes: CRLF line ends, text in the
        console's `codepage` until the script set UTF-8 (characters the code page
        lacks become '?', as WideCharToMultiByte's default character), stderr CLIXML."""
        cut = len(self.stdout) if self.utf8_from is None else self.utf8_from
        head, tail = self.stdout[:cut], self.stdout[cut:]
        out = _crlf(head).encode(codepage, errors="replace") + _crlf(tail).encode("utf-8")
        err_encoding = codepage if self.utf8_from is None else "utf-8"
        if self.clixml:
            err = clixml_stderr(self.progress, self.stderr)
        else:
            err = _crlf(self.stderr)
        return out, err.encode(err_encoding, errors="replace")


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# -- CLIXML on stderr ---------------------------------------------------------------------------
# powershell.exe with a redirected stderr and a non-interactive, encoded command writes
# its error, and progress, records as CLIXML: a `#< CLIXML` line, then one <Objs>
# document, each line of an error as the console shows it one <S S="Error"> ending in
# an escaped CRLF (PowerShell/PowerShell issue #5912 shows the shape; progress records
# are <Obj S="progress"> with a <PR N="Record"> as in ansible/ansible issue #67964).
# Strings escape what XML cannot carry, and a '_' that would read as an escape, as
# _xHHHH_ (PowerShell's serializer, engine/serialization.cs).
CLIXML_HEAD = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
)
_XML_UNSAFE = re.compile(r"[\x00-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")


def clixml_string(text: str) -> str:
    escaped = _XML_UNSAFE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _progress_record(ref: int, activity: str) -> str:
    types = (
        '<TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>'
        if ref == 0
        else '<TNRef RefId="0" />'
    )
    return (
        f'<Obj S="progress" RefId="{ref}">{types}<MS><I64 N="SourceId">1</I64>'
        f'<PR N="Record"><AV>{clixml_string(activity)}</AV><AI>0</AI><Nil /><PI>-1</PI>'
        "<PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"
    )


def clixml_stderr(progress: tuple[str, ...], errors: str) -> str:
    """The stderr powershell.exe writes for these progress records and error text."""
    if not progress and not errors:
        return ""
    parts = [_progress_record(i, a) for i, a in enumerate(progress)]
    for line in errors.splitlines():
        parts.append('<S S="Error">' + clixml_string(line + "\r\n") + "</S>")
    return CLIXML_HEAD + "".join(parts) + "</Objs>"


# Windows PowerShell 5.1's ConvertTo-Json serialises with .NET's JavaScriptSerializer:
# text outside ASCII as it is, and < > & ' as \u escapes (for HTML safety).
_JSON_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def to_json(value: Any, array: bool = False) -> str:
    """ConvertTo-Json -Compress: one line; an empty pipeline prints nothing (''). With
    `array` (-InputObject @(...)): a list as a JSON array whatever its length."""
    if isinstance(value, list) and not array:
        if not value:
            return ""
        if len(value) == 1:
            value = value[0]
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "".join(_JSON_HTML.get(c, c) for c in text)
