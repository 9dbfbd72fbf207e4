"""What the rooms of the house may import: the CLI, and the workflows it reads, load no
device library; activities stand below workflows; facts never call operations."""

from __future__ import annotations

import ast
import importlib
import re
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


# The rooms from the bottom up (docs/maintainers/house.md): an import from one room into
# another goes down this list. A new top-level package takes its place here.
ROOMS = (
    "inventory", "wire", "activities", "workflows", "records", "workers", "client", "console",
    "lab", "bench",
)  # fmt: skip
NOT_ROOMS = ("tests", "docs")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(rooms: tuple[str, ...]) -> dict[str, set[str]]:
    """Each module of the rooms -> the modules of the rooms it imports, anywhere in its
    text (an import inside a function counts)."""
    modules = {_module_name(p): p for room in rooms for p in (ROOT / room).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                named.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                named.add(node.module)
                named.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {m for m in named if m in modules and m != name}
    return graph


def test_every_import_between_rooms_points_down() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - set(NOT_ROOMS)
    assert packages <= set(ROOMS), f"place the new room(s) in ROOMS: {packages - set(ROOMS)}"
    for module, imported in _import_graph(ROOMS).items():
        room = module.split(".")[0]
        for target in imported:
            below = target.split(".")[0]
            assert ROOMS.index(below) <= ROOMS.index(room), f"{module} imports {target}"


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _import_graph(ROOMS)
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(
                "import circle: " + " -> ".join([*path[path.index(module) :], module])
            )
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_workflows_call_activities_and_children_by_reference() -> None:
    """`workflow.execute_activity_method(DsmActivities.dsm_set_mode, ...)`, never an
    activity or child workflow named by a string."""
    by_name = (
        "execute_activity",
        "start_activity",
        "execute_child_workflow",
        "start_child_workflow",
    )
    for path in (ROOT / "workflows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in by_name
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                raise AssertionError(
                    f"{path.name}:{node.lineno} calls {node.args[0].value!r} by name"
                )


def test_the_worker_loads_no_client_lab_console_or_records() -> None:
    """The worker image (Dockerfile) holds what `amsm worker` imports and no more."""
    code = (
        "import sys, workers.worker\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('client', 'lab', 'console', 'records')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_every_command_module_is_in_the_cli() -> None:
    """A new command is a file of client/commands/ and a line in client/cli.py's list; a
    module of commands/ that is not in the list is part of a command that imports it
    (dry_run.py: `amsm start ... --dry-run`)."""
    from client import cli

    listed = {c.__name__.rsplit(".", 1)[1] for c in cli.COMMANDS}
    files = {p.stem for p in (ROOT / "client" / "commands").glob("*.py")} - {"__init__"}
    assert listed <= files
    graph = _import_graph(("client",))
    for part in files - listed:
        users = {m for m, imported in graph.items() if f"client.commands.{part}" in imported}
        assert users & {f"client.commands.{c}" for c in listed}, part


def test_the_cli_shared_modules_import_no_command() -> None:
    for path in (ROOT / "client").glob("*.py"):
        if path.name != "cli.py":
            assert "client.commands" not in path.read_text(), path


def test_every_program_has_its_own_parser() -> None:
    """`amsm worker`, `codec-server`, `lab` and `console` parse their own command lines;
    docs/reference/cli.md is drawn from these parsers."""
    import amsm

    for module, _, _ in amsm.PROGRAMS.values():
        program = importlib.import_module(module)
        assert callable(program.parser) and callable(program.main), module


# Test modules that still import from another test module (what they take from it);
# everything else the tests share is in tests/support/.
TESTS_IMPORTING_TESTS = {
    ("tests.integration.test_iscsi_paths", "tests.integration.test_iscsi"),
    ("tests.unit.test_console_follow", "tests.unit.test_console_gates"),
}


def test_test_modules_import_no_other_test_module() -> None:
    found = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.rsplit(".", 1)[-1].startswith(("test_", "conftest")):
                    found.add((_module_name(path), name))
    assert found == TESTS_IMPORTING_TESTS


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


MAX_FUNCTION_LINES = 100


def _long_functions(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    where = path.relative_to(ROOT)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_over_100_lines() -> None:
    """A function reads on one screen or two, from its `def` to its last line (docstring
    included): in every room of the house, its tests and tools among them, and no room
    left out."""
    rooms = sorted(p for p in ROOT.iterdir() if (p / "__init__.py").is_file())
    assert {p.name for p in rooms} >= {
        "activities",
        "bench",
        "client",
        "console",
        "docs",
        "inventory",
        "lab",
        "records",
        "tests",
        "wire",
        "workers",
        "workflows",
    }
    paths = [ROOT / "amsm.py"] + [f for room in rooms for f in sorted(room.rglob("*.py"))]
    assert _long_functions(paths) == []


def test_the_lab_powershell_families_stand_below_the_parser() -> None:
    """lab/powershell/: the cmdlets of each family read the parsed Command, never the
    grammar or the interpreter that composes them; no module of the package imports the
    package itself (its __init__ only gathers the names the rest of the lab imports)."""
    below = ("syntax", "errors", "output", "lexer", "session", "services", "processes")
    below += ("registry", "files", "iscsi", "writefilter", "wmi", "machine")
    modules = _imports(ROOT / "lab" / "powershell")
    assert {p.stem for p in modules} >= set(below) | {"parser", "interpreter"}
    for path, text in modules.items():
        assert "from lab.powershell import" not in text, path
        if path.stem in below:
            for above in ("parser", "interpreter"):
                assert f"lab.powershell.{above}" not in text, (path, above)


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


def test_plans_are_pure_and_import_no_operation_nor_transport() -> None:
    """The drivers' plans are imported by the dry run inside the workflows' sandbox: no
    I/O library, nothing from operations/, no transport (activities/drivers/plans/)."""
    allowed = ("__future__", "collections.abc", "dataclasses", "typing", "inventory.models")
    for path, text in _imports(ROOT / "activities" / "drivers" / "plans").items():
        for line in text.splitlines():
            if not line.startswith(("from ", "import ")):
                continue
            name = line.split()[1]
            ours = name.startswith(("activities.drivers.plans", "activities.drivers.refusals"))
            assert ours or name in allowed, (path, line)
    code = (
        "import sys, pkgutil, importlib, activities.drivers.plans as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    importlib.import_module('activities.drivers.plans.' + m.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('pyodbc', 'asyncssh', 'winrm', 'requests', 'temporalio')"
        " or m.startswith(('activities.drivers.operations', 'activities.drivers.facts'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def _rooms() -> list[Path]:
    """Every room of the house (top-level folders and programs), tests aside."""
    return [
        p
        for p in ROOT.iterdir()
        if not p.name.startswith(".") and p.name != "tests" and (p.is_dir() or p.suffix == ".py")
    ]


def test_the_frozen_walk_is_read_only_by_the_history_room() -> None:
    """The walk of histories older than the engine's step records (records/legacy_walk.py)
    is frozen: records/reconstruct.py alone reads it; every other room reads the
    reconstruction."""
    allowed = {ROOT / "records" / "reconstruct.py", ROOT / "records" / "legacy_walk.py"}
    for room in _rooms():
        files = {room: room.read_text()} if room.is_file() else _imports(room)
        for path, text in files.items():
            if path not in allowed:
                assert not re.search(r"^\s*(from|import) .*legacy_walk", text, re.M), path


def test_the_engine_and_the_walk_judge_signals_by_one_rule_book() -> None:
    """workflows/rules.py is pure (no I/O, no workflow API), the checklist engine and the
    walk both call it, and the sentences that refuse a signal are written only there."""
    rules = (ROOT / "workflows" / "rules.py").read_text()
    imported = set(re.findall(r"^(?:from|import) ([\w.]+)", rules, re.M))
    assert imported <= {
        "__future__",
        "collections.abc",
        "dataclasses",
        "typing",
        "workflows.limits",
    }
    assert "open(" not in rules
    engine = (ROOT / "workflows" / "checklist.py").read_text()
    walk = (ROOT / "records" / "legacy_walk.py").read_text()
    assert "rules.decision_refusal(" in engine and "rules.decision_refusal(" in walk
    assert "rules.signal_refusal(" in engine and "rules.signal_refusal(" in walk
    sentences = (
        "is not an operator of this pair",
        "only a failed step can be retried or skipped",
        "already has a decision",
        "only an approval passes it",
        "is already aborting",
        "cannot be {kind}ed",
        "unknown signal",
    )
    for room in ("workflows", "records"):
        for path, text in _imports(ROOT / room).items():
            if path.name != "rules.py":
                code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
                for s in sentences:
                    assert s not in code, (path, s)
