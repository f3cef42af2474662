"""Deduplicated payloads: bodies as content-defined, compressed, reference-counted chunks.

A payload above the inline limit is streamed through ``dedupe.DedupeWriter``
into the chunk pool. Every ``span`` bytes (1 GiB) a new writer starts, with
its own owner id ``<data prefix>.<n:08x>`` and its own manifest
``m.<owner>`` in the meta pool, so a manifest (and a writer's memory) stays
bounded whatever the object size. The index entry names the run of manifests
as one ``Segment(kind="manifests")``.

Write order: chunks and their references (the writer), then the manifests,
then (by the caller) the index entry — the commit — then ``release`` of what
the entry replaced: its chunk references, then its manifest objects. A crash
before the commit leaves references and maybe manifests no entry names;
``atonix-cli fsck --repair`` drops them once they are older than the stale
threshold and the collector then removes the chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from dedupe import (
    ChunkCorrupt,
    ChunkMissing,
    ChunkStore,
    CpuPool,
    DedupeConfig,
    DedupeWriter,
    Manifest,
    ManifestCorrupt,
    decode_manifest,
    encode_manifest,
    failpoints,
    read_range,
)
from engine import layout
from engine.records import MANIFESTS, BucketDedupe, Segment
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

log = logging.getLogger("atonix.dedupe")


class DataPathObserver:
    """What the data path reports (the server's metrics implement it; no-ops here)."""

    def ingested(self, logical: int, stored: int, saved: int) -> None:
        """A chunked payload was written: its bytes, new chunk bytes, bytes zstd saved."""

    def integrity_error(self) -> None:
        """A chunk or manifest failed its check on a read."""

    def reclaimed(self, nbytes: int) -> None:
        """The collector removed chunks of this many bytes."""

    def cache_access(self, hit: bool, cached_bytes: int) -> None:
        """A chunk read was served from the chunk cache (or not); what it holds now."""

    def hot_cache(self, hit: bool, cached_bytes: int) -> None:
        """An index-entry lookup was served from the hot cache (or not); what it holds."""

    def hot_cache_invalidated(self, keys: int) -> None:
        """This process published changes of this many keys to every gateway."""




class ChunkedPayloads:
    """The process's chunk store, CPU pool and manifest I/O."""

    def __init__(
        self,
        meta: Pool,
        store: ChunkStore,
        cpu: CpuPool,
        config: DedupeConfig,
        *,
        span: int = layout.MANIFEST_SPAN,
        observer: DataPathObserver | None = None,
    ) -> None:
        self.meta = meta
        self.store = store
        self.cpu = cpu
        self.config = config
        self.span = span
        self.observer = observer or DataPathObserver()
        self._reported = (0, 0)  # store.stats (bytes_stored, raw_bytes_created) last reported

    def report_ingested(self, logical: int) -> None:
        stats = self.store.stats
        stored = stats.bytes_stored - self._reported[0]
        raw = stats.raw_bytes_created - self._reported[1]
        self._reported = (stats.bytes_stored, stats.raw_bytes_created)
        self.observer.ingested(logical, stored, max(raw - stored, 0))

    def config_for(self, policy: BucketDedupe) -> DedupeConfig:
        level = policy.compression_level
        if level is None:
            return self.config
        if level <= 0:  # compression off: every chunk stays raw
            return dataclasses.replace(self.config, min_saving=1.0, use_dictionary=False)
        return dataclasses.replace(self.config, zstd_level=level)

    async def load(self, owner: str, *, cached: bool = False) -> Manifest:
        """A manifest; ``cached`` (the read path) shares the chunk cache and its single flight.

        A manifest is written once under an owner id that is never reused, so a
        cached copy cannot be stale; a burst of GETs of one object reads it once.
        Maintenance (fsck, release) always reads the backend.
        """
        oid = layout.manifest_object(owner)
        cache = self.store.cache
        if not cached or cache is None:
            return decode_manifest(await self.meta.read(oid))
        raw = await cache.get_or_load(("manifest", owner), lambda: self.meta.read(oid))
        return decode_manifest(raw)

    async def load_manifest(self, owner: str) -> Manifest | None:
        """``dedupe.ManifestSource``: a committed manifest (None if there is none)."""
        try:
            return await self.load(owner, cached=True)
        except (ObjectNotFound, ManifestCorrupt):
            return None

    async def rewrite_manifest(self, old: Manifest, new: Manifest) -> bool:
        """``dedupe.compaction.ManifestStore``: the pack compactor moves a manifest to a new
        pack, guarded on the stored manifest being ``old`` (not released, not
        moved by another gateway meanwhile). Other gateways' cached copies name
        the old pack: once it is gone their reads fail over to the stored
        manifest (``_read_stripe``)."""
        oid = layout.manifest_object(old.owner)
        try:
            version = (await self.meta.stat(oid)).version
            if await self.meta.read(oid) != encode_manifest(old):
                return False
            encoded = encode_manifest(new)
            await self.meta.operate(oid, WriteOp().assert_version(version).write_full(encoded))
        except (ObjectNotFound, GuardFailed):
            return False
        if self.store.cache is not None:
            self.store.cache.replace(("manifest", old.owner), encoded)
        return True

    async def stored_manifest(self, owner: str) -> Manifest | None:
        """``dedupe.compaction.ManifestStore``: the manifest as stored now (never
        a cached copy), None if there is none."""
        try:
            return await self.load(owner)
        except (ObjectNotFound, ManifestCorrupt):
            return None

    async def read(self, seg: Segment, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of one chunked segment, verified chunk by chunk."""
        for n in range(start // seg.stripe_size, seg.stripes):
            base = n * seg.stripe_size
            if base >= end:
                return
            try:
                manifest = await self.load(layout.stripe_oid(seg.data_prefix, n), cached=True)
            except ManifestCorrupt:
                self.observer.integrity_error()
                raise
            lo, hi = max(start - base, 0), min(end - base, manifest.size)
            async for piece in self._read_stripe(manifest, lo, hi):
                yield piece

    async def _read_stripe(self, manifest: Manifest, lo: int, hi: int) -> AsyncIterator[bytes]:
        """Bytes [lo, hi) of one manifest. A chunk that fails to read may be the
        cached manifest's fault: the pack compactor moved the manifest and the
        old pack is gone. Then the stored manifest is read and the rest of the
        range comes from it."""
        done, retried = lo, False
        while True:
            pieces = read_range(
                self.store, manifest, done, hi, cpu=self.cpu, read_ahead=self.config.read_ahead
            )
            try:
                async for piece in pieces:
                    done += len(piece)
                    yield piece
                return
            except (ChunkCorrupt, ChunkMissing):
                fresh = None if retried else await self._moved(manifest)
                if fresh is None:
                    self.observer.integrity_error()
                    raise
                manifest, retried = fresh, True
            finally:
                await pieces.aclose()

    async def _moved(self, cached: Manifest) -> Manifest | None:
        """The stored manifest if it differs from the cached copy (else None)."""
        try:
            stored = await self.meta.read(layout.manifest_object(cached.owner))
        except ObjectNotFound:
            return None
        if stored == encode_manifest(cached):
            return None
        if self.store.cache is not None:
            self.store.cache.replace(("manifest", cached.owner), stored)
        return decode_manifest(stored)

    async def release(self, seg: Segment) -> None:
        """Drop the segment's references, then its manifests (idempotent)."""
        for n in range(seg.stripes):
            oid = layout.manifest_object(layout.stripe_oid(seg.data_prefix, n))
            try:
                manifest = decode_manifest(await self.meta.read(oid))
            except ObjectNotFound:
                continue  # released before
            except ManifestCorrupt:
                # Which references it held is unknown: they become stale references
                # that no live manifest names, and fsck --repair drops them.
                log.warning("released a corrupt manifest %s; fsck drops its references", oid)
                self.observer.integrity_error()
                with contextlib.suppress(ObjectNotFound):
                    await self.meta.remove(oid)
                continue
            await self.store.release(manifest)
            await failpoints.hit("engine.before_manifest_remove")
            with contextlib.suppress(ObjectNotFound):
                await self.meta.remove(oid)


class ChunkedWriter:
    """Streams one body into manifests of at most ``span`` bytes each."""

    def __init__(self, payloads: ChunkedPayloads, data_prefix: str, config: DedupeConfig) -> None:
        self.p = payloads
        self.data_prefix = data_prefix
        self.config = config
        self.size = 0
        self._writer: DedupeWriter | None = None
        self._done: list[Manifest] = []
        self._stored: list[str] = []  # manifest objects written

    async def write(self, piece: bytes) -> None:
        view = memoryview(piece)
        while view:
            if self._writer is None:
                owner = layout.stripe_oid(self.data_prefix, len(self._done))
                self._writer = DedupeWriter(
                    self.p.store, owner, config=self.config, cpu=self.p.cpu, manifests=self.p
                )
            room = self.p.span - self._writer.size
            take = bytes(view[:room]) if len(view) > room else bytes(view)
            await self._writer.write(take)
            self.size += len(take)
            view = view[len(take) :]
            if self._writer.size >= self.p.span:
                await self._close_writer()

    async def finish(self) -> Segment:
        """Store the manifests once every chunk is referenced; the segment naming them."""
        if self._writer is not None:
            await self._close_writer()
        await failpoints.hit("engine.before_manifest")
        await asyncio.gather(*(self._store_manifest(m) for m in self._done))
        await failpoints.hit("engine.before_index")
        self.p.report_ingested(self.size)
        return Segment(self.data_prefix, self.size, self.p.span, len(self._done), MANIFESTS)

    async def discard(self) -> None:
        """Drop every reference taken and every manifest written (a failed upload)."""
        if self._writer is not None:
            await self._writer.abort()
            self._writer = None
        for m in self._done:
            await self.p.store.release(m)
        for owner in self._stored:
            with contextlib.suppress(ObjectNotFound):
                await self.p.meta.remove(layout.manifest_object(owner))

    async def _close_writer(self) -> None:
        assert self._writer is not None
        writer, self._writer = self._writer, None
        try:
            self._done.append(await writer.finish())
        except BaseException:
            await writer.abort()
            raise

    async def _store_manifest(self, m: Manifest) -> None:
        self._stored.append(m.owner)
        await self.p.meta.write_full(layout.manifest_object(m.owner), encode_manifest(m))
