"""Load inventory.yaml and explain every problem: file, field path, what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inventory.models import Inventory


class InventoryError(Exception):
    """The inventory cannot be used; `problems` lists every reason, one line each."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def explain(self) -> str:
        lines = [f"{self.path}: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def explain_validation(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        # Pydantic puts the model-validator name or the union member in the location
        # for some errors; an operator only needs the field path.
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see docs/site/inventory.md)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "literal_error":
            msg = msg.replace("Input should be", "allowed:")
        problems.append(f"{_loc(loc)}: {msg}")
    return problems


MAX_BYTES = 1_000_000


class _NoAliasLoader(yaml.SafeLoader):
    """safe_load without anchors and aliases: a few lines of aliases can expand into
    gigabytes (the 'billion laughs'), and an inventory never needs them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML aliases (*name) are not allowed in an inventory",
                event.start_mark,  # type: ignore[arg-type]
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    """The inventory's YAML, without aliases. With libyaml (the C parser; the pure-Python
    one took 0.6 s of every `amsm` command on a 200-device inventory), the events are
    checked for aliases first, then the text is loaded."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    for event in yaml.parse(text, Loader=fast):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML aliases (*name) are not allowed in an inventory",
                event.start_mark,  # type: ignore[arg-type]
            )
    return yaml.load(text, Loader=fast)  # noqa: S506 (libyaml's safe loader)


def parse_inventory(text: str, path: str = "<inventory>") -> Inventory:
    if len(text) > MAX_BYTES:
        raise InventoryError(
            path, [f"(file): larger than {MAX_BYTES} bytes; is it the right file?"]
        )
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise InventoryError(path, [f"{where}not valid YAML ({problem})"]) from None
    if not isinstance(data, dict):
        raise InventoryError(
            path, [f"(top level): expected a mapping of fields, got {type(data).__name__}"]
        )
    try:
        return Inventory.model_validate(data)
    except ValidationError as e:
        raise InventoryError(path, explain_validation(e)) from None


def load_inventory(path: str | Path) -> Inventory:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(str(p), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(str(p), [f"cannot read the file ({e})"]) from None
    return parse_inventory(text, str(p))


def resolve_path(inventory_path: str | Path, value: str) -> Path:
    """Paths in the inventory are relative to the inventory file."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(inventory_path).resolve().parent / p
