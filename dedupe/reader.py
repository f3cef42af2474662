"""Read a byte range of a manifest: only the chunks it needs, in order, verified.

Chunks are fetched and decoded (decompress + XXH3 check, in the CpuPool) up to
``read_ahead`` ahead of the one being yielded, so a download overlaps backend
latency without holding more than ``read_ahead + 1`` chunks in memory. A
corrupt chunk raises ``ChunkCorrupt`` (counted in the store's stats) before
any of its bytes are yielded; a missing one raises ``ChunkMissing``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from dedupe.errors import ChunkCorrupt
from dedupe.manifest import Manifest, ManifestEntry
from dedupe.store import ChunkStore
from dedupe.workers import CpuPool


async def read_range(
    store: ChunkStore,
    manifest: Manifest,
    start: int = 0,
    end: int | None = None,
    *,
    cpu: CpuPool,
    read_ahead: int = 4,
) -> AsyncIterator[bytes]:
    """Yield bytes [start, end) of the payload the manifest describes."""
    end = manifest.size if end is None else min(end, manifest.size)
    span = manifest.chunk_span(max(start, 0), end)
    queue: deque[tuple[int, asyncio.Task]] = deque()
    todo = iter(span)

    def schedule() -> None:
        while len(queue) <= read_ahead:
            index = next(todo, None)
            if index is None:
                return
            entry = manifest.entries[index]
            queue.append((index, asyncio.ensure_future(_fetch(store, entry, cpu))))

    try:
        schedule()
        while queue:
            index, task = queue.popleft()
            raw = await task
            schedule()
            base = manifest.start_of(index)
            lo, hi = max(start - base, 0), min(end - base, len(raw))
            yield raw[lo:hi] if (lo, hi) != (0, len(raw)) else raw
    finally:
        # Read-ahead still in flight when the consumer stops: await it rather than
        # cancel it. A cancelled backend read keeps running underneath, and must
        # not outlive the reader (the pool may be closed next); it is at most
        # read_ahead chunks.
        if queue:
            await asyncio.gather(*(t for _, t in queue), return_exceptions=True)


async def read_all(store: ChunkStore, manifest: Manifest, *, cpu: CpuPool) -> bytes:
    return b"".join([piece async for piece in read_range(store, manifest, cpu=cpu)])


async def _fetch(store: ChunkStore, entry: ManifestEntry, cpu: CpuPool) -> bytes:
    raw = await store.read_entry(entry, cpu)
    if len(raw) != entry.length:
        # The chunk verifies but is not what the manifest expects: never
        # return bytes of the wrong length (a truncated or mixed-up object).
        store.stats.checksum_failures += 1
        raise ChunkCorrupt(entry.fingerprint, f"{len(raw)} bytes, manifest says {entry.length}")
    return raw
