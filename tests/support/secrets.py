"""No secret of a lab in its histories, their descriptions or the worker's log; and
recording a run's history for tests/histories/."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from temporalio.client import Client, WorkflowHistory

from tests.support import secret_scan as scan
from tests.support.lab import Lab
from tests.support.secret_scan import Decrypt


def lab_secrets(lab: Lab) -> list[str]:
    """Every secret the lab inventory refers to: passwords, and the lines of private keys."""
    out = []
    for path in [*(lab.dir / "secrets").glob("*"), *(lab.dir / "keys").rglob("*")]:
        if path.is_file() and not path.name.endswith((".pub", ".pem", ".crt")):
            text = path.read_text(errors="replace")
            out += [line for line in text.splitlines() if len(line) >= 16 and "-----" not in line]
            if len(text.strip()) >= 8 and "\n" not in text.strip():
                out.append(text.strip())
    return out


def assert_no_secrets(lab: Lab, history: WorkflowHistory, decrypt: Decrypt | None = None) -> None:
    """No secret of the lab in any text of the history, every payload decoded (and
    decrypted with `decrypt`, the worker's codec, when its payloads are encrypted)."""
    secrets = lab_secrets(lab)
    assert secrets, "the lab has no secrets to look for"
    found = [t for e in history.events for t in scan.texts(e, decrypt)]
    bad = scan.leaked(secrets, found)
    assert not bad, f"secrets in the history of {history.workflow_id}: {bad}"


async def assert_no_secrets_in_pair(
    temporal: Client, lab: Lab, decrypt: Decrypt | None = None
) -> dict[str, int]:
    """assert_no_secrets for every workflow on the lab's task queue (runs, children,
    the fence, controls, status), and their descriptions (memo, search attributes, the
    heartbeat details of pending activities). Returns how many of each kind it read."""
    kinds: dict[str, int] = {}
    secrets = lab_secrets(lab)
    async for wf in temporal.list_workflows(f"TaskQueue = '{lab.inventory.task_queue}'"):
        handle = temporal.get_workflow_handle(wf.id, run_id=wf.run_id)
        assert_no_secrets(lab, await handle.fetch_history(), decrypt)
        desc = await handle.describe()
        bad = scan.leaked(secrets, scan.texts(desc.raw_description, decrypt))
        assert not bad, f"secrets in the description of {wf.id}: {bad}"
        kinds[wf.workflow_type] = kinds.get(wf.workflow_type, 0) + 1
    return kinds


@contextlib.contextmanager
def worker_logs() -> Iterator[list[str]]:
    """Every log line of this process (the in-process worker's), as the worker writes
    them with --log-format json (exceptions included), at its level (INFO)."""
    from workers.logs import JsonFormatter

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_no_secrets_in_logs(lab: Lab, lines: list[str]) -> None:
    assert lines, "no log lines were captured"
    bad = scan.leaked(lab_secrets(lab), lines)
    assert not bad, f"secrets in the worker's log: {bad}"


async def record_run(temporal: Client, lab: Lab, run_id: str, name: str) -> None:
    """Check a finished run's history for secrets; with AMSM_RECORD_HISTORIES=DIR keep it
    for tests/histories/."""
    handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    assert_no_secrets(lab, history)
    record_history(history, name)


def record_history(history: WorkflowHistory, name: str) -> None:
    out = os.environ.get("AMSM_RECORD_HISTORIES")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / name).write_text(history.to_json())
