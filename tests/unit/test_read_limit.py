"""The limit on a probe's parallel reads (activities/context.py DeviceContext.limited)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest

from activities import context
from activities.context import DeviceContext
from inventory.load import load_inventory

DATA = Path(__file__).parent / "data" / "inventory.yaml"


async def test_a_read_cancelled_before_its_turn_is_closed_not_left_unawaited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker stopping mid-probe cancels reads still waiting for their turn; they never
    began, and Python used to report each as "coroutine ... was never awaited"."""
    monkeypatch.setattr(context, "PROBE_LIMIT", 1)
    ctx = DeviceContext(load_inventory(DATA), DATA)
    began: list[str] = []

    async def read(name: str) -> str:
        began.append(name)
        await asyncio.sleep(3600)
        return name

    async def probe_cancelled_mid_way() -> None:
        probe = asyncio.gather(ctx.limited(read("first")), ctx.limited(read("second")))
        await asyncio.sleep(0.05)
        assert began == ["first"]  # the second waits for its turn
        probe.cancel()
        try:
            await probe
        except asyncio.CancelledError:
            return
        raise AssertionError("the probe was not cancelled")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await probe_cancelled_mid_way()
        await asyncio.sleep(0)
        gc.collect()
    assert began == ["first"]
    assert not [w for w in caught if "never awaited" in str(w.message)], caught


async def test_reads_within_the_limit_answer_in_order() -> None:
    ctx = DeviceContext(load_inventory(DATA), DATA)

    async def read(n: int) -> int:
        await asyncio.sleep(0)
        return n

    assert await asyncio.gather(*(ctx.limited(read(n)) for n in range(5))) == list(range(5))
