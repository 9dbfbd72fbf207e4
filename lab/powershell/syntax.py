"""What the parser makes of a statement: the commands of a pipeline, a setting, a
string to print; the interpreter and the cmdlets only read them (they are frozen)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Command:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Statement:
    text: str
    # None for a setting or a string statement.
    commands: tuple[Command, ...] | None
    # A setting: (variable, value), e.g. ("ErrorActionPreference", "Stop"),
    # ("OutputEncoding", "UTF8").
    setting: tuple[str, str] | None = None
    # A string statement: the string it prints.
    output: str | None = None
    line: int = 1
    # A part of $PSVersionTable.PSVersion ('Major' or 'Minor'): the number it prints.
    psversion: str | None = None
    # `ConvertTo-Json -InputObject @(pipeline) -Compress`: the pipeline's objects as
    # one JSON array, `[]` for none (commands ends with that ConvertTo-Json).
    array: bool = False
    # `try { <pipeline> } catch { }`: a terminating error of the pipeline goes to the
    # catch block, which prints nothing ("silent") or the error's message ("message":
    # `catch { $_.Exception.Message }`), and the script goes on (about_Try_Catch_Finally).
    catch: Literal["silent", "message"] | None = None
