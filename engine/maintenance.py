"""Payload upkeep over the whole deployment: live segments, fsck, GC and space stats.

*Live segments* are those named by an index entry of any bucket (every key,
through ``BucketIndex.list``) or by a part of a multipart upload in progress.
fsck compares their manifests with the chunks' references (``dedupe.fsck``)
and also reports manifest objects nothing names (an upload that crashed
between its manifest and its commit); ``repair`` drops their references and
removes them once they are older than the stale threshold (younger ones may
belong to an upload still in flight).

Stripes (payloads written without dedupe, in the data pool) get the same
treatment: a stripe object whose prefix no live segment and no queued
release names is an *orphan* (a crash between the stripes and the commit);
fsck reports them, and fsck ``repair`` and the collector remove those older
than the stale threshold. Nothing guards a stripe the way a chunk's
generation does, so age is what protects an upload still writing them.

Used by the server's background collector and by ``atonix-cli fsck|gc|stats``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dedupe import ChunkCollector, FsckReport, GcReport, Manifest, fsck
from dedupe.compaction import COMPACTED, PackCompactor
from dedupe.gc import LIVE, REMOVED, ChunkObjectIndexer
from dedupe.packs import CHUNK_PREFIX, PACK_PREFIX, holder_oid, is_pack
from engine import layout
from engine.assembly import ObjectEngine
from engine.records import BucketRecord, ObjectEntry, Segment
from engine.versions import NULL
from storage import ObjectNotFound, StorageError
from storage.split_pool import ResolvingPool, SplitPool

log = logging.getLogger("atonix.maintenance")

_PAGE = 1000


async def bucket_entries(engine: ObjectEngine, record: BucketRecord) -> AsyncIterator[ObjectEntry]:
    """Every object entry of a bucket, in key order."""
    after = ""
    while True:
        page = await engine.index.list(record.bucket_id, "", "", after, _PAGE)
        for _, entry in page.entries:
            yield entry
        if not page.is_truncated or not page.entries:
            return
        after = page.entries[-1][0]


async def all_versions(engine: ObjectEngine, record: BucketRecord) -> AsyncIterator[ObjectEntry]:
    """Every version of every key of a bucket (current and noncurrent), in key order."""
    key_marker = version_marker = ""
    versioning = engine.objects.versioning
    while True:
        page = await versioning.list_versions(
            record, key_marker=key_marker, version_marker=version_marker, max_keys=_PAGE
        )
        for _, entry, _ in page.versions:
            yield entry
        if not page.is_truncated or not page.versions:
            return
        key_marker, last = page.versions[-1][0], page.versions[-1][1]
        version_marker = last.version_id or NULL


async def live_segments(engine: ObjectEngine) -> AsyncIterator[tuple[str, Segment]]:
    """(bucket name, segment) of every version of every key and in-progress upload part."""
    for record in await engine.buckets.list():
        async for entry in all_versions(engine, record):
            for seg in entry.stored_segments:
                yield record.name, seg
        for _key, upload_id in await engine.uploads.registry.all(record.bucket_id):
            for part in await engine.uploads.store.all_parts(record.bucket_id, upload_id):
                yield record.name, part.segment


def manifest_owners(seg: Segment) -> list[str]:
    return [layout.stripe_oid(seg.data_prefix, n) for n in range(seg.stripes)]


@dataclass(slots=True)
class FsckResult:
    report: FsckReport
    live_manifests: int = 0
    unreadable_manifests: list[str] = field(default_factory=list)  # named but missing/corrupt
    orphan_manifests: list[str] = field(default_factory=list)
    removed_manifests: int = 0
    pending_release: int = 0  # manifests of payloads waiting in the release queue
    orphan_stripes: list[str] = field(default_factory=list)  # data-pool objects nothing names
    removed_stripes: int = 0

    @property
    def clean(self) -> bool:
        return self.report.clean and not self.unreadable_manifests


async def run_fsck(
    engine: ObjectEngine, *, repair: bool = False, stale_seconds: float | None = None
) -> FsckResult:
    chunks = engine.chunks
    stale = chunks.config.stale_ref_seconds if stale_seconds is None else stale_seconds
    if repair:
        await engine.releases.drain(adopt_after=0)  # finishing them is the repair they need
    queued = await engine.releases.pending()
    pending = {owner for seg in queued if seg.is_chunked for owner in manifest_owners(seg)}
    live: set[str] = set()
    stripes = {seg.data_prefix for seg in queued if not seg.is_chunked}
    unreadable: list[str] = []

    async def manifests() -> AsyncIterator[Manifest]:
        async for _bucket, seg in live_segments(engine):
            if not seg.is_chunked:
                stripes.add(seg.data_prefix)
                continue
            for owner in manifest_owners(seg):
                live.add(owner)
                try:
                    yield await chunks.load(owner)
                except Exception:  # missing or corrupt: reported, not fatal to the walk
                    unreadable.append(owner)
        # Queued for release: their references are still expected (not stale) until
        # the queue drops them; one already half released is simply skipped.
        for owner in pending - live:
            with contextlib.suppress(Exception):
                yield await chunks.load(owner)

    report = await fsck(
        chunks.store, manifests(), cpu=chunks.cpu, repair=repair, stale_ref_seconds=stale
    )
    result = FsckResult(report, len(live), unreadable, pending_release=len(pending))
    await _orphan_manifests(engine, live | pending, result, repair, stale)
    orphans, removed, _ = await orphan_stripes(engine, stripes, stale, remove=repair)
    result.orphan_stripes, result.removed_stripes = orphans, removed
    return result


async def live_stripe_prefixes(engine: ObjectEngine) -> set[str]:
    """Prefixes of every stripe segment an entry, an upload part or a queued release names."""
    live = {seg.data_prefix for seg in await engine.releases.pending() if not seg.is_chunked}
    async for _bucket, seg in live_segments(engine):
        if not seg.is_chunked:
            live.add(seg.data_prefix)
    return live


async def orphan_stripes(
    engine: ObjectEngine, live: set[str], stale: float, *, remove: bool
) -> tuple[list[str], int, int]:
    """Data-pool objects whose prefix ``live`` lacks: (their ids, how many were removed
    because older than ``stale`` seconds, the bytes removed)."""
    now = engine.clock.time()
    orphans: list[str] = []
    removed = removed_bytes = 0
    async for oid in engine.data.list_objects():
        if oid.rpartition(".")[0] in live:
            continue
        try:
            st = await engine.data.stat(oid)
        except ObjectNotFound:
            continue  # released meanwhile
        orphans.append(oid)
        if remove and now - st.mtime >= stale:
            with contextlib.suppress(ObjectNotFound):
                await engine.data.remove(oid)
                removed += 1
                removed_bytes += st.size
    return orphans, removed, removed_bytes


async def _orphan_manifests(
    engine: ObjectEngine, live: set[str], result: FsckResult, repair: bool, stale: float
) -> None:
    now = engine.clock.time()
    async for oid in engine.meta.list_objects(layout.MANIFEST_PREFIX):
        owner = oid[len(layout.MANIFEST_PREFIX) :]
        if owner in live:
            continue
        try:
            st = await engine.meta.stat(oid)
        except ObjectNotFound:
            continue
        result.orphan_manifests.append(owner)
        if repair and now - st.mtime >= stale:
            with contextlib.suppress(ObjectNotFound):
                manifest = await engine.chunks.load(owner)
                await engine.chunks.store.release(manifest)
                await engine.meta.remove(oid)
                result.removed_manifests += 1


@dataclass(slots=True)
class GcResult:
    report: GcReport
    reclaimed_bytes: int = 0


async def collect_garbage(engine: ObjectEngine, grace_seconds: float | None = None) -> GcResult:
    """Finish queued releases, then one collector pass over the chunk pool and one over
    the data pool's orphan stripes (past the stale threshold); counts the bytes removed."""
    await engine.releases.drain(adopt_after=0)
    store = engine.chunks.store
    grace = engine.chunks.config.gc_grace_seconds if grace_seconds is None else grace_seconds
    collector = ChunkCollector(store, grace_seconds=grace)
    result = GcResult(GcReport())
    # Packs mostly dead move their live chunks first: the old ones then have no
    # references and this same pass starts their grace period.
    compactor = PackCompactor(store, engine.chunks, min_live=engine.chunks.config.pack_min_live)
    compacted = await compactor.compact()
    if compacted.counts.get(COMPACTED):
        result.report.counts["packs_compacted"] = compacted.counts[COMPACTED]
    # Chunk objects from before packs go into the fingerprint index as the pass
    # meets them, so new uploads deduplicate against them too.
    indexer = ChunkObjectIndexer(store) if engine.chunks.config.pack_bytes else None
    for tier in store.tiers:
        async for fp in store.list_holders(tier):  # chunk objects and packs
            size = await _size_if_due(engine, tier, fp, grace)
            outcome = await collector.examine(tier, fp)
            result.report.add(outcome)
            if outcome == REMOVED:
                result.reclaimed_bytes += size
            elif outcome == LIVE and indexer is not None and not is_pack(fp):
                await indexer.offer(tier, fp)
    if indexer is not None:
        await indexer.flush()
        if indexer.indexed:
            result.report.counts["chunk_objects_indexed"] = indexer.indexed
    stale = engine.chunks.config.stale_ref_seconds
    for pool in list(store.tiers.values()):
        counts = result.report.counts
        try:
            if isinstance(pool, ResolvingPool):
                pool = await pool.resolved()
            if not isinstance(pool, SplitPool):
                continue
            swept = await pool.sweep(stale, now=store.clock())  # what a crash left unnamed
        except StorageError as exc:  # the rest of the pass still counts
            log.warning("split tier %s not swept: %s", pool.name, exc)
            counts["remote_sweeps_failed"] = counts.get("remote_sweeps_failed", 0) + 1
            continue
        if swept:
            counts["remote_orphans_removed"] = counts.get("remote_orphans_removed", 0) + swept
    live = await live_stripe_prefixes(engine)
    _, removed, removed_bytes = await orphan_stripes(engine, live, stale, remove=True)
    if removed:
        result.report.counts["stripes_removed"] = removed
    result.reclaimed_bytes += removed_bytes
    if result.reclaimed_bytes:
        engine.chunks.observer.reclaimed(result.reclaimed_bytes)
    return result


async def _size_if_due(engine: ObjectEngine, tier: str, fp: bytes, grace: float) -> int:
    """The chunk's size when this pass may remove it (0 otherwise: no extra read)."""
    store = engine.chunks.store
    try:
        state = await store.ref_state(tier, fp)
        mark = state.zero_mark
        if state.has_refs or mark is None or mark.waited(store.clock()) < grace:
            return 0
        return (await store.pool(tier).stat(holder_oid(fp))).size
    except ObjectNotFound:
        return 0


@dataclass(slots=True)
class SpaceStats:
    logical_bytes: int = 0  # sum of object sizes
    inline_bytes: int = 0
    stripe_bytes: int = 0
    chunked_logical_bytes: int = 0  # object bytes held as chunks
    referenced_chunk_bytes: int = 0  # stored size of the distinct chunks they use
    objects: int = 0

    @property
    def ratio(self) -> float:
        """Logical bytes of chunked data per stored byte (higher is better)."""
        return self.chunked_logical_bytes / max(self.referenced_chunk_bytes, 1)


async def bucket_stats(engine: ObjectEngine, record: BucketRecord) -> SpaceStats:
    stats = SpaceStats()
    seen: set[bytes] = set()
    async for entry in bucket_entries(engine, record):
        stats.objects += 1
        stats.logical_bytes += entry.size
        if entry.is_inline:
            stats.inline_bytes += entry.size
        for seg in entry.segments:
            if not seg.is_chunked:
                stats.stripe_bytes += seg.size
                continue
            stats.chunked_logical_bytes += seg.size
            for owner in manifest_owners(seg):
                for e in (await engine.chunks.load(owner)).entries:
                    if e.fingerprint not in seen:
                        seen.add(e.fingerprint)
                        stats.referenced_chunk_bytes += e.stored_len
    return stats


async def chunk_pool_bytes(engine: ObjectEngine) -> tuple[int, int]:
    """(chunk objects and packs, their bytes) in the chunk pool: what dedupe really stores."""
    count = total = 0
    for prefix in (CHUNK_PREFIX, PACK_PREFIX):
        async for oid in engine.chunk_pool.list_objects(prefix):
            with contextlib.suppress(ObjectNotFound):
                total += (await engine.chunk_pool.stat(oid)).size
                count += 1
    return count, total
