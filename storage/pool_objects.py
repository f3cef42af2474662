"""Bytes in a pool of the deployment's own backend, under the names a split pool
gives them: what an erasure-coded warm tier keeps its packs in.

RADOS erasure-coded pools store data and xattrs but no omap, and only whole
objects or appends; the chunk store keeps every pack's references in an omap.
So an erasure-coded tier is a ``SplitPool``: its catalog (a replicated pool)
holds the omaps and names, this store the bytes, written once under a new
name per write, read by range, removed when the catalog no longer names them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from storage.errors import ObjectNotFound
from storage.protocol import Pool


class PoolObjects:
    """Write-once objects in one pool: the data half of a split pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @property
    def address(self) -> str:
        return f"pool {self.pool.name}"

    def record(self) -> bytes:
        return json.dumps({"kind": "pool", "pool": self.pool.name}).encode()

    @classmethod
    def from_record(cls, record: dict[str, Any], open_pool) -> PoolObjects:
        return cls(open_pool(record["pool"]))

    def same_place(self, other: object) -> bool:
        return isinstance(other, PoolObjects) and other.pool.name == self.pool.name

    async def put(self, name: str, data: bytes) -> None:
        await self.pool.write_full(name, data)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return await self.pool.read(name, offset, length)

    async def delete(self, name: str) -> None:
        await self.pool.remove(name)

    async def listing(self) -> AsyncIterator[tuple[str, float]]:
        """(name, modified epoch seconds) of every object: one stat each, which the
        collector's sweep pays beside the reads it makes of every pack anyway."""
        async for name in self.pool.list_objects():
            try:
                yield name, (await self.pool.stat(name)).mtime
            except ObjectNotFound:
                continue  # removed since it was listed

    async def check(self) -> None:
        """Nothing to reach: the pool is made with the tier (``TierMap.ready``)."""

    def close(self) -> None:
        pass
