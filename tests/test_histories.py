"""Committed histories replay against the current workflow code (no server needed).

A change that would break running workflows fails here; make such changes with
workflow.patched and keep the old history. `tests/histories/v1/` holds histories
recorded before the patches (verify-manual-steps, automate-sync-steps,
state-search-attribute, child-id-random-tag); `v2/` those recorded before
client-batches (one client-switch child per client); `v3/` those recorded before
site-queues (every activity on the pair's queue); `v4/` a client-batch child recorded
before client-two-activities (four activities per client; the parents did not change);
`v5/` those recorded before record-step-outcomes, update-answers-once-taken,
continue-after-signals, manual-step-running-after-confirm and continue-while-a-step-failed (no step records in the memo, updates answered at once);
`tests/histories/` the current code's (each step's changes and the rejected signals
recorded in the memo, updates answered once taken); of them, `switch-signed-start.json`,
`switch-signed-start-follows.json` and `control-signed-follows.json` were recorded before
signed-nonces-taken (a signed start or control takes its nonce by a child workflow), and
`*-signed-*-nonce.json` after; `switch-signed-start-nonce-alone.json`, the control
approval ones (`control-approval.json`, `control-break-glass-approved.json`) after
signed-acts-nonce-alone (the server's list of runs since the one it follows is no longer
asked).
The dry run's (`dry-run-*.json`, the pair-dry-run workflow) and the survey's
(`survey-*.json`, the pair-survey workflow) are in `tests/histories/` only.
Record new ones with `AMSM_RECORD_HISTORIES=tests/histories pytest tests/integration`.
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.registry import WORKFLOWS

ROOT = Path(__file__).parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))


KINDS = ("switch-", "split-main", "split-switch-", "restore-")
CHILD = {
    "current": "client-batch-",
    "v1": "client-switch-",
    "v2": "client-switch-",
    "v3": "client-batch-",
    "v4": "client-batch-",
    "v5": "client-batch-",
}


@pytest.mark.parametrize("name", ["current", "v1", "v2", "v3", "v4", "v5"])
def test_there_is_a_history_of_every_workflow_kind(name: str) -> None:
    where = ROOT if name == "current" else ROOT / name
    names = [p.name for p in where.glob("*.json")]
    # v4 changed only the client-batch child: its parents are those of today.
    for kind in (*(KINDS if name != "v4" else ()), CHILD[name]):
        assert any(n.startswith(kind) for n in names), (where, kind)


@pytest.mark.parametrize("path", HISTORIES, ids=[str(p.relative_to(ROOT)) for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
