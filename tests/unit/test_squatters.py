"""Telling the pair's fences from squatters (wire/fences.py): pure logic over what the
server describes; the dev server test is tests/integration/test_squatter.py."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes
from temporalio.converter import default

from client.render import render_squatters
from wire.fences import FenceLookup, _sort, squatter_of

QUEUE = "amsm-lab"


PAIR = "lab"
RUN = "amsm-lab"  # the pair's run, the only parent of its fences


def execution(
    wid: str,
    kind: str = "fence",
    queue: str = QUEUE,
    running: bool = True,
    parent: str | None = RUN,
) -> WorkflowExecution:
    status = WorkflowExecutionStatus.RUNNING if running else WorkflowExecutionStatus.COMPLETED
    return WorkflowExecution(
        close_time=None, execution_time=None, history_length=1, id=wid, namespace="default",
        parent_id=parent, parent_run_id=None, root_id=None, root_run_id=None,
        raw_info=WorkflowExecutionInfo(), run_id=f"run-{wid}", search_attributes={},
        start_time=datetime.now(UTC), status=status, task_queue=queue,
        typed_search_attributes=TypedSearchAttributes.empty, workflow_type=kind,
        _context_free_data_converter=default(),
    )  # fmt: skip


def test_only_a_fence_on_the_pairs_queue_counts() -> None:
    found = FenceLookup()
    _sort(
        found, execution("amsm-lab-fence", queue="nobody-polls"), PAIR, QUEUE, True, "w", usual=True
    )
    _sort(found, execution("amsm-lab-fence-ab-1"), PAIR, QUEUE, True, "w", usual=False)
    _sort(
        found, execution("amsm-lab-fence-ab-1"), PAIR, QUEUE, True, "w", usual=False
    )  # listed twice
    # A closed stranger holds nothing; a non-fence listed elsewhere is not the pair's.
    _sort(found, execution("old", queue="x", running=False), PAIR, QUEUE, False, "w", usual=False)
    _sort(found, execution("other", kind="switch", queue="x"), PAIR, QUEUE, False, "w", usual=False)
    assert [f.workflow_id for f in found.fences] == ["amsm-lab-fence-ab-1"]
    assert [s.workflow_id for s in found.squatters] == ["amsm-lab-fence"]


def test_a_fence_the_pairs_run_did_not_start_is_a_squatter() -> None:
    """On the pair's own queue, started by hand (no parent) or by another workflow."""
    found = FenceLookup()
    _sort(found, execution("amsm-lab-fence", parent=None), PAIR, QUEUE, True, "w", usual=True)
    _sort(found, execution("amsm-lab-fence-t", parent="mine"), PAIR, QUEUE, True, "w", usual=False)
    assert found.fences == []
    assert [s.why for s in found.squatters] == [
        "not started by amsm as w: it was started on its own, not by the pair's run amsm-lab",
        "not started by amsm as w: it was started by mine, not by the pair's run amsm-lab",
    ]


def test_a_non_fence_under_the_usual_id_is_a_squatter() -> None:
    found = FenceLookup()
    _sort(
        found, execution("amsm-lab-fence", kind="client-batch"), PAIR, QUEUE, True, "w", usual=True
    )
    assert found.fences == []
    assert "it is a 'client-batch' workflow, not a fence" in found.squatters[0].why


def test_a_squatter_says_why_and_what_removes_it() -> None:
    sq = squatter_of(execution("amsm-lab-fence", queue="nobody-polls"), QUEUE, "the fence")
    assert sq.why == (
        "not started by amsm as the fence: its task queue is 'nobody-polls', not the pair's "
        "'amsm-lab'"
    )
    assert sq.remedy == (
        "temporal workflow terminate --workflow-id amsm-lab-fence --run-id run-amsm-lab-fence "
        '--reason "not started by amsm"'
    )
    text = render_squatters([sq])
    assert text.startswith("Squatter amsm-lab-fence (run run-amsm-lab-fence): ignored, not")
    assert "it blocks nothing; remove it: temporal workflow terminate" in text


def test_a_run_of_none_of_the_pairs_kinds_is_a_squatter_of_the_run_id() -> None:
    """api/start.py run_squatter: on the pair's own queue, of a type no kind has."""
    w = execution("amsm-lab", kind="nonsense", parent=None)
    sq = squatter_of(w, QUEUE, "the run of pair lab", ("switch", "split"))
    assert sq.why == (
        "not started by amsm as the run of pair lab: it is a 'nonsense' workflow, none of "
        "the pair's runs"
    )
