"""The workflows an operator starts on a pair: one line per kind. Each kind's module holds
its whole row (workflows/kind.py: name, input, step table, title, direction,
precondition, what it makes main, the steps that count for "time to serve", its start
options) and its workflow class over the engine's template (workflows/base.py
KindWorkflow). The CLI's `amsm start`, the console's start forms, the dry run, the
reports and the worker's registry (workflows/registry.py) read this list; a ninth kind is
its module and a line here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from workflows import restore, split, split_switch, switch
from workflows.kind import Kind

# The row of each kind, and the workflow class that runs it, in the order the CLI and the
# console list them.
ROWS: tuple[tuple[Kind, type], ...] = (
    (switch.KIND, switch.SwitchWorkflow),
    (split.KIND, split.SplitWorkflow),
    (split_switch.KIND, split_switch.SplitSwitchWorkflow),
    (restore.KIND, restore.RestoreWorkflow),
)

KINDS: dict[str, Kind] = {k.name: k for k, _ in ROWS}
# The class that runs each kind (the worker registers them; histories replay with them).
CLASSES: dict[str, type] = {k.name: cls for k, cls in ROWS}

# What else runs on a pair under its own kind (`amsm runs --kind`).
OTHER_KINDS = ("control", "control-approval", "fence")


@contextmanager
def added(kind: Kind, workflow_class: type) -> Iterator[Kind]:
    """A kind added to the list for as long as the block runs, as a line above would add
    it for good (tests write a ninth kind this way, tests/test_ninth_kind.py). Whatever
    reads the list while the block runs sees it: build the CLI's parser, the console's
    page or the worker inside it."""
    if kind.name in KINDS:
        raise ValueError(f"a kind named {kind.name!r} is already listed")
    KINDS[kind.name] = kind
    CLASSES[kind.name] = workflow_class
    try:
        yield kind
    finally:
        del KINDS[kind.name]
        del CLASSES[kind.name]
