"""Which code a worker runs: a build id from the source of what decides and acts.

Workers of different code on one task queue would take each other's workflow tasks:
a workflow started by one version and replayed by another fails as nondeterministic,
or worse, runs on. The build id is part of every worker's identity, and a worker that
starts while a poller of another build serves its queue says so (docs/site/production.md,
"Upgrading workers", says how to upgrade: drain, or a queue of its own).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workflows", "activities", "inventory")
_BUILD = re.compile(r"@build-([0-9a-f]{12})\b")


@functools.cache
def build_id() -> str:
    """12 hex digits of SHA-256 over the source of workflows/, activities/, inventory/."""
    h = hashlib.sha256()
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def tag(build: str | None = None) -> str:
    return f"@build-{build or build_id()}"


def build_of(identity: str) -> str | None:
    m = _BUILD.search(identity)
    return m.group(1) if m else None


def others(identities: list[str], mine: str | None = None) -> list[str]:
    """The identities among `identities` that run another build than `mine` (an
    identity without a build id is another build too: an older amsm)."""
    me = mine or build_id()
    return [i for i in identities if build_of(i) != me]
