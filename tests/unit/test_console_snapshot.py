"""The console's snapshot of a run (console/pairs.py): the run's step records shown as
they are written, ahead of the worker's answer, and never undone by an answer older
than them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from console.pairs import Hub
from workflows.kinds import KINDS
from workflows.models import Checklist, StepRecord, StepState


def checklist(**statuses: str) -> Checklist:
    steps = [StepState(id=d.id, kind=d.kind, title=d.title) for d in KINDS["switch"].steps("Y")]
    c = Checklist(workflow="switch", pair="p", title="t", steps=steps, run_id="r1")
    for step, status in statuses.items():
        c.step(step.replace("_", "-")).status = status  # type: ignore[assignment]
    c.settle_state()
    return c


def record(step: str, status: str, **texts: Any) -> StepRecord:
    return StepRecord(step=step, at="2026-12-01T10:00:00.250+00:00", status=status, **texts)  # type: ignore[arg-type]


def test_records_show_at_once_and_an_older_answer_does_not_undo_them() -> None:
    hub = Hub(None, [SimpleNamespace(pair="p")])  # type: ignore[arg-type, list-item]
    live = hub.pairs["p"]
    waiting = checklist(stop_insync="awaiting-confirmation")
    live.seen = ("r1", 10, "running")
    hub._apply_checklist(live, waiting, None)
    assert live.snapshot.checklist == waiting and not live.snapshot.partial
    assert live.snapshot.checklist.state == "awaiting-operator"
    v = live.snapshot.version

    # The confirm's task wrote its record (event 12): shown at once, the state with it.
    rec = record("stop-insync", "done", operator="ann", note="by hand")
    hub._apply_records(live, "r1", [(12, rec)])
    shown = live.snapshot.checklist
    assert shown is not None and shown.step("stop-insync").status == "done"
    assert shown.step("stop-insync").note == "by hand" and shown.state == "running"
    assert live.snapshot.partial and live.snapshot.version > v
    assert waiting.step("stop-insync").status == "awaiting-confirmation"  # a copy changed

    # The worker answers for a history of 11 events (before the record): still done.
    live.seen = ("r1", 11, "running")
    hub._apply_checklist(live, waiting, None)
    assert live.snapshot.checklist.step("stop-insync").status == "done"  # type: ignore[union-attr]
    assert live.snapshot.partial

    # Its answer for 13 events has the record in it, whole: that is what shows.
    done = checklist(stop_insync="done")
    done.step("stop-insync").ended_at = "2026-12-01T10:00:00+00:00"
    live.seen = ("r1", 13, "running")
    hub._apply_checklist(live, done, None)
    assert live.snapshot.checklist == done and not live.snapshot.partial
    assert live.ahead == []


def test_records_of_another_run_wait_for_its_checklist() -> None:
    hub = Hub(None, [SimpleNamespace(pair="p")])  # type: ignore[arg-type, list-item]
    live = hub.pairs["p"]
    live.seen = ("r1", 10, "running")
    hub._apply_checklist(live, checklist(), None)
    v = live.snapshot.version
    hub._apply_records(live, "r2", [(5, record("stop-replication", "running"))])
    assert live.snapshot.version == v and not live.snapshot.partial


def test_a_record_sets_the_steps_status_outcome_and_texts_not_its_times() -> None:
    s = StepState(id="a", kind="auto", title="t", started_at="x", error="old", message="m")
    s.take(record("a", "failed", error="refused: no"))
    assert (s.status, s.error, s.message, s.started_at) == ("failed", "refused: no", None, "x")
