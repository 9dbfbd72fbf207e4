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
        "import sys, pkgutil, importlib, api, client, workflows\n"
        "for pkg in (api, client, workflows):\n"
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
    "inventory", "wire", "activities", "workflows", "records", "workers", "api", "client",
    "console", "lab", "bench",
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
        " if m.split('.')[0] in ('api', 'client', 'lab', 'console', 'records')))"
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


def test_the_terminal_draws_a_run_with_one_renderer() -> None:
    """A run on the terminal is drawn once: `amsm show` prints and `amsm watch` draws
    again client/render.py's `render_run` (over workflows/view.py's `render_text`); the
    step marks are named only in workflows/view.py, and the CLI draws no table of its own
    (rich only writes text: its console, its live refresh, its text)."""
    for command in ("show", "watch"):
        tree = ast.parse((ROOT / "client" / "commands" / f"{command}.py").read_text())
        called = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert "render_run" in called, command
    for room in ("client", "console", "api", "records"):
        for path in (ROOT / room).rglob("*.py"):
            text = path.read_text()
            assert "STATUS_MARK" not in text, path
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rich"):
                    assert node.module in ("rich.console", "rich.live", "rich.text"), path


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
    above = ("workflows", "activities", "workers", "records", "api", "client", "lab")
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
    for room in ("workflows", "activities", "workers", "api", "client", "wire", "records"):
        for path, text in _imports(ROOT / room).items():
            assert "from console" not in text and "import console" not in text, path
    code = (
        "import sys, pkgutil, importlib, workflows, activities, workers, api, client\n"
        "for pkg in (workflows, activities, workers, api, client):\n"
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


def test_the_frozen_walk_runs_only_for_runs_without_the_engines_records() -> None:
    """records/reconstruct.py names the walk (`Walk`) in one function only,
    `_walk_without_records`, and `reconstruct` calls that one only under a test that the
    run has no step records (`not run.step_records`); a run with them is read from them.
    (tests/unit/test_history_reconstruct.py checks the same on every committed history.)"""
    tree = ast.parse((ROOT / "records" / "reconstruct.py").read_text())
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def walks(node: ast.AST) -> int:
        return sum(isinstance(n, ast.Name) and n.id == "Walk" for n in ast.walk(node))

    assert walks(tree) == walks(funcs["_walk_without_records"]) > 0
    callers = {
        name
        for name, f in funcs.items()
        for n in ast.walk(f)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id == "_walk_without_records"
    }
    assert callers == {"reconstruct"}
    guards = [
        n
        for n in ast.walk(funcs["reconstruct"])
        if isinstance(n, ast.If)
        and any(
            isinstance(c, ast.Call)
            and isinstance(c.func, ast.Name)
            and c.func.id == "_walk_without_records"
            for b in n.body
            for c in ast.walk(b)
        )
    ]
    assert len(guards) == 1
    test = ast.unparse(guards[0].test)
    assert re.search(r"\bnot run\.step_records\b", test), test


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
        "this pair takes only signed acts",
    )
    for room in ("workflows", "records"):
        for path, text in _imports(ROOT / room).items():
            if path.name != "rules.py":
                code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
                for s in sentences:
                    assert s not in code, (path, s)


# -- the operator API under the CLI and the console -------------------------------------
def test_the_console_imports_no_cli_module_and_builds_no_argparse_namespace() -> None:
    """The console is no second CLI: it calls the operator API (api/), never a command of
    client/ nor its errors (client.session's CliError), and builds no argparse.Namespace
    to call one (its own program, console/main.py, parses its own options)."""
    for path in (ROOT / "console").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = []
            for name in names:
                assert name != "client" and not name.startswith("client."), (path.name, name)
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert called != "Namespace", f"{path.name}:{node.lineno} builds a Namespace"


# What the console may take of temporalio: the types of what it is handed (the client its
# program connects, the codec it loads), never a call of its own.
CONSOLE_TEMPORAL_TYPES = {"temporalio.client.Client", "temporalio.converter.PayloadCodec"}
TEMPORAL_CALLS = {
    "get_workflow_handle", "workflow_service", "list_workflows", "count_workflows",
    "start_workflow", "execute_workflow", "describe", "query", "signal", "execute_update",
    "start_update", "fetch_history", "fetch_history_events", "data_converter",
}  # fmt: skip


def temporal_reach(source: str) -> list[tuple[int, str]]:
    """(line, what) of every import from temporalio other than CONSOLE_TEMPORAL_TYPES and
    every use of an attribute through which a program calls Temporal (a handle, the
    service, a query...) in SOURCE."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("temporalio"):
            for a in node.names:
                if f"{node.module}.{a.name}" not in CONSOLE_TEMPORAL_TYPES:
                    found.append((node.lineno, f"imports {node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "temporalio":
                    found.append((node.lineno, f"imports {a.name}"))
        elif isinstance(node, ast.Attribute) and node.attr in TEMPORAL_CALLS:
            found.append((node.lineno, f"uses .{node.attr}"))
    return sorted(found)


def test_the_temporal_reach_scan_finds_what_it_looks_for() -> None:
    src = (
        "from temporalio.client import Client, WorkflowExecutionStatus\n"
        "from temporalio.converter import PayloadCodec\n"
        "from temporalio.service import RPCError\n"
        "import temporalio.api.enums.v1\n"
        "async def a(temporal: Client, codec: PayloadCodec) -> None:\n"
        "    h = temporal.get_workflow_handle('w')\n"
        "    await h.describe()\n"
        "    await temporal.workflow_service.get_workflow_execution_history(None)\n"
        "    await read_status(temporal, inv)\n"
    )
    assert [line for line, _ in temporal_reach(src)] == [1, 3, 4, 6, 7, 8]


def test_the_console_calls_temporal_only_through_the_api() -> None:
    """The console holds no Temporal call: its pages, its buttons and its live stream
    (console/pairs.py: a run's mark, its checklist, the watch's status, the histories
    followed, all in api/follow.py) call functions of api/, which return models and raise
    `Refused`; the console takes of temporalio only the types of what it is handed."""
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in sorted((ROOT / "console").rglob("*.py"))
        for line, what in temporal_reach(path.read_text())
    ]
    said = "\n".join(found)
    assert found == [], f"the console reaches Temporal itself (call api/ instead):\n{said}"


def _api_calls(folder: Path) -> set[str]:
    """The functions of api/ the modules of FOLDER name: `from api.start import start`
    and `from api import start as starting` ... `starting.start`, as api.start.start."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text())
        functions: dict[str, str] = {}  # local name -> api.module.function
        modules: dict[str, str] = {}  # local name -> api.module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if node.module == "api":
                        modules[a.asname or a.name] = f"api.{a.name}"
                    elif node.module.startswith("api."):
                        functions[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in functions:
                found.add(functions[node.id])
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
            ):
                found.add(f"{modules[node.value.id]}.{node.attr}")
    return found


def test_the_cli_and_the_console_call_the_same_api_functions() -> None:
    """What an operator can do from both (start, its dry run, confirm and approve, retry,
    skip and abort, a control, the pair's status, a run's checklist, the runs, a
    report) is one function of api/ that both call; each renders its answer."""
    both = {
        "api.start.start",
        "api.start.start_input",
        "api.start.dry_run",
        "api.act.tick",
        "api.act.decide",
        "api.controls.run_control",
        "api.status.status",
        "api.show.show",
        "api.runs.list_runs",
        "api.runs.with_time_to_serve",
        "api.report.report_of_run",
        "api.readiness.readiness_line",
    }
    cli, console = _api_calls(ROOT / "client"), _api_calls(ROOT / "console")
    assert both <= cli, sorted(both - cli)
    assert both <= console, sorted(both - console)


def test_the_api_raises_one_refusal_type() -> None:
    """api/ raises Refused (api/refusal.py) and no other exception of its own making; the
    CLI maps its kind to an exit code, the console to an HTTP status."""
    own = {"Refused"}
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not (bases & {"Exception", "ValueError", "RuntimeError"}) or (
                    node.name in own
                ), f"{path.name}: {node.name}"
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                f = node.exc.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert name in ("Refused", "with_code"), f"{path.name}:{node.lineno} raises {name}"


def test_a_console_page_is_a_module_and_a_route() -> None:
    """console/app.py is a route table over console/pages/, one module per page; every
    page module is routed to, and no route goes elsewhere."""
    from console import app

    routed = {page.__module__ for _, page, _ in app.ROUTES}
    modules = {f"console.pages.{p.stem}" for p in (ROOT / "console" / "pages").glob("*.py")}
    assert routed == modules - {"console.pages.__init__"}


# -- words: "client" is a K2 client; the Temporal client is `temporal` -----------------------
# Every room (the activities' own connection to Temporal too), amsm.py and the tests.
WORD_ROOMS = (*ROOMS, "amsm.py", "tests")


def temporal_clients_named_client(source: str) -> list[tuple[int, str]]:
    """(line, what) of every parameter or variable named `client` that is annotated with
    temporalio's Client (as imported in SOURCE: `from temporalio.client import Client [as
    X]`, or `temporalio.client.Client`; `Client | None` and string annotations too), or
    bound straight from `Client.connect(...)`."""
    tree = ast.parse(source)
    local = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "temporalio.client"
        for a in node.names
        if a.name == "Client"
    }

    def is_temporal(annotation: ast.AST | None) -> bool:
        if annotation is None:
            return False
        for node in ast.walk(annotation):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    if is_temporal(ast.parse(node.value, mode="eval").body):
                        return True
                except SyntaxError:
                    continue
            if isinstance(node, ast.Name) and node.id in local:
                return True
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "temporalio.client.Client":
                return True
        return False

    def named_client(target: ast.AST) -> bool:
        return (isinstance(target, ast.Name) and target.id == "client") or (
            isinstance(target, ast.Attribute) and target.attr == "client"
        )

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.arg == "client" and is_temporal(arg.annotation):
                    name = getattr(node, "name", "lambda")
                    found.append((arg.lineno, f"parameter `client` of {name}()"))
        elif isinstance(node, ast.AnnAssign) and named_client(node.target):
            if is_temporal(node.annotation):
                found.append((node.lineno, f"`{ast.unparse(node.target)}: Client`"))
        elif isinstance(node, ast.Assign) and any(named_client(t) for t in node.targets):
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            if isinstance(value, ast.Call) and is_temporal(getattr(value.func, "value", None)):
                if getattr(value.func, "attr", "") == "connect":
                    found.append((node.lineno, "`client = Client.connect(...)`"))
    return sorted(found)


def test_the_temporal_client_scan_finds_what_it_looks_for() -> None:
    src = (
        "from temporalio.client import Client\n"
        "import temporalio.client\n"
        "from inventory.models import SwitchableClient\n"
        "async def a(client: Client, temporal: Client) -> None: ...\n"
        "def b(*, client: Client | None = None) -> None: ...\n"
        "def c(client: SwitchableClient) -> None: ...\n"
        "def d(client: 'Client') -> None: ...\n"
        "client: temporalio.client.Client\n"
        "async def e() -> None:\n"
        "    client = await Client.connect('x')\n"
        "    temporal = await Client.connect('x')\n"
        "class H:\n"
        "    def __init__(self, temporal: Client) -> None:\n"
        "        self.client: Client = temporal\n"
    )
    assert [line for line, _ in temporal_clients_named_client(src)] == [4, 5, 7, 8, 10, 14]


def test_the_temporal_client_is_called_temporal() -> None:
    """ "client" in the code is a K2 client (an editor or ingest workstation) and `client/`
    is the CLI's package; a temporalio Client is `temporal`, never `client`. (Recorded
    names, CLI options and JSON keys that say "client" are contracts and stay.)"""
    found = []
    for room in WORD_ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")) if room != "amsm.py" else [ROOT / room]:
            for line, what in temporal_clients_named_client(path.read_text()):
                found.append(f"{path.relative_to(ROOT)}:{line} {what}")
    said = "\n".join(found)
    assert found == [], f"a Temporal client named `client` (call it `temporal`):\n{said}"


def fixtures_named_client(source: str) -> list[tuple[int, str]]:
    """(line, what) of a pytest fixture named `client` in SOURCE, and of a test or fixture
    asking for one (an unannotated parameter `client`: the fixture of that name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
        if fixture and node.name == "client":
            found.append((node.lineno, "fixture `client`"))
        if fixture or node.name.startswith("test"):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                if arg.arg == "client" and arg.annotation is None:
                    found.append((arg.lineno, f"{node.name}() asks for a fixture `client`"))
    return sorted(found)


def test_the_fixture_scan_finds_what_it_looks_for() -> None:
    src = (
        "import pytest\n"
        "@pytest.fixture\n"
        "def client(temporal_env): ...\n"
        "async def test_a(client, lab_factory): ...\n"
        "async def test_b(temporal, lab_factory): ...\n"
        "def helper(client): ...\n"
        "@pytest_asyncio.fixture\n"
        "async def lab(client): ...\n"
    )
    assert [line for line, _ in fixtures_named_client(src)] == [3, 4, 8]


def test_the_tests_temporal_client_is_the_fixture_temporal() -> None:
    """The tests' Temporal client is the fixture `temporal` (tests/conftest.py); no test
    nor fixture asks for one called `client` (a K2 client in the tests is `client`)."""
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for line, what in fixtures_named_client(path.read_text())
    ]
    said = "\n".join(found)
    assert found == [], f"the Temporal client's fixture is `temporal`:\n{said}"
