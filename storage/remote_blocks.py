"""Fixed-size blocks of remote objects, fetched with one ranged GET per run of
missing blocks and kept in a bounded LRU.

Remote objects are write-once under names that are never reused, so a
cached block can never be stale; concurrent readers of one block share one
fetch (a chunk reader reads ahead several chunks that usually sit in the
same block).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

Fetch = Callable[[str, int, int], Awaitable[bytes]]  # (name, offset, length) -> bytes


class BlockCache:
    def __init__(self, fetch: Fetch, block_bytes: int, max_bytes: int) -> None:
        if block_bytes <= 0:
            raise ValueError("block_bytes must be positive")
        self._fetch = fetch
        self.block = block_bytes
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._bytes = 0
        self._pending: dict[tuple[str, int], asyncio.Future[bytes]] = {}
        self._filling: set[asyncio.Task] = set()  # held: the loop keeps only weak refs
        self.fetches = 0  # ranged GETs issued (tests and metrics read it)

    async def read(self, name: str, size: int, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of the remote object ``name`` of ``size`` bytes."""
        first, last = offset // self.block, (offset + length - 1) // self.block
        wanted = range(first, last + 1)
        blocks = await asyncio.gather(*self._obtain(name, size, wanted))
        data = b"".join(blocks)
        start = offset - first * self.block
        return data[start:start + length]

    def forget(self, name: str) -> None:
        for key in [k for k in self._blocks if k[0] == name]:
            self._bytes -= len(self._blocks.pop(key))

    def _obtain(self, name: str, size: int, wanted: range) -> list[Awaitable[bytes]]:
        """One awaitable per wanted block: cached, already being fetched, or fetched
        now together with the missing blocks next to it."""
        out: list[Awaitable[bytes]] = []
        run: list[int] = []
        for n in wanted:
            key = (name, n)
            if key in self._blocks:
                self._blocks.move_to_end(key)
                out.append(_ready(self._blocks[key]))
            elif key in self._pending:
                out.append(asyncio.shield(self._pending[key]))
            else:
                run.append(n)
                out.append(self._future(key))
        if run:
            task = asyncio.ensure_future(self._fill(name, size, run))
            self._filling.add(task)
            task.add_done_callback(self._filling.discard)
        return out

    def _future(self, key: tuple[str, int]) -> Awaitable[bytes]:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        return asyncio.shield(fut)

    async def _fill(self, name: str, size: int, run: list[int]) -> None:
        """Fetch the blocks of ``run`` (ascending, maybe with gaps) in contiguous ranges."""
        start = 0
        while start < len(run):
            end = start
            while end + 1 < len(run) and run[end + 1] == run[end] + 1:
                end += 1
            await self._fill_range(name, size, run[start], run[end])
            start = end + 1

    async def _fill_range(self, name: str, size: int, first: int, last: int) -> None:
        offset = first * self.block
        length = min(size, (last + 1) * self.block) - offset
        keys = [(name, n) for n in range(first, last + 1)]
        try:
            self.fetches += 1
            data = await self._fetch(name, offset, length)
        except BaseException as exc:
            for key in keys:
                fut = self._pending.pop(key, None)
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: an abandoned read must not log it
            if not isinstance(exc, Exception):
                raise
            return
        for i, key in enumerate(keys):
            piece = data[i * self.block:(i + 1) * self.block]
            fut = self._pending.pop(key, None)
            if fut is not None and not fut.done():
                fut.set_result(piece)
            self._store(key, piece)

    def _store(self, key: tuple[str, int], piece: bytes) -> None:
        if len(piece) > self.max_bytes:
            return
        self._blocks[key] = piece
        self._bytes += len(piece)
        while self._bytes > self.max_bytes:
            _, dropped = self._blocks.popitem(last=False)
            self._bytes -= len(dropped)


async def _ready(value: bytes) -> bytes:
    return value
