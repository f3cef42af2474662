"""The mover's throttle: at most ``mb_per_s`` and ``ops_per_s`` on average.

Two token buckets refilled by the engine's clock (so tests with a
``ManualClock`` never sleep for real). A move takes one op and its size in
bytes; it waits until both buckets have them. A burst of one second's worth
is allowed; an object larger than a second's budget moves once the bucket is
full and leaves it in debt, so the average holds.
"""

from __future__ import annotations

from typing import Protocol

from tiering.policy import Throttle as Limits


class Clock(Protocol):
    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class Throttle:
    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.clock = clock
        self.byte_rate = limits.mb_per_s * 1_000_000
        self.op_rate = limits.ops_per_s
        self._bytes = self.byte_rate  # start with one second's burst
        self._ops = self.op_rate
        self._at = clock.time()

    def _refill(self) -> None:
        now = self.clock.time()
        elapsed = max(now - self._at, 0.0)
        self._at = now
        self._bytes = min(self._bytes + elapsed * self.byte_rate, self.byte_rate)
        self._ops = min(self._ops + elapsed * self.op_rate, self.op_rate)

    def wait_for(self, nbytes: int) -> float:
        """Seconds until a move of ``nbytes`` may start (0: now)."""
        self._refill()
        need = min(nbytes, self.byte_rate)  # larger than a second's budget: wait for a full one
        short_bytes = max(need - self._bytes, 0.0) / self.byte_rate
        short_ops = max(1.0 - self._ops, 0.0) / self.op_rate
        return max(short_bytes, short_ops)

    async def take(self, nbytes: int) -> None:
        # Within a microsecond is now: float rounding must not spin on ever smaller waits.
        while (delay := self.wait_for(nbytes)) > 1e-6:
            await self.clock.sleep(delay)
        self._bytes -= nbytes  # may go below zero: the next move waits the longer
        self._ops -= 1.0
