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
