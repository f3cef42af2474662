"""The mover's throttle holds its averages, on a manual clock (no real sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from engine import ManualClock
from tiering.policy import Throttle as Limits
from tiering.throttle import Throttle


def _moves(limits: Limits, sizes: list[int]) -> float:
    clock = ManualClock(start=1000.0)
    throttle = Throttle(limits, clock)

    async def run() -> None:
        for size in sizes:
            await throttle.take(size)

    asyncio.run(run())
    return clock.time() - 1000.0


@pytest.mark.parametrize(
    ("limits", "sizes", "expected"),
    [
        # 10 MB at 2 MB/s: the first second's burst is free, the other 8 MB take 4 s.
        (Limits(mb_per_s=2, ops_per_s=1000), [1_000_000] * 10, 4.0),
        # 6 tiny moves at 2 ops/s: 2 in the burst, 4 more take 2 s.
        (Limits(mb_per_s=100, ops_per_s=2), [10] * 6, 2.0),
        # One object larger than a second's budget moves at once, then the debt is paid.
        (Limits(mb_per_s=1, ops_per_s=1000), [5_000_000, 1], 4.0),
    ],
)
def test_the_average_holds(limits, sizes, expected):
    assert _moves(limits, sizes) == pytest.approx(expected, abs=0.01)
