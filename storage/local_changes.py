"""The embedded backend's change feed: generation counters in one shared memory map.

Every process that opens the data directory (gateway workers, the CLI) maps
the same file ``<data_dir>/changes/<pool>.slots``: ``SLOTS`` 64-bit counters.
A publish increments the counters of its tags' slots under an exclusive
``flock`` (two writers never lose an increment); a reader looks at its slot
in the map. The page cache is shared, so a publish is seen by every process
the moment it returns: no notice can be missed, and the feed is always
trusted. A crash mid-publish leaves counters that moved or did not; either
way no process mistakes a changed slot for an unchanged one.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from collections.abc import Collection
from pathlib import Path

SLOTS = 1 << 20
_MASK = SLOTS - 1
_SIZE = SLOTS * 8


class LocalChangeFeed:
    """``storage.protocol.ChangeFeed`` for the ``local`` backend."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._slots: memoryview | None = None

    async def start(self, listen: bool = True) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < _SIZE:
                    os.ftruncate(fd, _SIZE)  # zeros; every process sizes it the same
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, _SIZE)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._slots = memoryview(self._map).cast("Q")

    async def publish(self, tags: Collection[int]) -> None:
        if self._fd is None:  # (also after close: a writer must never skip a publish)
            await self.start(listen=False)
        slots, fd = self._slots, self._fd
        if slots is None or fd is None or not tags:
            return
        fcntl.flock(fd, fcntl.LOCK_EX)  # microseconds: held for a few increments
        try:
            for slot in {tag & _MASK for tag in tags}:
                slots[slot] = (slots[slot] + 1) & 0xFFFFFFFFFFFFFFFF
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def generation(self, tag: int) -> int | None:
        slots = self._slots
        return None if slots is None else slots[tag & _MASK]

    async def close(self) -> None:
        slots, mapped, fd = self._slots, self._map, self._fd
        self._slots = self._map = self._fd = None
        if slots is not None:
            slots.release()
        if mapped is not None:
            mapped.close()
        if fd is not None:
            os.close(fd)
