"""Wall time and process CPU time of the work an in-process benchmark measures."""

from __future__ import annotations

import time


class Clock:
    """Sums wall seconds and process CPU seconds (all threads) between start() and stop()."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._t = self._c = 0.0

    def start(self) -> None:
        self._t, self._c = time.perf_counter(), time.process_time()

    def stop(self) -> float:
        """Stop; returns the wall seconds of this interval."""
        wall = time.perf_counter() - self._t
        self.wall += wall
        self.cpu += time.process_time() - self._c
        return wall

    @property
    def cores(self) -> float:
        """CPU cores busy on average (1.0 = one core) while running."""
        return self.cpu / self.wall if self.wall else 0.0
