"""Stream a body into deduplicated, compressed chunks and build its manifest.

Usage by the engine (write order: chunks and references, then the caller's
manifest, then the caller's index entry)::

    writer = DedupeWriter(store, owner=f"{bucket_id}.{uuid}", config=cfg, cpu=cpu)
    try:
        async for piece in body:
            await writer.write(piece)
        manifest = await writer.finish()   # every chunk stored and referenced
    except BaseException:
        await writer.abort()               # drop the references taken so far
        raise
    # caller: store encode_manifest(manifest), then commit the index entry

Memory per writer: the chunker tail (< max_size), the piece being fed and the
chunks cut from it, and at most ``write_window`` chunks being stored; with packs
(``dedupe.pack_writer``) also up to ``pack_bytes`` of encoded chunks staged for
one batched index lookup and up to ``pack_bytes`` in the pack being built. CPU
work (cutting, hashing, compressing: one job per piece) runs in the shared
``CpuPool``.

Given a ``ManifestSource``, a new chunk that follows a duplicate may be stored
as a delta against the chunk it replaced (``dedupe.delta`` chooses the base).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from dedupe import failpoints
from dedupe.chunk_format import (
    Codec,
    EncodedChunk,
    ZstdDict,
    encode_chunk,
    encode_delta,
    fingerprint,
)
from dedupe.chunker import StreamChunker
from dedupe.config import DedupeConfig
from dedupe.delta import Anchor, BasePlanner, ManifestSource
from dedupe.errors import DedupeError
from dedupe.manifest import Manifest, ManifestEntry
from dedupe.pack_writer import PackWriter
from dedupe.store import ChunkStore, packed_at
from dedupe.workers import CpuPool

log = logging.getLogger("atonix.dedupe")


class DedupeWriter:
    def __init__(
        self,
        store: ChunkStore,
        owner: str,
        *,
        config: DedupeConfig,
        cpu: CpuPool,
        tier: str | None = None,
        manifests: ManifestSource | None = None,
    ) -> None:
        """``manifests`` lets the writer store edited chunks as deltas against the
        chunks they replace (``dedupe.delta``); without it every new chunk is whole."""
        self.store = store
        self.owner = owner
        self.config = config
        self.cpu = cpu
        self.tier = tier or config.tier or store.default_tier
        self.size = 0
        self._chunker = StreamChunker(config.chunking)
        self._entries: list[ManifestEntry | None] = []
        self._window = asyncio.Semaphore(config.write_window)
        self._tasks: set[asyncio.Task] = set()
        # fingerprint -> the store call referencing it (a repeat within this
        # upload awaits that instead of storing again)
        self._referenced: dict[bytes, asyncio.Future] = {}
        self._ref_first = False
        self._offset = 0  # of the next chunk submitted
        self._planner = (
            BasePlanner(store, self.tier, owner, manifests)
            if manifests is not None and config.delta_chunks
            else None
        )
        self._packs = (
            PackWriter(store, self.tier, owner, config.pack_bytes, config.hotter_tiers,
                       config.moving_owners)
            if config.pack_bytes
            else None
        )
        self._staged: list[tuple[bytes, bytes]] = []  # (raw, fingerprint): see _stage
        self._staged_bytes = 0
        self._failed: BaseException | None = None
        self._finished = False
        self._stopped = False

    async def write(self, piece: bytes) -> None:
        """Take the next piece of the body (any size)."""
        self._raise_if_failed()
        if not piece:
            return
        if self.size == 0 and self.config.use_dictionary:
            await self.store.dictionaries.current(self.tier)  # refresh from the pool
        self.size += len(piece)
        if not self._chunker.wants_cut(len(piece)):
            self._chunker.feed(piece)  # only buffers: no chunk can be final yet
            return
        if self._packs is not None:
            await self._stage(await self.cpu.run(_cut_and_hash, self._chunker.feed, piece))
        else:
            await self._submit_all(await self._encode(self._chunker.feed, piece))

    async def finish(self) -> Manifest:
        """Store the last chunks; the manifest once every chunk is referenced."""
        self._raise_if_failed()
        if self._packs is not None:
            await self._stage(await self.cpu.run(_cut_and_hash, self._chunker.finish), last=True)
        else:
            await self._submit_all(await self._encode(self._chunker.finish))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._raise_if_failed()
        if self._packs is not None:
            await self._packs.finish()
        await failpoints.hit("writer.before_finish")
        if any(e is None for e in self._entries):
            raise DedupeError("a chunk was never stored")  # e.g. its task was cancelled
        self._finished = True
        return Manifest(self.owner, [e for e in self._entries if e is not None])

    async def consume(self, body: AsyncIterator[bytes]) -> Manifest:
        """write() every piece, then finish(); on any failure abort() and re-raise."""
        try:
            async for piece in body:
                await self.write(piece)
            return await self.finish()
        except BaseException:
            await self.abort()
            raise

    async def cancel(self) -> None:
        """Stop chunk work, keeping the references taken (as a crash would).

        Chunks not yet sent are dropped; store calls already sent are awaited,
        not cancelled: a cancelled backend call may still land afterwards, and
        abort() must drop references only once none can appear any more.
        """
        self._stopped = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._packs is not None:
            await self._packs.settle()

    async def abort(self) -> None:
        """Stop, then drop every reference this writer took (chunks go to GC)."""
        await self.cancel()
        # Every fingerprint we tried: an interrupted add may have landed, and
        # dropping a reference that is not there is harmless.
        tried = [
            ManifestEntry(fp, 0, Codec.RAW, self.tier)
            for fp, stored in self._referenced.items()
            if not _in_pack(stored)
        ]
        packs = self._packs.tried if self._packs is not None else ()
        tried += [ManifestEntry(bytes(32), 0, Codec.RAW, tier, pack=p) for tier, p in packs]
        await self.store.release(Manifest(self.owner, tried))

    # --- internals --------------------------------------------------------------
    async def _encode(
        self, cut: Callable[..., list[bytes]], *args: bytes
    ) -> list[tuple[EncodedChunk, bytes | None, bool]]:
        """Cut and encode in one CpuPool job: one thread hop per piece, not per chunk.

        Each result is (chunk, its raw bytes, whether the tier's dictionary wants
        them as a sample); raw bytes are kept only for a sample or a delta.
        """
        cfg = self.config
        zdict, sample = await self._dictionary()
        keep = sample or self._planner is not None

        def job() -> list[tuple[EncodedChunk, bytes | None, bool]]:
            return [
                (encode_chunk(raw, cfg.zstd_level, cfg.min_saving, zdict), raw if keep else None,
                 sample)
                for raw in cut(*args)
            ]  # fmt: skip

        return await self.cpu.run(job)

    async def _dictionary(self) -> tuple[ZstdDict | None, bool]:
        """The tier's zstd dictionary (if any) and whether it wants samples."""
        dicts = self.store.dictionaries
        if not self.config.use_dictionary:
            return None, False
        await dicts.settle(self.tier)
        return dicts.known(self.tier), dicts.wants_samples(self.tier)

    async def _submit_all(self, encoded: list[tuple[EncodedChunk, bytes | None, bool]]) -> None:
        for chunk in encoded:
            await self._submit(*chunk)

    async def _stage(self, cuts: list[tuple[bytes, bytes]], last: bool = False) -> None:
        """With packs: hold (raw, fingerprint) pairs until about a pack's worth (or
        the last) is cut, look them up together (one index read per shard, not
        per piece), compress only the chunks the index does not know, then store.
        A chunk the index names goes on unencoded (``_unencoded``) and is
        compressed only if its pack turns out to be gone."""
        assert self._packs is not None
        self._staged += cuts
        self._staged_bytes += sum(len(raw) for raw, _ in cuts)
        if self._staged_bytes < self.config.pack_bytes and not last:
            return
        staged, self._staged, self._staged_bytes = self._staged, [], 0
        unseen = [(raw, fp) for raw, fp in staged if fp not in self._referenced]
        await self._packs.prefetch([fp for _, fp in unseen])
        new = {fp: raw for raw, fp in unseen if not self._packs.indexed(fp)}
        cfg = self.config
        zdict, sample = await self._dictionary()

        def job() -> dict[bytes, EncodedChunk]:
            return {
                fp: encode_chunk(raw, cfg.zstd_level, cfg.min_saving, zdict, fp)
                for fp, raw in new.items()
            }

        encoded = await self.cpu.run(job) if new else {}
        for raw, fp in staged:
            enc = encoded.get(fp) or _unencoded(fp, raw)
            await self._submit(enc, raw, sample and fp in encoded)

    async def _encode_one(self, raw: bytes, fp: bytes) -> EncodedChunk:
        zdict, _ = await self._dictionary()
        cfg = self.config
        return await self.cpu.run(encode_chunk, raw, cfg.zstd_level, cfg.min_saving, zdict, fp)

    async def _submit(self, enc: EncodedChunk, raw: bytes | None, sample: bool) -> None:
        await self._window.acquire()
        self._raise_if_failed(release=True)
        index, offset = len(self._entries), self._offset
        self._entries.append(None)
        self._offset += enc.raw_len
        task = asyncio.ensure_future(self._store_chunk(index, offset, enc, raw, sample))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._window.release()
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()

    async def _store_chunk(
        self, index: int, offset: int, enc: EncodedChunk, raw: bytes | None, sample: bool
    ) -> None:
        try:
            await self._store_chunk_at(index, offset, enc, raw, sample)
        finally:
            if self._planner is not None:
                self._planner.settle(index, None)  # no-op once settled; never leave a waiter

    async def _store_chunk_at(
        self, index: int, offset: int, enc: EncodedChunk, raw: bytes | None, sample: bool
    ) -> None:
        if sample and raw is not None and enc.codec is Codec.ZSTD:
            await self.store.dictionaries.offer(self.tier, raw, self.cpu)  # trains once
        if self._stopped:
            raise DedupeError("writer stopped")
        fp = enc.fingerprint
        pending = self._referenced.get(fp)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._referenced[fp] = pending
            try:
                created, stored = await self._put(index, offset, enc, raw)
            except asyncio.CancelledError:
                pending.cancel()
                raise
            except BaseException as e:
                pending.set_exception(e)
                pending.exception()  # mark retrieved: the task itself reports it
                raise
            pending.set_result(stored)
            # Duplicates come in runs: after one, try the cheap reference add first.
            self._ref_first = not created
            await failpoints.hit("writer.chunk_stored")
        else:
            stored = await asyncio.shield(pending)
            if self._planner is not None:
                self._planner.settle(index, Anchor(fp, offset, stored.holder))
        self._entries[index] = stored

    def _entry(self, enc: EncodedChunk, pack: bytes = b"", offset: int = 0) -> ManifestEntry:
        return ManifestEntry(
            enc.fingerprint, enc.raw_len, enc.codec, self.tier, enc.stored_len, b"", pack, offset
        )

    async def _put(
        self, index: int, offset: int, enc: EncodedChunk, raw: bytes | None
    ) -> tuple[bool, ManifestEntry]:
        """Store or reference one chunk: (created, its manifest entry as written)."""
        if self._packs is not None:
            return await self._put_packed(index, offset, enc, raw)
        planner, plain = self._planner, self._entry(enc)
        if planner is None or raw is None or not planner.active:
            # Nothing to align with: create first, as for any unique upload.
            created = await self.store.put(self.tier, enc, self.owner, ref_first=self._ref_first)
            if planner is not None:
                planner.settle(index, None if created else Anchor(enc.fingerprint, offset))
            return created, plain
        if await self.store.try_add_ref(self.tier, enc.fingerprint, self.owner):
            planner.settle(index, Anchor(enc.fingerprint, offset))
            return False, plain
        delta = await self._put_delta(index, offset, enc, raw)
        if delta is not None:
            return delta
        return await self.store.put(self.tier, enc, self.owner), plain

    async def _put_packed(
        self, index: int, offset: int, enc: EncodedChunk, raw: bytes | None
    ) -> tuple[bool, ManifestEntry]:
        """The pack path: the index says where the chunk is, else it goes in a new pack."""
        assert self._packs is not None
        planner, fp = self._planner, enc.fingerprint
        hit = await self._packs.find(fp)  # in a pack, or (pack b"") an object of its own
        if hit is not None and not await self._packs.reference(hit.tier, hit.pack or fp):
            hit = None  # the pack was collected: store the chunk anew
        if hit is None and not enc.blob:  # the index named it, but its pack is gone
            assert raw is not None
            enc = await self._encode_one(raw, fp)
        if hit is not None:
            tier, pack, slot = hit
            if planner is not None:  # a delta's base must be in its own tier
                planner.settle(index, Anchor(fp, offset, pack) if tier == self.tier else None)
            return False, ManifestEntry(
                fp, slot.length, slot.codec, tier, slot.stored_len, b"", pack, slot.offset
            )
        if planner is not None and raw is not None and planner.active:
            delta = await self._put_delta(index, offset, enc, raw)
            if delta is not None:
                if delta[0]:  # created: later uploads find it through the index
                    await self._packs.index_object(delta[1])
                return delta
        elif planner is not None:
            planner.settle(index, None)
        placed = await self._packs.append(enc)
        return True, self._entry(enc, placed.pack, placed.slot.offset)

    async def _put_delta(
        self, index: int, offset: int, enc: EncodedChunk, raw: bytes
    ) -> tuple[bool, ManifestEntry] | None:
        """Store the chunk as a delta object against the planner's base, if that
        base is worth it and still there; None to store it whole."""
        found = await self._delta_for(index, offset, enc, raw)
        if found is None:
            return None
        delta, base = found
        created = await self.store.put_delta(
            self.tier, delta, base.fingerprint, self.owner, packed_at(base)
        )
        if created is None:
            return None
        return created, self._entry(delta)

    async def _delta_for(
        self, index: int, offset: int, enc: EncodedChunk, raw: bytes
    ) -> tuple[EncodedChunk, ManifestEntry] | None:
        """(``raw`` as a delta, its base) against the base the planner proposes, if
        that is worth it. Optional work: any failure here stores the chunk whole."""
        assert self._planner is not None
        try:
            base = await self._planner.propose(index, offset, enc.raw_len)
            if base is None or base.fingerprint == enc.fingerprint:
                return None
            # Where the delta's link will say (no fallback to another copy).
            base_raw = await self.store.read_chunk(
                self.tier, base.fingerprint, self.cpu, size_hint=base.stored_len,
                at=packed_at(base),
            )  # fmt: skip
        except Exception:  # e.g. a base collected meanwhile, a manifest gone, a backend error
            log.debug("no delta for chunk %d of %s", index, self.owner, exc_info=True)
            return None
        delta = await self.cpu.run(
            encode_delta, raw, base.fingerprint, base_raw, self.config.zstd_level
        )
        if delta.stored_len > enc.stored_len * (1.0 - self.config.min_saving):
            return None
        return delta, base

    def _raise_if_failed(self, release: bool = False) -> None:
        if self._failed is not None:
            if release:
                self._window.release()
            raise self._failed
        if self._finished:
            raise DedupeError("writer already finished")


def _in_pack(stored: asyncio.Future) -> bool:
    """Whether a chunk's store call settled with a packed entry (its pack's
    reference is dropped as a pack; no chunk object to drop)."""
    if not stored.done() or stored.cancelled() or stored.exception() is not None:
        return False
    return bool(stored.result().pack)


def _cut_and_hash(cut: Callable[..., list[bytes]], *args: bytes) -> list[tuple[bytes, bytes]]:
    """(raw, fingerprint) of each chunk cut: a CpuPool job (hashlib releases the GIL)."""
    return [(raw, fingerprint(raw)) for raw in cut(*args)]


def _unencoded(fp: bytes, raw: bytes) -> EncodedChunk:
    """A chunk the index names: identity and size only, compressed if ever needed."""
    return EncodedChunk(fp, len(raw), Codec.RAW, b"")
