"""One upload's side of chunk packs: batched index lookups, one reference per pack,
and the new chunks gathered into packs.

The writer looks up about a pack's worth of chunks together (one omap read
per index shard), then its chunk tasks run concurrently. A chunk found in a
pack costs at most one reference add *per pack* for the whole upload. A new
chunk is appended to the pack being built; a full pack is written with one create (its chunk table
and this upload's reference included), then named in the index.

Write order: pack (data and reference) -> index entries -> (the caller's)
manifest -> index entry of the object. A crash before the manifest leaves
packs whose only reference belongs to an upload that never committed: fsck
drops it as stale and the collector removes the pack; index entries naming a
removed pack only cost a failed reference add and are overwritten.
"""

from __future__ import annotations

import asyncio

from dedupe.chunk_format import EncodedChunk
from dedupe.manifest import ManifestEntry
from dedupe.packs import PackBuffer, PackSlot
from dedupe.store import ChunkStore

Hit = tuple[bytes, PackSlot]


class PackWriter:
    def __init__(self, store: ChunkStore, tier: str, owner: str, pack_bytes: int) -> None:
        self.store = store
        self.tier = tier
        self.owner = owner
        self.pack_bytes = pack_bytes
        # Every pack this upload referenced or may have written: what abort drops.
        self.tried: set[bytes] = set()
        self._known: dict[bytes, Hit | None] = {}  # prefetched, not yet asked for
        self._refs: dict[bytes, asyncio.Future[bool]] = {}
        self._buffer = PackBuffer()
        self._writing: set[asyncio.Task] = set()

    async def prefetch(self, fps: list[bytes]) -> None:
        """Look up a batch of chunks together: one read per index shard they touch.

        (No process-wide cache of answers: fsck's repair removes the entry of a
        corrupt chunk so that the next upload stores it again, and a cached
        answer would keep pointing new objects at the bad copy.)
        """
        todo = [fp for fp in dict.fromkeys(fps) if fp not in self._known]
        if todo:
            found = await self.store.index(self.tier).lookup(todo)
            self._known.update((fp, found.get(fp)) for fp in todo)

    def indexed(self, fp: bytes) -> bool:
        """Whether the prefetched answer for ``fp`` names a place."""
        return self._known.get(fp) is not None

    async def find(self, fp: bytes) -> Hit | None:
        """Where the index says a chunk is."""
        if fp in self._known:
            return self._known.pop(fp)
        return (await self.store.index(self.tier).lookup([fp])).get(fp)

    async def reference(self, pack: bytes) -> bool:
        """Add this upload's reference to a pack, once; False if the pack is gone."""
        taken = self._refs.get(pack)
        if taken is not None:
            return await asyncio.shield(taken)
        taken = self._refs[pack] = asyncio.get_running_loop().create_future()
        self.tried.add(pack)
        try:
            ok = await self.store.try_add_ref(self.tier, pack, self.owner)
        except BaseException as e:
            taken.set_exception(e)
            taken.exception()
            raise
        taken.set_result(ok)
        return ok

    async def append(self, chunk: EncodedChunk) -> Hit:
        """Put a new chunk in the pack being built; a full pack is written before
        this returns (the caller's concurrency bounds how many wait)."""
        buffer = self._buffer
        slot = buffer.append(chunk)
        self.tried.add(buffer.pack)
        if buffer.size >= self.pack_bytes:
            self._buffer = PackBuffer()
            await self._write(buffer)
        return buffer.pack, slot

    async def finish(self) -> None:
        """Write the last, partly filled pack."""
        buffer, self._buffer = self._buffer, PackBuffer()
        if buffer.slots:
            await self._write(buffer)

    async def index_object(self, entry: ManifestEntry) -> None:
        """Name a chunk stored as its own object (a delta) in the index."""
        slot = PackSlot(entry.fingerprint, 0, entry.stored_len, entry.length, entry.codec)
        await self.store.index(self.tier).insert(b"", [slot])

    async def settle(self) -> None:
        """Wait for pack writes in flight (their callers may have been cancelled):
        abort may drop references only once none can land any more."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    async def _write(self, buffer: PackBuffer) -> None:
        # Its own task: a cancelled caller must not leave a create in flight untracked.
        task = asyncio.ensure_future(self._write_now(buffer))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        await asyncio.shield(task)

    async def _write_now(self, buffer: PackBuffer) -> None:
        await self.store.put_pack(self.tier, buffer, self.owner)
        await self.store.index(self.tier).insert(buffer.pack, buffer.slots)
