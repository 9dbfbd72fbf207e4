"""What the rooms of the house may import: the CLI, and the workflows it reads, load no
device library; activities stand below workflows; facts never call operations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEVICE_LIBRARIES = ("asyncssh", "winrm", "pyodbc")


def test_the_cli_and_the_workflows_load_no_device_library() -> None:
    # The workflows import the activity classes to call them by reference (and the CLI
    # imports workflows); only the worker builds the activities' context
    # (activities/context.py), which needs the libraries.
    code = (
        "import sys, pkgutil, importlib, client, workflows\n"
        "for pkg in (client, workflows):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        f"print(sorted(set(sys.modules) & set({DEVICE_LIBRARIES!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def _imports(folder: Path) -> dict[Path, str]:
    return {p: p.read_text() for p in folder.rglob("*.py")}


def test_activities_import_no_workflow() -> None:
    for path, text in _imports(ROOT / "activities").items():
        assert "from workflows" not in text and "import workflows" not in text, path


def test_facts_never_call_an_operation() -> None:
    for path, text in _imports(ROOT / "activities" / "drivers" / "facts").items():
        assert "drivers.operations" not in text, path


def test_wire_imports_only_the_inventory() -> None:
    """Every program reaches Temporal through wire/: it stands below all of them."""
    above = ("workflows", "activities", "workers", "records", "client", "lab")
    for path, text in _imports(ROOT / "wire").items():
        for room in above:
            assert f"from {room}" not in text and f"import {room}" not in text, (path, room)


def test_the_site_check_loads_no_operation() -> None:
    """`amsm check` reads facts only: its activities load, even indirectly, no module that
    changes a device (activities/drivers/operations/), nor the families that act."""
    code = (
        "import sys, activities.check\n"
        "print(sorted(m for m in sys.modules if m.startswith('activities.drivers.operations')"
        " or m in ('activities.dsm', 'activities.browse', 'activities.clients',"
        " 'activities.smartbins', 'activities.sync_tools', 'activities.media')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_no_room_below_the_console_imports_it() -> None:
    """The web console (console/) is a client like the CLI: the workflows, activities and
    workers never load it, not even through another module; nor does the CLI."""
    for room in ("workflows", "activities", "workers", "client", "wire", "records"):
        for path, text in _imports(ROOT / room).items():
            assert "from console" not in text and "import console" not in text, path
    code = (
        "import sys, pkgutil, importlib, workflows, activities, workers, client\n"
        "for pkg in (workflows, activities, workers, client):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "print(sorted(m for m in sys.modules if m == 'console' or m.startswith('console.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_console_loads_no_device_library() -> None:
    """It talks to Temporal only: like the CLI, it loads no device library and not the
    activities' context (which builds the drivers' connections)."""
    code = (
        "import sys, pkgutil, importlib, console\n"
        "for m in pkgutil.iter_modules(console.__path__):\n"
        "    importlib.import_module('console.' + m.name)\n"
        f"print(sorted(m for m in sys.modules if m in {DEVICE_LIBRARIES!r}"
        " or m == 'activities.context'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_dry_run_loads_no_operation() -> None:
    """`amsm start ... --dry-run` reads facts only: its activities load no module that
    changes a device, nor the families that act (it calls the probe, the pair's and its
    own read-only activities)."""
    code = (
        "import sys, activities.dry_run, activities.probe, activities.pair\n"
        "print(sorted(m for m in sys.modules if m.startswith('activities.drivers.operations')"
        " or m in ('activities.dsm', 'activities.browse', 'activities.clients',"
        " 'activities.smartbins', 'activities.sync_tools', 'activities.media')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_no_room_below_the_lab_imports_it() -> None:
    # The lab simulates the devices; the CLI reaches it only as a program (`amsm lab
    # survey-compare`), the way it reaches Temporal.
    for room in ("inventory", "wire", "activities", "workflows", "records", "workers", "client"):
        for path, text in _imports(ROOT / room).items():
            assert "from lab" not in text and "import lab" not in text, path


# -- a kind in one file (workflows/kinds.py) ------------------------------------------------
KIND_ROOMS = ("workflows", "records", "client", "console", "activities", "api", "workers")
# The pair's modes (inventory/status.py derived) share a word with a kind: a comparison
# with a name or attribute called `mode` is about the pair, not about a kind.
MODE_NAMES = ("mode",)


def _kind_modules() -> dict[str, Path]:
    from workflows.kinds import CLASSES

    return {
        name: ROOT / (cls.__module__.replace(".", "/") + ".py") for name, cls in CLASSES.items()
    }


def kind_name_comparisons(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every place the source compares a value with a kind's name (==,
    !=, in, not in, including tuples and sets of names) or looks a kind up by its name
    written out (`KINDS["switch"]`)."""
    import ast

    def strings(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return [s for e in node.elts for s in strings(e)]
        return []

    def about_mode(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id in MODE_NAMES) or (
            isinstance(node, ast.Attribute) and node.attr in MODE_NAMES
        )

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(about_mode(o) for o in operands):
                continue
            found += [(node.lineno, s) for o in operands for s in strings(o) if s in names]
        elif isinstance(node, ast.Subscript):
            found += [(node.lineno, s) for s in strings(node.slice) if s in names]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, s) for s in strings(node.value) if s in names]
    return found


def test_the_kind_name_scan_finds_what_it_looks_for() -> None:
    names = {"switch", "split"}
    src = (
        'if kind == "switch": pass\n'
        'if wt in ("split", "x"): pass\n'
        'k = KINDS["split"]\n'
        'if mode == "split": pass\n'
        'if st.mode != "split": pass\n'
    )
    assert kind_name_comparisons(src, names) == [(1, "switch"), (2, "split"), (3, "split")]


def test_no_kind_name_is_compared_outside_its_own_module() -> None:
    """What a kind is and does is asked of its row (workflows/kind.py), never decided by
    comparing its name: a ninth kind is its module and a line in workflows/kinds.py."""
    own = _kind_modules()
    names = set(own)
    found = []
    for room in KIND_ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")) if (ROOT / room).is_dir() else []:
            for line, name in kind_name_comparisons(path.read_text(), names):
                if own[name] != path:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {name!r}")
    assert found == [], found


def test_no_kind_module_imports_another_kind() -> None:
    import ast

    own = _kind_modules()
    modules = {
        p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".") for p in own.values()
    }
    assert len(modules) == len(own) >= 4
    for path in own.values():
        mine = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported |= {f"{node.module}.{a.name}" for a in node.names}
        assert imported & (modules - {mine}) == set(), (path, imported & modules)


def test_the_list_of_kinds_is_the_worker_registry_and_each_class_runs_its_row() -> None:
    """Each kind's class is registered under its row's name: the workflow type Temporal
    knows, the `amsm start` word and the search attribute are one word."""
    from temporalio.workflow import _Definition

    from workflows.kinds import CLASSES, KINDS
    from workflows.registry import WORKFLOWS

    for name, cls in CLASSES.items():
        assert _Definition.must_from_class(cls).name == name == KINDS[name].name
        assert cls in WORKFLOWS


def test_no_template_compares_a_kind_name() -> None:
    """The console's templates ask the start (console/views.py Start) what its form needs."""
    import re

    names = "|".join(re.escape(n) for n in _kind_modules())
    pattern = re.compile(rf"""(==|!=|\bin)\s*\(?\s*['"]({names})['"]""")
    for path in (ROOT / "console" / "templates").rglob("*.html"):
        assert not pattern.search(path.read_text()), path
