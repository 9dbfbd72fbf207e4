"""The parser: the PowerShell subset a simulated Windows host understands.

The lab accepts exactly the statements that `activities.drivers.powershell` builds
and refuses everything else *before running any of it*: an unknown cmdlet, an
unknown or missing parameter, a pipeline shape the builders never produce, a
double-quoted string, a variable other than `$true`/`$false`, a sub-expression, a
backtick, `&`, a comment... The refusal is a parse error,
`amsm-lab: unsupported PowerShell: <the statement>`, and exit status 1, so a driver
that drifts from the subset fails loudly in tests instead of silently "working".

Values are never evaluated: a single-quoted literal (quote characters ' ‘ ’ ‚ ‛,
doubled to escape) is text, whatever it contains.

Grammar::

    script    = statement { (NEWLINE | ';') statement }
    statement = setting | 'single-quoted' | pipeline
              | "ConvertTo-Json -InputObject @(" pipeline ") -Compress"
              | "try {" pipeline "} catch {" [ "$_.Exception.Message" ] "}"
    pipeline  = command { '|' command }
    setting   = "$ErrorActionPreference = 'Stop'"
              | "$ProgressPreference = 'SilentlyContinue'" | "$ProgressPreference = 'Continue'"
              | "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8"
    command   = CMDLET { '-Param' [':' value] | value }
    value     = literal { ',' literal }
    literal   = 'single-quoted' | $true | $false | INTEGER | BAREWORD

A script must begin with `$ErrorActionPreference = 'Stop'` (what `script()` writes),
so the first failing statement ends it. What it prints: output.py.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from lab.powershell.errors import Unsupported
from lab.powershell.files import CHILD_ITEM_PROPERTIES
from lab.powershell.iscsi import (
    CONNECTION_PROPERTIES,
    ISCSICLI,
    ISCSICLI_VERBS,
    SESSION_PROPERTIES,
)
from lab.powershell.lexer import SERVICE_START, RawStatement, Token, tokenize
from lab.powershell.syntax import Command, Statement
from lab.powershell.wmi import CIM_CLASSES
from lab.powershell.writefilter import UWF_NAMESPACE

PREAMBLE_VARIABLE = "ErrorActionPreference"
# The settings a script may make, by variable (lower case): the values understood.
SETTINGS = {
    "erroractionpreference": ("ErrorActionPreference", ("Stop",)),
    "progresspreference": ("ProgressPreference", ("SilentlyContinue", "Continue")),
}
# [Console]::OutputEncoding = [System.Text.Encoding]::UTF8, in the spellings PowerShell
# resolves to the same type and property (type names without System., any case).
_CONSOLE_TYPES = ("console", "system.console")
_ENCODING_TYPES = ("text.encoding", "system.text.encoding")


# -- values and parameters ---------------------------------------------------------------
LiteralKind = Literal["string", "word", "int", "bool"]


@dataclass(frozen=True)
class Lit:
    kind: LiteralKind
    value: str | int | bool


Value = Lit | tuple[Lit, ...]

ParamKind = Literal["text", "texts", "choice", "names", "int", "ints", "bool", "switch"]


@dataclass(frozen=True)
class Param:
    """How one parameter binds: its kind, allowed choices, a switch's required value."""

    kind: ParamKind
    choices: tuple[str, ...] = ()
    # A switch the builders always write with this value (`-Confirm:$false`).
    switch_value: bool = True


@dataclass(frozen=True)
class CmdletSpec:
    name: str
    params: dict[str, Param]
    positional: tuple[str, ...] = ()
    # Properties Select-Object may pick from this cmdlet's output; None: any name.
    properties: tuple[str, ...] | None = ()
    # The parameter sets the builders write (each exactly); None: every parameter.
    sets: tuple[frozenset[str], ...] | None = None


_TEXT = Param("text")


def _spec(
    name: str,
    params: dict[str, Param],
    positional: tuple[str, ...] = (),
    properties: tuple[str, ...] | None = (),
    sets: tuple[tuple[str, ...], ...] | None = None,
) -> CmdletSpec:
    return CmdletSpec(
        name, params, positional, properties, tuple(frozenset(x) for x in sets) if sets else None
    )


# Every parameter listed is required: the builders always write all of them, and a
# statement without one (Stop-Service without -Force, say) is not in the subset.
CMDLETS: dict[str, CmdletSpec] = {
    s.name.lower(): s
    for s in (
        _spec(
            "Get-Service",
            {
                "Name": Param("texts"),
                "DependentServices": Param("switch"),
                "ErrorAction": Param("choice", ("SilentlyContinue",)),
            },
            properties=("Name", "DisplayName", "Status", "StartType"),
            sets=(("Name",), ("Name", "DependentServices"), ("Name", "ErrorAction")),
        ),
        _spec("Start-Service", {"Name": _TEXT}),
        # Always -NoWait: without it Stop-Service waits as long as the service takes,
        # forever for one stuck in StopPending (Microsoft Learn, Stop-Service -NoWait).
        # With or without -Force (see services.py ServiceCmdlets._stop_service).
        _spec(
            "Stop-Service",
            {"Name": _TEXT, "Force": Param("switch"), "NoWait": Param("switch")},
            sets=(("Name", "Force", "NoWait"), ("Name", "NoWait")),
        ),
        _spec(
            "Get-Process",
            {"Name": Param("texts"), "ErrorAction": Param("choice", ("SilentlyContinue",))},
            properties=("Name", "Id"),
        ),
        # One process by its Id (-Id <Int32[]>; the builders write one), with -Force (no
        # confirmation for another user's process) and no -ErrorAction: a process that
        # cannot be stopped, or is gone, is then the statement's error, caught
        # (processes.py; PowerShell's Process.cs, StopProcessCommand).
        _spec("Stop-Process", {"Id": Param("ints"), "Force": Param("switch")}),
        # By Id too, with -Timeout (without it Wait-Process waits for as long as the
        # process runs) and SilentlyContinue (an Id gone, one still running after the
        # timeout: the caller reads again).
        _spec(
            "Wait-Process",
            {
                "Id": Param("ints"),
                "Timeout": Param("int"),
                "ErrorAction": Param("choice", ("SilentlyContinue",)),
            },
        ),
        _spec("Get-ItemProperty", {"LiteralPath": _TEXT}, properties=None),
        # Only on the WSMan: drive (the service's settings: WSManConfigLeafElement).
        _spec("Get-Item", {"LiteralPath": _TEXT}, properties=("Name", "Value", "Type")),
        _spec("Set-ItemProperty", {"LiteralPath": _TEXT, "Name": _TEXT, "Value": _TEXT}),
        _spec("Copy-Item", {"LiteralPath": _TEXT, "Destination": _TEXT, "Force": Param("switch")}),
        _spec("Rename-Item", {"LiteralPath": _TEXT, "NewName": _TEXT}),
        _spec("Test-Path", {"LiteralPath": _TEXT}),
        _spec("Get-Content", {"LiteralPath": _TEXT, "Raw": Param("switch")}),
        _spec(
            "Get-FileHash",
            {"LiteralPath": _TEXT, "Algorithm": Param("choice", ("SHA256",))},
            properties=("Hash", "Algorithm", "Path"),
        ),
        _spec(
            "Get-ChildItem",
            {
                "LiteralPath": _TEXT,
                "Recurse": Param("switch"),
                "Directory": Param("switch"),
                "Filter": _TEXT,
                "Force": Param("switch"),
            },
            properties=CHILD_ITEM_PROPERTIES,
            sets=(("LiteralPath", "Recurse", "Directory", "Filter"), ("LiteralPath", "Force")),
        ),
        _spec("Measure-Object", {}, properties=("Count",)),
        _spec(
            "Remove-Item",
            {"LiteralPath": _TEXT, "Recurse": Param("switch"), "Force": Param("switch")},
            sets=(("LiteralPath", "Recurse", "Force"), ("LiteralPath", "Force")),
        ),
        _spec("Restart-Computer", {"Force": Param("switch")}),
        _spec(
            "Get-CimInstance",
            {
                "Namespace": Param("choice", ("root\\wmi", UWF_NAMESPACE)),
                "ClassName": Param("choice", tuple(CIM_CLASSES)),
            },
            properties=tuple(dict.fromkeys(p for props in CIM_CLASSES.values() for p in props)),
            sets=(("ClassName",), ("Namespace", "ClassName")),
        ),
        _spec(
            "Get-WmiObject",
            {"Class": Param("choice", ("Win32_OperatingSystem",))},
            properties=("CSName", "LastBootUpTime", "LocalDateTime"),
        ),
        _spec(
            "Get-Command",
            {"Name": Param("texts"), "ErrorAction": Param("choice", ("SilentlyContinue",))},
            properties=("Name",),
        ),
        # Only on UWF_Filter, piped from Get-CimInstance (its -InputObject), and only the
        # two methods that take effect at the next boot (Microsoft Learn, UWF_Filter.Enable,
        # UWF_Filter.Disable); prints a CimMethodResult whose ReturnValue is the HRESULT.
        _spec(
            "Invoke-CimMethod",
            {"MethodName": Param("choice", ("Enable", "Disable"))},
            properties=("ReturnValue",),
        ),
        _spec("Get-IscsiSession", {}, properties=SESSION_PROPERTIES),
        _spec("Get-IscsiTarget", {}, properties=("NodeAddress", "IsConnected")),
        _spec("Get-IscsiConnection", {}, properties=CONNECTION_PROPERTIES),
        _spec(
            "Get-IscsiTargetPortal",
            {},
            properties=("TargetPortalAddress", "TargetPortalPortNumber"),
        ),
        _spec(
            "New-IscsiTargetPortal",
            {"TargetPortalAddress": _TEXT, "TargetPortalPortNumber": Param("int")},
        ),
        _spec(
            "Update-IscsiTargetPortal",
            {"TargetPortalAddress": _TEXT, "TargetPortalPortNumber": Param("int")},
        ),
        _spec(
            "Disconnect-IscsiTarget",
            {"NodeAddress": _TEXT, "Confirm": Param("switch", switch_value=False)},
        ),
        _spec(
            "Connect-IscsiTarget",
            {
                "NodeAddress": _TEXT,
                "TargetPortalAddress": _TEXT,
                "TargetPortalPortNumber": Param("int"),
                "IsPersistent": Param("bool"),
            },
        ),
        _spec("Register-IscsiSession", {"SessionIdentifier": _TEXT}),
        _spec("Unregister-IscsiSession", {"SessionIdentifier": _TEXT}),
        _spec(
            "Set-Content",
            {
                "LiteralPath": _TEXT,
                "Value": Param("texts"),
                "Encoding": Param("choice", ("ASCII",)),
            },
        ),
        _spec("Out-Null", {}),
        _spec("Out-String", {}),
        _spec(
            "Test-NetConnection",
            {
                "ComputerName": _TEXT,
                "Port": Param("int"),
                "InformationLevel": Param("choice", ("Quiet",)),
            },
        ),
        _spec("Select-Object", {"Property": Param("names")}, positional=("Property",)),
        _spec("ConvertTo-Json", {"Compress": Param("switch")}),
    )
}

CMDLETS_BY_NAME = tuple(s.name for s in CMDLETS.values())
_SELECT_TO_JSON = ("Select-Object", "ConvertTo-Json")
# The pipelines the builders write, by their first cmdlet (one shape, or several).
PIPELINES: dict[str, tuple[str, ...] | tuple[tuple[str, ...], ...]] = {
    "Get-Service": _SELECT_TO_JSON,
    "Get-Process": _SELECT_TO_JSON,
    "Get-ItemProperty": _SELECT_TO_JSON,
    "Get-Item": _SELECT_TO_JSON,
    "Get-IscsiTarget": _SELECT_TO_JSON,
    "Get-FileHash": _SELECT_TO_JSON,
    "Get-CimInstance": (_SELECT_TO_JSON, ("Invoke-CimMethod", *_SELECT_TO_JSON)),
    "Get-WmiObject": _SELECT_TO_JSON,
    "Get-IscsiSession": _SELECT_TO_JSON,
    "Get-IscsiConnection": _SELECT_TO_JSON,
    "Get-IscsiTargetPortal": _SELECT_TO_JSON,
    "Get-Command": _SELECT_TO_JSON,
    # New-IscsiTargetPortal and Connect-IscsiTarget print the object they made (an
    # MSFT_iSCSITargetPortal, an MSFT_iSCSISession); the lab takes Connect-IscsiTarget
    # alone too, and prints the session as the console's list view does.
    "New-IscsiTargetPortal": ("Out-Null",),
    "Connect-IscsiTarget": ((), ("Out-Null",)),
    "Get-ChildItem": (_SELECT_TO_JSON, ("Measure-Object", *_SELECT_TO_JSON)),
    "Get-Content": ("ConvertTo-Json",),
    **{
        name: ()
        for name in (
            "Start-Service",
            "Stop-Service",
            "Stop-Process",
            "Wait-Process",
            "Set-ItemProperty",
            "Copy-Item",
            "Rename-Item",
            "Test-Path",
            "Remove-Item",
            "Restart-Computer",
            "Disconnect-IscsiTarget",
            "Update-IscsiTargetPortal",
            "Register-IscsiSession",
            "Unregister-IscsiSession",
            "Set-Content",
            "Test-NetConnection",
        )
    },
    # A native command at the end of a pipeline writes straight to powershell.exe's
    # stdout in the console's OEM code page, past [Console]::OutputEncoding
    # (PowerShell/PowerShell#14945): on a localized Windows its text is not the UTF-8
    # the rest of the answer is. The lab refuses it bare, and takes it piped into
    # Out-String, which decodes it as PowerShell text first.
    ISCSICLI: ("Out-String",),
}

_PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_CMDLET_NAME = re.compile(r"^[A-Za-z]+-[A-Za-z]+$")


def _literal(tok: Token, text: str) -> Lit:
    if tok.kind == "string":
        return Lit("string", tok.value)
    if tok.kind == "word":
        return Lit("word", tok.value)
    if tok.kind == "int":
        return Lit("int", int(tok.value))
    if tok.kind == "variable" and tok.value.lower() in ("true", "false"):
        return Lit("bool", tok.value.lower() == "true")
    raise Unsupported(text, f"unexpected {tok.kind} {tok.value!r}")


def _value(tokens: tuple[Token, ...], i: int, text: str) -> tuple[Value, int]:
    """A literal or a comma-separated list of literals starting at tokens[i]."""
    items = [_literal(tokens[i], text)]
    i += 1
    while i < len(tokens) and tokens[i].kind == "comma":
        if i + 1 >= len(tokens):
            raise Unsupported(text, "a list ends with ','")
        items.append(_literal(tokens[i + 1], text))
        i += 2
    return (items[0] if len(items) == 1 else tuple(items)), i


def _bind_one(spec: CmdletSpec, pname: str, p: Param, v: Value | None, text: str) -> Any:
    where = f"{spec.name} -{pname}"
    if p.kind == "switch":
        if v is None:
            given = True
        elif isinstance(v, Lit) and v.kind == "bool":
            given = bool(v.value)
        else:
            raise Unsupported(text, f"{where} takes no value other than $true/$false")
        if given != p.switch_value:
            want = "" if p.switch_value else ":$false"
            raise Unsupported(text, f"{where} is only understood as -{pname}{want}")
        return given
    if v is None:
        raise Unsupported(text, f"{where} needs a value")
    items = v if isinstance(v, tuple) else (v,)
    if p.kind == "texts" or (p.kind == "text" and len(items) == 1):
        if any(item.kind != "string" for item in items):
            raise Unsupported(text, f"{where} takes single-quoted text")
        values = [str(item.value) for item in items]
        return values if p.kind == "texts" else values[0]
    if p.kind == "ints":
        if any(item.kind != "int" for item in items):
            raise Unsupported(text, f"{where} takes whole numbers")
        return [int(item.value) for item in items]
    if p.kind == "names":
        # A bare name, or a quoted one (a registry value's name may hold a space, '.',
        # '(' ...). Select-Object takes wildcards in -Property (Microsoft Learn,
        # Select-Object); the lab does not expand them, so it refuses them.
        names = [str(item.value) for item in items]
        for item, n in zip(items, names, strict=True):
            bare = item.kind == "word" and _PROPERTY_NAME.fullmatch(n)
            quoted = item.kind == "string" and n and not any(c in "*?[]" for c in n)
            if not (bare or quoted):
                raise Unsupported(text, f"{where} takes property names without wildcards")
        return names
    if len(items) != 1:
        raise Unsupported(text, f"{where} takes one value")
    item = items[0]
    if p.kind == "choice" and item.kind in ("word", "string"):
        for choice in p.choices:
            if str(item.value).lower() == choice.lower():
                return choice
        raise Unsupported(text, f"{where} is only understood as {' or '.join(p.choices)}")
    if p.kind == "int" and item.kind == "int":
        return item.value
    if p.kind == "bool" and item.kind == "bool":
        return item.value
    raise Unsupported(text, f"{where} does not take {item.kind} {item.value!r}")


def _command(tokens: tuple[Token, ...], text: str) -> Command:
    if not tokens:
        raise Unsupported(text, "an empty pipeline element")
    head = tokens[0]
    if head.kind == "word" and head.value.lower() == ISCSICLI:
        return _iscsicli(tokens, text)
    if head.kind != "word" or not _CMDLET_NAME.fullmatch(head.value):
        raise Unsupported(text, f"{head.value!r} is not a cmdlet name")
    spec = CMDLETS.get(head.value.lower())
    if spec is None:
        raise Unsupported(text, f"unknown cmdlet {head.value}")
    by_lower = {name.lower(): name for name in spec.params}
    bound: dict[str, Any] = {}
    positional = list(spec.positional)
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        value: Value | None
        if tok.kind == "param":
            pname = by_lower.get(tok.value.lower())
            if pname is None:
                raise Unsupported(text, f"unknown parameter -{tok.value} for {spec.name}")
            p = spec.params[pname]
            i += 1
            if tok.colon:
                value, i = _value(tokens, i, text)
            elif p.kind != "switch" and i < len(tokens) and tokens[i].kind != "param":
                value, i = _value(tokens, i, text)
            else:
                value = None
        else:
            if not positional:
                raise Unsupported(text, f"unexpected value {tok.value!r} for {spec.name}")
            pname = positional.pop(0)
            p = spec.params[pname]
            value, i = _value(tokens, i, text)
        if pname in bound:
            raise Unsupported(text, f"-{pname} given twice")
        if pname in positional:
            positional.remove(pname)
        bound[pname] = _bind_one(spec, pname, p, value, text)
    if spec.sets is not None:
        if frozenset(bound) not in spec.sets:
            shapes = " or ".join(" ".join(f"-{n}" for n in sorted(x)) for x in spec.sets)
            raise Unsupported(text, f"{spec.name} is only understood with {shapes}")
        return Command(spec.name, bound)
    missing = [f"-{name}" for name in spec.params if name not in bound]
    if missing:
        raise Unsupported(text, f"{spec.name} without {', '.join(missing)}")
    return Command(spec.name, bound)


def _iscsicli(tokens: tuple[Token, ...], text: str) -> Command:
    """`iscsicli VERB arg...`: a native command; PowerShell passes each single-quoted
    argument and number as it is. Only the verbs of ISCSICLI_VERBS, with all their
    arguments, as quoted text or numbers."""
    if len(tokens) < 2 or tokens[1].kind != "word":
        raise Unsupported(text, "iscsicli is only understood with a verb")
    verb = ISCSICLI_VERBS.get(tokens[1].value.lower())
    if verb is None:
        raise Unsupported(text, f"iscsicli {tokens[1].value} is not understood")
    name, count = verb
    args = tokens[2:]
    if len(args) != count or any(t.kind not in ("string", "int") for t in args):
        raise Unsupported(text, f"iscsicli {name} takes {count} quoted or numeric arguments")
    return Command(ISCSICLI, {"verb": name, "args": [t.value for t in args]})


def _setting(raw: RawStatement) -> Statement:
    toks, text = raw.tokens, raw.text
    if len(toks) != 3 or toks[1].kind != "assign":
        raise Unsupported(text, "a setting is `$Variable = 'value'`")
    target, value = toks[0], toks[2]
    if target.kind == "static":
        type_name, _, member = target.value.partition("::")
        v_type, _, v_member = value.value.partition("::")
        if (
            type_name.lower() in _CONSOLE_TYPES
            and member.lower() == "outputencoding"
            and value.kind == "static"
            and v_type.lower() in _ENCODING_TYPES
            and v_member.lower() == "utf8"
        ):
            return Statement(text, None, ("OutputEncoding", "UTF8"), line=raw.line)
        raise Unsupported(
            text,
            "the only encoding understood is [Console]::OutputEncoding = [System.Text.Encoding]::UTF8",
        )
    known = SETTINGS.get(target.value.lower()) if target.kind == "variable" else None
    if known is None:
        raise Unsupported(text, f"the lab has no setting {target.value!r}")
    name, choices = known
    if value.kind == "string":
        for choice in choices:
            if value.value.lower() == choice.lower():
                return Statement(text, None, (name, choice), line=raw.line)
    raise Unsupported(text, f"${name} is only understood as {' or '.join(choices)}")


def _statement(raw: RawStatement) -> Statement:
    toks, text = raw.tokens, raw.text
    if toks[0].kind == "word" and toks[0].value.lower() == "try":
        return _try_statement(raw)
    if any(t.kind in ("brace", "errmsg") for t in toks):
        raise Unsupported(text, "{ } only as try { <pipeline> } catch { [$_.Exception.Message] }")
    if any(t.kind == "assign" for t in toks) or (toks and toks[0].kind == "static"):
        return _setting(raw)
    if any(t.kind in ("variable", "static") and t.value.lower() in SETTINGS for t in toks):
        raise Unsupported(text, "a preference variable is only assigned, never read")
    if len(toks) == 1 and toks[0].kind == "string":
        return Statement(text, None, output=toks[0].value, line=raw.line)
    if len(toks) == 1 and toks[0].kind == "psversion":
        return Statement(text, None, line=raw.line, psversion=toks[0].value)
    if any(t.kind == "psversion" for t in toks):
        raise Unsupported(text, "$PSVersionTable.PSVersion.Major/Minor is only printed alone")
    if toks and toks[0].kind == "open" and toks[0].value == "(":
        return _method_statement(raw)
    if any(t.kind == "method" for t in toks):
        raise Unsupported(text, ".Start() only as (Get-Service -Name 'X').Start()")
    if any(t.kind in ("open", "close") for t in toks):
        return _array_statement(raw)
    return Statement(text, _pipeline(toks, text), line=raw.line)


def _method_statement(raw: RawStatement) -> Statement:
    """`(Get-Service -Name 'X').Start()`, one service by one name: SERVICE_START."""
    toks, text = raw.tokens, raw.text
    inner = toks[1:-1]
    if (
        len(toks) < 4
        or toks[-1].kind != "method"
        or any(t.kind in ("open", "close", "method", "pipe") for t in inner)
    ):
        raise Unsupported(text, "( ) only as (Get-Service -Name 'X').Start()")
    command = _command(tuple(inner), text)
    name: list[str] = command.args.get("Name") or []
    if command.name != "Get-Service" or set(command.args) != {"Name"} or len(name) != 1:
        raise Unsupported(text, "( ) only as (Get-Service -Name 'X').Start()")
    return Statement(text, (Command(SERVICE_START, {"Name": name[0]}),), line=raw.line)


def _try_statement(raw: RawStatement) -> Statement:
    """`try { <pipeline> } catch { }` or `... catch { $_.Exception.Message }`, on one
    line: the pipeline's terminating error (under 'Stop', every error it does not
    silence with -ErrorAction) runs the catch block instead of ending the script
    (about_Try_Catch_Finally; about_Preference_Variables, $ErrorActionPreference)."""
    toks, text = raw.tokens, raw.text
    words = [t.value.lower() if t.kind in ("word", "brace") else "" for t in toks]
    try:
        close = words.index("}")
    except ValueError:
        close = -1
    body = toks[2:close]
    handler = toks[close + 3 : -1]
    shape = (
        close > 2
        and words[1] == "{"
        and words[close + 1 : close + 3] == ["catch", "{"]
        and words[-1] == "}"
        and len(toks) - close - 4 in (0, 1)
        and all(t.kind == "errmsg" for t in handler)
        and not any(t.kind in ("brace", "errmsg", "open", "close", "method") for t in body)
    )
    if not shape:
        raise Unsupported(text, "try only as try { <pipeline> } catch { [$_.Exception.Message] }")
    catch: Literal["silent", "message"] = "message" if handler else "silent"
    return Statement(text, _pipeline(body, text), line=raw.line, catch=catch)


# The pipelines written inside `ConvertTo-Json -InputObject @(...)`, by first cmdlet.
ARRAY_PIPELINES: dict[str, tuple[str, ...] | tuple[tuple[str, ...], ...]] = {
    "Get-ChildItem": ("Select-Object",)
}


def _array_statement(raw: RawStatement) -> Statement:
    """`ConvertTo-Json -InputObject @(<pipeline>) -Compress`: the array subexpression
    collects the pipeline's objects and -InputObject takes the array as one object, so
    ConvertTo-Json writes a JSON array whatever the count, `[]` for none
    (about_Arrays, the array subexpression operator; ConvertTo-Json -InputObject)."""
    toks, text = raw.tokens, raw.text
    shape = (
        len(toks) > 5
        and toks[0].kind == "word"
        and toks[0].value.lower() == "convertto-json"
        and toks[1].kind == "param"
        and toks[1].value.lower() == "inputobject"
        and not toks[1].colon
        and toks[2].kind == "open"
        and toks[-2].kind == "close"
        and toks[-1].kind == "param"
        and toks[-1].value.lower() == "compress"
        and not toks[-1].colon
    )
    inner = toks[3:-2] if shape else ()
    if not shape or any(t.kind in ("open", "close") for t in inner):
        raise Unsupported(text, "@( ) only as ConvertTo-Json -InputObject @(<pipeline>) -Compress")
    commands = _pipeline(inner, text, ARRAY_PIPELINES)
    tail = Command("ConvertTo-Json", {"Compress": True})
    return Statement(text, (*commands, tail), line=raw.line, array=True)


def _pipeline(
    toks: tuple[Token, ...],
    text: str,
    pipelines: dict[str, tuple[str, ...] | tuple[tuple[str, ...], ...]] = PIPELINES,
) -> tuple[Command, ...]:
    parts: list[list[Token]] = [[]]
    for t in toks:
        if t.kind == "pipe":
            parts.append([])
        else:
            parts[-1].append(t)
    commands = tuple(_command(tuple(part), text) for part in parts)
    first = commands[0].name
    if first not in pipelines:
        raise Unsupported(text, f"{first} only appears later in a pipeline")
    tails = pipelines[first]
    shapes = [tails] if not tails or isinstance(tails[0], str) else list(tails)
    names = tuple(c.name for c in commands)
    if not any(names == (first, *tail) for tail in shapes):
        wanted = " or ".join(" | ".join((first, *tail)) for tail in shapes)  # type: ignore[arg-type]
        raise Unsupported(text, f"{first} is only understood as the pipeline {wanted}")
    for source, command in zip(commands, commands[1:], strict=False):
        if command.name != "Select-Object":
            continue
        allowed = CMDLETS[source.name.lower()].properties
        if allowed is not None:
            known = {p.lower() for p in allowed}
            unknown = [p for p in command.args["Property"] if p.lower() not in known]
            if unknown:
                raise Unsupported(
                    text, f"{source.name} has no property {', '.join(unknown)} in the lab"
                )
    return commands


def parse_script(src: str) -> list[Statement]:
    """Parse a whole script; raise Unsupported if any statement leaves the subset."""
    return list(_parse_cached(src))


@functools.lru_cache(maxsize=4096)
def _parse_cached(src: str) -> tuple[Statement, ...]:
    # Hundreds of hosts get the same few scripts (a boot-time probe, a restart): each
    # is parsed once. Statements are frozen; the interpreter only reads their args.
    statements = tuple(_statement(raw) for raw in tokenize(src))
    if not statements or statements[0].setting != ("ErrorActionPreference", "Stop"):
        first = statements[0].text if statements else "(an empty script)"
        raise Unsupported(first, "a script must begin with $ErrorActionPreference = 'Stop'")
    return statements
