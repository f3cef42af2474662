"""A bounded in-memory cache of decoded chunks: S3-FIFO admission, single-flight loads.

Chunks are content-addressed and never rewritten, so a cached chunk can never
be stale: no invalidation exists. What matters is which chunks earn the
memory. S3-FIFO (Yang et al., SOSP 2023) keeps a small FIFO (10% of the
bytes) that every new chunk enters and a main FIFO for chunks that were hit
while in the small one (or whose key is in the *ghost* FIFO of recently
evicted keys). A one-pass scan (a large GET read once) therefore flows
through the small queue without displacing the working set, which an LRU
would lose entirely.

Single flight: concurrent misses on the same chunk share one backend read
(a burst of GETs of the same cold object causes one read per chunk).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable

_MAX_FREQ = 3


def _retrieve(task: asyncio.Future) -> None:
    """Mark a failed load's exception retrieved: its callers re-raise it themselves."""
    if not task.cancelled():
        task.exception()


class ChunkCache:
    def __init__(
        self,
        capacity_bytes: int,
        *,
        small_fraction: float = 0.1,
        on_access: Callable[[bool, int], None] | None = None,
    ) -> None:
        self.capacity = capacity_bytes
        self.small_capacity = max(int(capacity_bytes * small_fraction), 1)
        self.on_access = on_access or (lambda hit, cached: None)
        self._data: dict[Hashable, bytes] = {}
        self._freq: dict[Hashable, int] = {}
        self._small: deque[Hashable] = deque()
        self._main: deque[Hashable] = deque()
        self._ghost: OrderedDict[Hashable, None] = OrderedDict()
        self._small_bytes = 0
        self._main_bytes = 0
        self._loading: dict[Hashable, asyncio.Future[bytes]] = {}
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return self._small_bytes + self._main_bytes

    def get(self, key: Hashable) -> bytes | None:
        value = self._data.get(key)
        if value is not None:
            self._freq[key] = min(self._freq[key] + 1, _MAX_FREQ)
        return value

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached value, or ``load()``'s (one load per key at a time, shared)."""
        value = self.get(key)
        if value is not None:
            self.hits += 1
            self.on_access(True, self.size)
            return value
        pending = self._loading.get(key)
        if pending is not None:
            self.hits += 1  # served by another request's read: no backend read
            self.on_access(True, self.size)
            return await asyncio.shield(pending)
        self.misses += 1
        # The read runs in its own task: a caller that is cancelled (its client hung
        # up) must not cancel the read the other callers of the burst are waiting for.
        task = asyncio.ensure_future(self._load(key, load))
        task.add_done_callback(_retrieve)
        self._loading[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            value = await load()
        finally:
            self._loading.pop(key, None)
        self.put(key, value)
        self.on_access(False, self.size)
        return value

    def put(self, key: Hashable, value: bytes) -> None:
        if key in self._data or len(value) > self.capacity // 2:
            return  # present already, or too large to be worth a slot
        self._data[key] = value
        self._freq[key] = 0
        if key in self._ghost:
            del self._ghost[key]
            self._main.append(key)
            self._main_bytes += len(value)
        else:
            self._small.append(key)
            self._small_bytes += len(value)
        self._evict()

    def replace(self, key: Hashable, value: bytes) -> None:
        """Swap a cached value that changed (rare: a manifest the pack compactor
        moved). Finding the key's queue is a scan, fine on this path."""
        old = self._data.get(key)
        if old is None:
            return
        self._data[key] = value
        if key in self._small:
            self._small_bytes += len(value) - len(old)
        else:
            self._main_bytes += len(value) - len(old)
        self._evict()

    def _evict(self) -> None:
        while self.size > self.capacity:
            if self._small_bytes > self.small_capacity or not self._main:
                self._evict_small()
            else:
                self._evict_main()

    def _evict_small(self) -> None:
        key = self._small.popleft()
        n = len(self._data[key])
        self._small_bytes -= n
        if self._freq[key] > 0:  # hit while on probation: promote
            self._freq[key] = 0
            self._main.append(key)
            self._main_bytes += n
            return
        self._drop(key)
        self._ghost[key] = None
        while len(self._ghost) > max(len(self._main), 64):
            self._ghost.popitem(last=False)

    def _evict_main(self) -> None:
        key = self._main.popleft()
        if self._freq[key] > 0:  # still used: another lap
            self._freq[key] -= 1
            self._main.append(key)
            return
        self._main_bytes -= len(self._data[key])
        self._drop(key)

    def _drop(self, key: Hashable) -> None:
        del self._data[key]
        del self._freq[key]
