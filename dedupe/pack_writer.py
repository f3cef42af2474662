"""One upload's side of chunk packs: batched index lookups, one reference per pack,
and the new chunks gathered into packs.

The writer looks up about a pack's worth of chunks together (one omap read
per index shard), then its chunk tasks run concurrently. A chunk found in a
pack costs at most one reference add *per pack* for the whole upload. A new
chunk is appended to the pack being built; a full pack is written with one create (its chunk table
and this upload's reference included), then named in the index.

A writer for a colder tier may name ``hotter`` tiers: a chunk one of them
already holds in a pack is referenced there instead of stored again, so a
chunk shared by objects on different tiers stays in the hottest tier any of
them needs (a move to warm or cold of data that hot objects share moves only
what is not shared).

Write order: pack (data and reference) -> index entries -> (the caller's)
manifest -> index entry of the object. A crash before the manifest leaves
packs whose only reference belongs to an upload that never committed: fsck
drops it as stale and the collector removes the pack; index entries naming a
removed pack only cost a failed reference add and are overwritten.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from dedupe.chunk_format import EncodedChunk
from dedupe.manifest import ManifestEntry
from dedupe.packs import PackBuffer, PackSlot
from dedupe.store import ChunkStore
from storage import ObjectNotFound


class Hit(NamedTuple):
    """Where the index says a chunk is: a pack (or, pack b"", an object of its own)."""

    tier: str
    pack: bytes
    slot: PackSlot


class PackWriter:
    def __init__(
        self, store: ChunkStore, tier: str, owner: str, pack_bytes: int,
        hotter: tuple[str, ...] = (), moving: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.tier = tier
        self.owner = owner
        self.pack_bytes = pack_bytes
        self.hotter = hotter  # looked up first, hottest first; their packs only
        self.moving = moving  # references that do not keep a hotter pack needed
        self._needed: dict[tuple[str, bytes], bool] = {}
        # Every (tier, pack) this upload referenced or may have written: what abort drops.
        self.tried: set[tuple[str, bytes]] = set()
        self._known: dict[bytes, Hit | None] = {}  # prefetched, not yet asked for
        self._refs: dict[tuple[str, bytes], asyncio.Future[bool]] = {}
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
            self._known.update(await self._lookup(todo))

    def indexed(self, fp: bytes) -> bool:
        """Whether the prefetched answer for ``fp`` names a place."""
        return self._known.get(fp) is not None

    async def find(self, fp: bytes) -> Hit | None:
        """Where the index says a chunk is."""
        if fp in self._known:
            return self._known.pop(fp)
        return (await self._lookup([fp]))[fp]

    async def _lookup(self, fps: list[bytes]) -> dict[bytes, Hit | None]:
        """Each chunk's place: in a pack of a hotter tier, else anywhere in this one."""
        out: dict[bytes, Hit | None] = {}
        todo = fps
        for tier in self.hotter:
            found = await self.store.index(tier).lookup(todo)
            packs = {pack for pack, _ in found.values() if pack}
            needed = await asyncio.gather(*(self._needed_in(tier, p) for p in packs))
            kept = {p for p, yes in zip(packs, needed, strict=True) if yes}
            for fp, (pack, slot) in found.items():
                if pack in kept:  # a chunk object of its own stays its tier's business
                    out[fp] = Hit(tier, pack, slot)
            todo = [fp for fp in todo if fp not in out]
            if not todo:
                return out
        found = await self.store.index(self.tier).lookup(todo)
        for fp in todo:
            place = found.get(fp)
            out[fp] = Hit(self.tier, *place) if place is not None else None
        return out

    async def _needed_in(self, tier: str, pack: bytes) -> bool:
        """Whether an object other than the one moving uses the pack in ``tier`` (per
        pack, not per chunk: packs hold one upload's new chunks, so in practice the
        chunks another object shares sit in packs that object references)."""
        if not self.moving or (tier, pack) in self._refs:
            return True
        known = self._needed.get((tier, pack))
        if known is None:
            try:
                owners = await self.store.some_owners(tier, pack, len(self.moving) + 1)
            except ObjectNotFound:  # collected, its index entry not yet forgotten
                owners = []
            known = self._needed[(tier, pack)] = any(o not in self.moving for o in owners)
        return known

    async def reference(self, tier: str, pack: bytes) -> bool:
        """Add this upload's reference to a pack of ``tier``, once; False if it is gone."""
        taken = self._refs.get((tier, pack))
        if taken is not None:
            return await asyncio.shield(taken)
        taken = self._refs[(tier, pack)] = asyncio.get_running_loop().create_future()
        self.tried.add((tier, pack))
        try:
            ok = await self.store.try_add_ref(tier, pack, self.owner)
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
        self.tried.add((self.tier, buffer.pack))
        if buffer.size >= self.pack_bytes:
            self._buffer = PackBuffer()
            await self._write(buffer)
        return Hit(self.tier, buffer.pack, slot)

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
