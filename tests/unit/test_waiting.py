"""The header's words for the steps that wait on a person (api/waiting.py)."""

from __future__ import annotations

from api.waiting import WaitingCount, WaitingRun


def test_the_count_in_words_and_the_first_run_that_waits() -> None:
    assert WaitingCount(person="ann").sentence == "" and WaitingCount(person="ann").first is None
    one = WaitingRun(pair="news", run_id="r1", workflow="switch", steps=["stop-insync"])
    two = WaitingRun(pair="sport", run_id="r2", workflow="split", steps=["a", "b"])
    assert WaitingCount(person="ann", count=1, runs=[one]).sentence == "1 step waits for you"
    many = WaitingCount(person="ann", count=3, runs=[one, two])
    assert many.sentence == "3 steps wait for you" and many.first == one
