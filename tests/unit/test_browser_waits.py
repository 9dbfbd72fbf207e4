"""Waits in a real browser that hold under the console's Content-Security-Policy.

Playwright's `wait_for_function` evaluates a JavaScript *expression* again with `eval`
at each poll, and the console's CSP (`script-src 'self'`, no 'unsafe-eval') refuses that:
such a wait passes when the page is ready at the first look and fails with EvalError
when it must poll, i.e. under load (it failed so in
test_two_browsers_see_the_same_step_change_without_a_reload). A function is evaluated
once and then called, which the CSP allows; a locator needs no page script at all."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = re.compile(r"^\s*(async\s+)?(\([^)]*\)|\w+)\s*=>|^\s*(async\s+)?function\b")


def constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for t in node.targets:
                if isinstance(t, ast.Name) and isinstance(node.value.value, str):
                    out[t.id] = node.value.value
    return out


def expression_waits(path: Path, name: str | None = None) -> list[str]:
    """`file:line` of each wait_for_function given anything but a function."""
    name = name or str(path.relative_to(ROOT))
    tree = ast.parse(path.read_text(), str(path))
    named = constants(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "wait_for_function"
            and node.args
        ):
            continue
        arg = node.args[0]
        text = None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            text = arg.value
        elif isinstance(arg, ast.Name):
            text = named.get(arg.id)
        if text is None or not FUNCTION.search(text):
            found.append(f"{name}:{node.lineno}")
    return found


def test_every_wait_for_function_is_given_a_function() -> None:
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    bad = [w for f in files for w in expression_waits(f)]
    assert not bad, f"wait_for_function given an expression (use a function or a locator): {bad}"


def test_the_rule_tells_a_function_from_an_expression(tmp_path: Path) -> None:
    sample = tmp_path / "waits.py"
    sample.write_text(
        "W = '() => window.x'\n"
        "async def f(p):\n"
        "    await p.wait_for_function('document.body.dataset.v')\n"
        "    await p.wait_for_function('() => document.body.dataset.v')\n"
        "    await p.wait_for_function(W)\n"
        "    await p.wait_for_function('([a, b]) => a + b', arg=[1, 2])\n"
    )
    assert expression_waits(sample, "waits.py") == ["waits.py:3"]
