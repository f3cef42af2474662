"""Chunk-store upkeep over the whole deployment: live manifests, fsck, GC and space stats.

*Live manifests* are those named by an index entry of any bucket (every key,
through ``BucketIndex.list``) or by a part of a multipart upload in progress.
fsck compares them with the chunks' references (``dedupe.fsck``) and also
reports manifest objects nothing names (an upload that crashed between its
manifest and its commit); ``repair`` drops their references and removes them
once they are older than the stale threshold (younger ones may belong to an
upload still in flight).

Used by the server's background collector and by ``atonix-cli fsck|gc|stats``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dedupe import ChunkCollector, FsckReport, GcReport, Manifest, fsck
from dedupe.gc import REMOVED
from dedupe.store import CHUNK_PREFIX, chunk_oid
from engine import layout
from engine.assembly import ObjectEngine
from engine.records import BucketRecord, ObjectEntry, Segment
from storage import ObjectNotFound

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


async def live_segments(engine: ObjectEngine) -> AsyncIterator[tuple[str, Segment]]:
    """(bucket name, chunked segment) of every index entry and in-progress upload part."""
    for record in await engine.buckets.list():
        async for entry in bucket_entries(engine, record):
            for seg in entry.segments:
                if seg.is_chunked:
                    yield record.name, seg
        for _key, upload_id in await engine.uploads.registry.all(record.bucket_id):
            for part in await engine.uploads.store.all_parts(record.bucket_id, upload_id):
                if part.segment.is_chunked:
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
    pending = {
        owner for seg in await engine.releases.pending() if seg.is_chunked
        for owner in manifest_owners(seg)
    }
    live: set[str] = set()
    unreadable: list[str] = []

    async def manifests() -> AsyncIterator[Manifest]:
        async for _bucket, seg in live_segments(engine):
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
    return result


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
    """Finish queued releases, then one collector pass over the chunk pool; counts the
    bytes it removed."""
    await engine.releases.drain(adopt_after=0)
    store = engine.chunks.store
    grace = engine.chunks.config.gc_grace_seconds if grace_seconds is None else grace_seconds
    collector = ChunkCollector(store, grace_seconds=grace)
    result = GcResult(GcReport())
    for tier in store.tiers:
        async for fp in store.list_chunks(tier):
            size = await _size_if_due(engine, tier, fp, grace)
            outcome = await collector.examine(tier, fp)
            result.report.add(outcome)
            if outcome == REMOVED:
                result.reclaimed_bytes += size
    if result.reclaimed_bytes:
        engine.chunks.observer.reclaimed(result.reclaimed_bytes)
    return result


async def _size_if_due(engine: ObjectEngine, tier: str, fp: bytes, grace: float) -> int:
    """The chunk's size when this pass may remove it (0 otherwise: no extra read)."""
    store = engine.chunks.store
    try:
        state = await store.ref_state(tier, fp)
        mark = state.zero_mark
        if state.has_refs or mark is None or store.clock() - mark.since < grace:
            return 0
        return (await store.pool(tier).stat(chunk_oid(fp))).size
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
    """(chunk objects, their bytes) in the chunk pool: what dedupe really stores."""
    count = total = 0
    async for oid in engine.chunk_pool.list_objects(CHUNK_PREFIX):
        with contextlib.suppress(ObjectNotFound):
            total += (await engine.chunk_pool.stat(oid)).size
            count += 1
    return count, total
