"""The lexer: a script split into statements of tokens, refusing anything outside the
subset (a double-quoted string, a variable other than $true/$false, a sub-expression, a
backtick, `&`, a comment...) before any of it runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lab.powershell.errors import Unsupported

QUOTES = "'\u2018\u2019\u201a\u201b"


# -- tokens ----------------------------------------------------------------------------
TokenKind = Literal[
    "word",
    "string",
    "param",
    "variable",
    "int",
    "comma",
    "pipe",
    "assign",
    "static",
    "psversion",
    "open",
    "close",
    "method",
    "brace",
    "errmsg",
]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    value: str
    # A parameter written `-Name:value` binds the next token as its value.
    colon: bool = False


@dataclass(frozen=True)
class RawStatement:
    text: str
    tokens: tuple[Token, ...]
    line: int = 1


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PARAM = re.compile(r"-([A-Za-z][A-Za-z0-9]*)(:?)")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# The one automatic variable read: a part of $PSVersionTable.PSVersion, printed alone.
_PSVERSION = re.compile(r"\$PSVersionTable\.PSVersion\.(Major|Minor)", re.I)
_INT = re.compile(r"[0-9]+")
# The one read of the error a catch block handles: its message, printed alone
# (about_Try_Catch_Finally: "$_" in a catch block is the ErrorRecord of the error caught).
ERROR_MESSAGE = "$_.Exception.Message"
# A static member of a type: [Console]::OutputEncoding
_STATIC = re.compile(r"\[([A-Za-z][A-Za-z.]*)\]::([A-Za-z][A-Za-z0-9]*)")
_SPACE = " \t\r"
_SEPARATORS = "\n;"
# What may follow a word, number, string or variable without a space.
_DELIMITERS = _SPACE + _SEPARATORS + "|,)}"


def _statement_text(src: str, start: int, at: int) -> str:
    """The source of the statement that holds position `at`, for an error message."""
    end = len(src)
    for sep in _SEPARATORS:
        i = src.find(sep, at)
        if i != -1:
            end = min(end, i)
    return src[start:end].strip()


# `(Get-Service -Name 'X').Start()`: ServiceController.Start(), which asks the service
# control manager to start the service and returns without waiting for it to run (.NET,
# ServiceController.Start: StartService; Microsoft Learn's example waits itself with
# WaitForStatus). The lab runs it as the pseudo-cmdlet SERVICE_START.
START_METHOD_CALL = ").Start()"
SERVICE_START = "ServiceController.Start"


def _quoted(src: str, i: int, fail: Callable[[str], Unsupported]) -> tuple[str, int]:
    """The single-quoted string that opens at src[i]: its text and where it ends."""
    n = len(src)
    out: list[str] = []
    j = i + 1
    while True:
        if j >= n:
            raise fail("unterminated single-quoted string")
        if src[j] in QUOTES:
            if j + 1 < n and src[j + 1] in QUOTES:
                # PowerShell keeps the second quote of a doubled pair.
                out.append(src[j + 1])
                j += 2
                continue
            j += 1
            break
        out.append(src[j])
        j += 1
    return "".join(out), j


def _param(src: str, i: int, fail: Callable[[str], Unsupported]) -> tuple[Token, int]:
    """The parameter (`-Name` or `-Name:`) at src[i], and where it ends."""
    n = len(src)
    m = _PARAM.match(src, i)
    assert m is not None
    colon = m.group(2) == ":"
    if colon:
        if m.end() >= n or src[m.end()] in _DELIMITERS:
            raise fail("-Param: must be followed directly by its value")
    elif m.end() < n and src[m.end()] not in _DELIMITERS:
        raise fail(f"unexpected character after -{m.group(1)}")
    return Token("param", m.group(1), colon=colon), m.end()


_PUNCTUATION: dict[str, TokenKind] = {"|": "pipe", ",": "comma", "=": "assign"}


def _block_token(src: str, i: int) -> Token | None:
    """A brace of `try { ... } catch { ... }` (parser.py _try_statement; a block is one
    line of the script, its braces spaced), or the catch block's $_.Exception.Message."""
    if src[i] in "{}":
        return Token("brace", src[i])
    if src.startswith(ERROR_MESSAGE, i):
        return Token("errmsg", ERROR_MESSAGE)
    return None


def tokenize(src: str) -> list[RawStatement]:
    """Split a script into statements of tokens; raise Unsupported on anything else."""
    statements: list[RawStatement] = []
    tokens: list[Token] = []
    start = 0
    i = 0
    n = len(src)
    line = 1

    def fail(why: str) -> Unsupported:
        return Unsupported(_statement_text(src, start, i), why)

    def delimited(j: int, extra: str = "") -> bool:
        return j >= n or src[j] in _DELIMITERS + extra

    while i < n:
        c = src[i]
        if c in _SPACE:
            i += 1
        elif c in _SEPARATORS:
            text = src[start:i].strip()
            if tokens:
                statements.append(RawStatement(text, tuple(tokens), line))
            tokens = []
            line += c == "\n"
            i += 1
            start = i
        elif c in QUOTES:
            text, j = _quoted(src, i, fail)
            if not delimited(j):
                raise fail("a quoted string must be followed by a space, ',' or '|'")
            tokens.append(Token("string", text))
            i = j
        elif c == "[":
            m = _STATIC.match(src, i)
            if not m or not delimited(m.end(), "="):
                raise fail("only [Console]::OutputEncoding and [System.Text.Encoding]::UTF8")
            tokens.append(Token("static", f"{m.group(1)}::{m.group(2)}"))
            i = m.end()
        elif c in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[c], c))
            i += 1
        elif c == "@" and src.startswith("@(", i):
            tokens.append(Token("open", "@("))
            i += 2
        elif c == "(" and not tokens:
            # `(Get-Service -Name 'X').Start()`: the one method call the builders write.
            tokens.append(Token("open", "("))
            i += 1
        elif src.startswith(START_METHOD_CALL, i):
            if not delimited(i + len(START_METHOD_CALL)):
                raise fail("unexpected character after .Start()")
            tokens.append(Token("method", "Start"))
            i += len(START_METHOD_CALL)
        elif c == ")":
            if not delimited(i + 1):
                raise fail("unexpected character after ')'")
            tokens.append(Token("close", c))
            i += 1
        elif (block := _block_token(src, i)) is not None:
            if not delimited(i + len(block.value)):
                raise fail(f"unexpected character after {block.value!r}")
            tokens.append(block)
            i += len(block.value)
        elif c == "$" and (v := _PSVERSION.match(src, i)) is not None and delimited(v.end()):
            tokens.append(Token("psversion", v.group(1).capitalize()))
            i = v.end()
        elif c == "$":
            m = _VARIABLE.match(src, i)
            if not m or not delimited(m.end(), "="):
                raise fail("only $true, $false and $ErrorActionPreference are understood")
            tokens.append(Token("variable", m.group(1)))
            i = m.end()
        elif c == "-" and i + 1 < n and src[i + 1].isascii() and src[i + 1].isalpha():
            token, i = _param(src, i, fail)
            tokens.append(token)
        elif c.isascii() and c.isdigit():
            m = _INT.match(src, i)
            assert m is not None
            if not delimited(m.end()):
                raise fail("a number must be followed by a space, ',' or '|'")
            tokens.append(Token("int", m.group(0)))
            i = m.end()
        elif c.isascii() and (c.isalpha() or c == "_"):
            m = _WORD.match(src, i)
            assert m is not None
            if not delimited(m.end()):
                raise fail(f"unexpected character after {m.group(0)!r}")
            tokens.append(Token("word", m.group(0)))
            i = m.end()
        else:
            raise fail(f"character {c!r} outside single quotes")
    if tokens:
        statements.append(RawStatement(src[start:].strip(), tuple(tokens), line))
    return statements
