"""The one clock every time-dependent path of the engine reads.

Stored timestamps (object mtimes, bucket and user creation, upload
initiation, chunk reference stamps, release-queue records), ages (GC grace,
stale manifests, release adoption, lease expiry) and waits (lease
heartbeats, split polling) all come from one ``Clock`` that the process
assembly passes down. Production runs on ``SystemClock``; tests pass a
``ManualClock`` and age data by days in a few milliseconds.

The dedupe layer below the engine takes the same clock as a plain
``Callable[[], float]`` (``clock.time``), so it needs no import from here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (what records store)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals and timeouts)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class OffsetClock(SystemClock):
    """The system clock shifted by ``offset`` seconds: a process started with
    ``ATONIX_CLOCK_OFFSET`` lives that far in the future (tests age data by days
    across processes: a gateway, the CLI's tier apply)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


class ManualClock:
    """A clock that moves only when told: ``advance`` ages everything at once.

    ``sleep`` moves the clock by the time slept and yields to the event loop
    once, so code that waits (heartbeats, polls) runs at full speed in tests
    instead of blocking on a clock nobody advances.
    """

    def __init__(self, start: float | None = None) -> None:
        self._wall = time.time() if start is None else start
        self._mono = 0.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._wall += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


SYSTEM_CLOCK = SystemClock()
