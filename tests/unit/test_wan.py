"""The test wire of a WAN (tests/support/wan.py): it holds every frame for its delay, keeps
their order, drops about the share it is told, and takes no out-of-range setting.
Pipes stand in for its TAP devices (the same file-descriptor reads and writes)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.support.wan import Wire


@pytest.fixture
def pipes() -> Iterator[tuple[int, int, int, int]]:
    """(a's read end, a's write end, b's read end, b's write end), reads non-blocking."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    for fd in (a_r, b_r):
        os.set_blocking(fd, False)
    yield a_r, a_w, b_r, b_w
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)


def test_frames_wait_their_delay_and_keep_their_order(pipes: tuple[int, int, int, int]) -> None:
    a_r, a_w, b_r, b_w = pipes
    wire = Wire(a_r, b_w)  # what arrives on a_r goes out on b_w (and back)
    wire.set(delay_ms=50, loss=0)
    os.write(a_w, b"one")
    wire.take(a_r)
    os.write(a_w, b"two")
    wire.take(a_r)
    wait = wire.send_due()
    assert wait is not None and 0 < wait <= 0.05
    with pytest.raises(BlockingIOError):
        os.read(b_r, 100)  # not yet
    time.sleep(0.06)
    assert wire.send_due() is None
    assert os.read(b_r, 100) == b"onetwo"  # both, in order


def test_it_drops_about_the_share_it_is_told(pipes: tuple[int, int, int, int]) -> None:
    a_r, a_w, _b_r, b_w = pipes
    wire = Wire(a_r, b_w, seed=29)
    wire.set(delay_ms=0, loss=0.02)
    for _ in range(5000):  # a pipe has no frames (a read takes all there is): one at a time
        os.write(a_w, b"x")
        wire.take(a_r)
    assert 60 <= wire.dropped <= 140, wire.dropped  # 2 % of 5,000 is 100
    assert wire.order + wire.dropped == 5000


@pytest.mark.parametrize(("delay_ms", "loss"), [(-1, 0), (10_001, 0), (0, -0.1), (0, 1)])
def test_out_of_range_settings_are_refused(
    pipes: tuple[int, int, int, int], delay_ms: float, loss: float
) -> None:
    a_r, _a_w, _b_r, b_w = pipes
    with pytest.raises(ValueError, match="delay_ms 0-10000 and loss 0-1"):
        Wire(a_r, b_w).set(delay_ms, loss)
