"""Moving one object version's data to another tier (the tiering mover's one step).

The bytes are read from where they are and written again through the dedupe
writer of the target tier (its pool, its zstd level; chunks the target tier
already holds are referenced, not stored twice) under a *new* data prefix,
so the new manifests have new owner ids and no cache can serve a stale one.
The copy is then read back from the target tier and compared, digest for
digest, with what was read from the source. Only then is the entry switched,
with a guarded write that holds only if the entry still names the payload
that was copied; the old payload is released after the switch.

Crash safety is that of a put: data, then manifests, then the entry, then
the release. A crash before the switch leaves a payload nothing names (its
references and manifests are dropped by the collector once stale, as after a
crashed upload); after it, the old payload is garbage that the release queue
or the collector reclaims. Either way the object reads whole at every step.

Inline objects (their bytes in the entry) and payloads of buckets that opted
out of dedupe (raw stripes in the data pool) keep their bytes where they are;
only their recorded tier and storage class change.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import xxhash

from dedupe import failpoints
from dedupe.errors import FailpointHit
from engine import layout
from engine.buckets import BucketRef, bucket_name
from engine.errors import (
    ConcurrentUpdate,
    DeleteMarkerVersion,
    InvalidObjectState,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    TransitionFailed,
)
from engine.objects import ObjectService
from engine.records import ObjectEntry, Segment
from engine.service_records import ServiceRecords
from engine.tiers import (
    RESTORE_HEADER,
    RestoreRecord,
    TierMap,
    TierSettings,
    placed_headers,
    restore_expiry,
    restored_headers,
    restored_until,
    storage_class_of,
)
from engine.versions import NULL

# What the switch raises before it writes anything (and a failpoint standing for a crash
# right before it): the copy is then certainly unnamed.
_REFUSED = (ConcurrentUpdate, NoSuchKey, NoSuchVersion, DeleteMarkerVersion, FailpointHit)


@dataclass(frozen=True, slots=True)
class TransitionResult:
    entry: ObjectEntry  # as it is after the move
    source: str  # the tier it was on
    moved_bytes: int  # bytes rewritten into the target tier (0: nothing to move)
    stayed: bool = False  # not moved: the bucket stores without dedupe now


class TierMover:
    def __init__(self, objects: ObjectService, tiers: TierMap, restores: ServiceRecords) -> None:
        self.objects = objects
        self.tiers = tiers
        self.payloads = objects.payloads
        self.restores = restores  # RestoreRecord documents, one per restored version

    async def move(
        self, bucket: BucketRef, bucket_id: str, key: str, tier_name: str, version_id: str | None,
        judged: ObjectEntry | None = None,
    ) -> TransitionResult:
        """Move the version to ``tier_name``; ``judged``: the entry a policy decided on
        (the move is refused with ConcurrentUpdate if the version is another by now)."""
        tier = self.tiers.tier(tier_name)
        entry = await self.objects.head(bucket, key, version_id)
        if judged is not None and (entry.etag, entry.mtime) != (judged.etag, judged.mtime):
            raise ConcurrentUpdate("The object changed after the policy judged it", Key=key)
        source = self.tiers.placed(entry.headers).name
        if source == tier.name:
            return TransitionResult(entry, source, 0)
        segments, moved = await self._copy(bucket, bucket_id, entry, tier)
        replaced = [s for s in entry.segments if s not in segments]
        if any(s.is_chunked for s in segments if s in entry.segments):
            # A chunked payload the bucket can no longer rewrite (dedupe switched off):
            # its chunks stay, and so does its recorded tier.
            await self.payloads.remove([s for s in segments if s not in entry.segments])
            return TransitionResult(entry, source, 0, stayed=True)

        dropped: list[Segment] = []  # a restored copy the move makes moot

        def change(current: ObjectEntry) -> ObjectEntry:
            if not _same_payload(current, entry):
                raise ConcurrentUpdate("The object changed while it was being moved", Key=key)
            headers = restored_headers(placed_headers(current.headers, self.tiers, tier, None),
                                       None)
            dropped[:] = current.restored
            return dataclasses.replace(current, segments=segments, headers=headers, restored=[])

        copies = [s for s in segments if s not in entry.segments]
        try:
            await failpoints.hit("transition.before_switch")
            if version_id is None:
                done = await self.objects.update(bucket, key, change)
            else:  # current or not, even under a delete marker ("null" included)
                done = await self.objects.update_version(bucket, key, version_id, change)
        except _REFUSED:
            await self.payloads.remove(copies)  # refused before any write: the copy is ours
            raise
        # Any other failure (a timeout, a cancel) may come after the write landed: both
        # payloads stay, and whichever the entry does not name is reclaimed as a crashed
        # upload's would be (fsck --repair, the collector).
        await failpoints.hit("transition.after_switch")
        await self.payloads.release(replaced + dropped)
        return TransitionResult(done, source, moved)

    async def restore(
        self, bucket: BucketRef, bucket_id: str, key: str, version_id: str | None, days: int
    ) -> tuple[ObjectEntry, bool]:
        """Make an archived version readable for ``days`` (RestoreObject): a copy of its
        payload in the hot tier, or a longer life for the copy it has. The entry, and
        True unless it was restored already (S3 answers 202 then, else 200)."""
        entry = await self.objects.head(bucket, key, version_id)
        if not self.tiers.placed(entry.headers).archive:
            raise InvalidObjectState(
                "Restore is not allowed for the object's current storage class",
                StorageClass=storage_class_of(entry.headers),
            )
        now = self.objects.clock.time()
        fresh = restored_until(entry) <= now
        copies: list[Segment] = []
        if not entry.restored and entry.segments:
            copies, _ = await self._copy(bucket, bucket_id, entry, self.tiers.hot)
            if any(s in entry.segments for s in copies):  # not rewritable (no dedupe)
                await self.payloads.remove([s for s in copies if s not in entry.segments])
                raise TransitionFailed("the bucket stores without dedupe: nothing to restore")
        until = max(restore_expiry(now, days), restored_until(entry))
        # Registered before the switch: a crash after it never leaves a copy unlisted.
        record = RestoreRecord(bucket_name(bucket), key, entry.version_id or NULL, until)
        await self.restores.put(record.name, record.encode())

        def change(current: ObjectEntry) -> ObjectEntry:
            if not _same_payload(current, entry) or current.restored != entry.restored:
                raise ConcurrentUpdate("The object changed while it was restored", Key=key)
            restored = copies or current.restored
            headers = restored_headers(current.headers, until)
            return dataclasses.replace(current, headers=headers, restored=restored)

        return await self._switch(bucket, key, version_id, change, copies), fresh

    async def end_restore(
        self, bucket: BucketRef, key: str, version_id: str | None
    ) -> bool:
        """Drop the restored copy of a version whose restore has expired; True if dropped."""
        entry = await self.objects.head(bucket, key, version_id)
        now = self.objects.clock.time()
        if RESTORE_HEADER not in entry.headers or restored_until(entry) > now:
            return False

        def change(current: ObjectEntry) -> ObjectEntry:
            if current.restored != entry.restored or restored_until(current) > now:
                raise ConcurrentUpdate("The object changed while its restore ended", Key=key)
            return dataclasses.replace(
                current, headers=restored_headers(current.headers, None), restored=[]
            )

        await self._switch(bucket, key, version_id, change, [])
        await self.payloads.release(entry.restored)
        return True

    async def end_due_restores(self, now: float, buckets: list[str] | None = None) -> int:
        """End every restore whose expiry has passed (of ``buckets``, or all), from the
        restore records: no bucket is walked. How many copies were dropped."""
        ended = 0
        for name, raw in await self.restores.list():
            record = RestoreRecord.decode(raw)
            if record.until > now or (buckets is not None and record.bucket not in buckets):
                continue
            try:
                ended += await self.end_restore(record.bucket, record.key, record.version_id)
            except (NoSuchBucket, NoSuchKey, NoSuchVersion, DeleteMarkerVersion):
                pass  # the version is gone, and its copy with it
            except ConcurrentUpdate:
                continue  # restored again meanwhile: the next pass looks again
            if await self.restores.get(name) == raw:  # not extended since it was listed
                await self.restores.delete(name)
        return ended

    async def _switch(
        self, bucket: BucketRef, key: str, version_id: str | None,
        change: Callable[[ObjectEntry], ObjectEntry], copies: list[Segment],
    ) -> ObjectEntry:
        try:
            if version_id is None:
                return await self.objects.update(bucket, key, change)
            return await self.objects.update_version(bucket, key, version_id, change)
        except _REFUSED:
            await self.payloads.remove(copies)  # refused before any write: the copy is ours
            raise

    async def _copy(
        self, bucket: BucketRef, bucket_id: str, entry: ObjectEntry, tier: TierSettings
    ) -> tuple[list[Segment], int]:
        """The entry's segments with every chunked one rewritten into ``tier``."""
        out: list[Segment] = []
        moved = 0
        # Its own manifests' references do not keep a hotter tier's chunks there.
        moving = frozenset(
            layout.stripe_oid(s.data_prefix, n)
            for s in entry.stored_segments if s.is_chunked for n in range(s.stripes)
        )
        try:
            for seg in entry.segments:
                copy = None
                if seg.is_chunked:
                    copy = await self._copy_segment(bucket, bucket_id, seg, tier, moving)
                out.append(copy or seg)
                moved += seg.size if copy is not None else 0
        except BaseException:
            await self.payloads.remove([s for s in out if s not in entry.segments])
            raise
        return out, moved

    async def _copy_segment(
        self, bucket: BucketRef, bucket_id: str, seg: Segment, tier: TierSettings,
        moving: frozenset[str],
    ) -> Segment | None:
        prefix = f"{bucket_id}.{uuid.uuid4().hex}"
        factory = self.objects.chunked_factory(bucket, prefix, tier, moving)
        writer = await factory() if factory is not None else None
        if writer is None:  # the bucket stores without dedupe now: leave it be
            return None
        source = xxhash.xxh3_128()
        try:
            async for piece in self.payloads.read([seg], 0, seg.size):
                source.update(piece)
                await writer.write(piece)
            copy = await writer.finish()
        except BaseException:
            await writer.discard()
            raise
        try:
            await failpoints.hit("transition.after_copy")
            target = xxhash.xxh3_128()
            async for piece in self.payloads.read([copy], 0, copy.size):
                target.update(piece)
            if target.digest() != source.digest() or copy.size != seg.size:
                raise TransitionFailed("the copy in the target tier reads back different")
        except BaseException:
            await self.payloads.remove([copy])
            raise
        return copy


    async def where(self, entry: ObjectEntry) -> dict[str, int]:
        """Bytes of the entry's data per place, read from its manifests: tier names,
        ``inline`` (in the index entry) and ``stripes`` (the data pool, no dedupe)."""
        out: dict[str, int] = {}
        if entry.is_inline:
            out["inline"] = entry.size
        chunked = self.payloads.chunked
        for seg in entry.segments:
            if not seg.is_chunked or chunked is None:
                out["stripes"] = out.get("stripes", 0) + seg.size
                continue
            for n in range(seg.stripes):
                manifest = await chunked.load(layout.stripe_oid(seg.data_prefix, n))
                for e in manifest.entries:
                    name = self.tiers.name_of(e.tier)
                    out[name] = out.get(name, 0) + e.length
        return out


def _same_payload(a: ObjectEntry, b: ObjectEntry) -> bool:
    return a.etag == b.etag and a.mtime == b.mtime and a.segments == b.segments
