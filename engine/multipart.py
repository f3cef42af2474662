"""Multipart uploads: create, upload parts, complete, abort, list; any gateway serves any step.

Write order (crash safety), per operation:

- Create: the upload object (exclusive create), then its registry entry in
  the bucket's index shard (guarded on the bucket being active).
- UploadPart: the part's stripes under a fresh data prefix, then the part
  record (the commit, guarded on the upload being open and on the record it
  replaces), then the replaced part's stripes are removed.
- Complete: the upload is frozen (open -> completing, with the manifest of
  chosen parts, guarded on the part generation so no part changed since they
  were read); the index entry is written (the commit point: one segment per
  part, no bytes copied); the state becomes committed; then the registry
  entry, the parts that were left out, the replaced object's payload and the
  upload object are removed. A retried Complete with the same part list
  resumes wherever the last attempt stopped.
- Abort: the upload is frozen (open -> aborting), then the registry entry,
  every part's stripes and the upload object are removed.

A crash at any point leaves at worst unreferenced stripes, never an entry
that points at removed ones.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from dedupe import failpoints
from engine.buckets import BucketRef, BucketService, bucket_name
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import (
    EntityTooLarge,
    InvalidPartNumber,
    NoSuchBucket,
    NoSuchUpload,
)
from engine.index import BucketIndex, StaleBucket
from engine.names import validate_key
from engine.object_io import ObjectReader
from engine.objects import ObjectService
from engine.payload import PayloadWriter
from engine.records import BucketRecord, ObjectEntry, Segment
from engine.tiers import placed_headers
from engine.upload_records import (
    MAX_PART_SIZE,
    Manifest,
    PartRecord,
    UploadInfo,
    UploadMeta,
    UploadState,
    completed_entry,
    entry_identity,
    new_upload_id,
    normalize_etag,
    part_data_prefix,
    select_parts,
)
from engine.upload_store import UploadSnapshot, UploadStore
from engine.uploads_registry import UploadRegistry, UploadsPage, UploadsQuery
from engine.versioning import Commit
from storage import GuardFailed, ObjectNotFound, Pool

_UPLOAD_ID = re.compile(r"^[0-9a-f]{16,64}$")
_RETRIES = 64  # optimistic-concurrency retries; each conflict means another writer won


@dataclass(slots=True)
class NewUpload:
    """What CreateMultipartUpload fixes for the object to be."""

    owner: str
    content_type: str | None = None
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksum_algorithm: str = ""
    checksum_type: str = ""


@dataclass(slots=True)
class PartBody:
    body: AsyncIterator[bytes]
    size: int | None  # announced length, when known
    content_md5: bytes | None = None
    # Called once the body is consumed: checksums computed over it ({"CRC32": base64}).
    checksums: Callable[[], dict[str, str]] | None = None


# The front end opens a part's body knowing the upload (e.g. its checksum algorithm).
PartOpener = Callable[[UploadInfo], PartBody]
# The completed object's checksums from the upload and its chosen parts (may refuse).
ObjectChecksums = Callable[[UploadMeta, list[PartRecord]], dict[str, str]]


@dataclass(slots=True)
class PartsPage:
    upload: UploadSnapshot
    parts: list[PartRecord]
    is_truncated: bool


class _AlreadyCommitted(Exception):
    """The index already holds this completion's entry (a resumed Complete)."""


class _Superseded(Exception):
    """The key was written after the upload froze: the completion must not commit."""


# _commit_entry's answer when a later write won: every part is then garbage (if the
# entry was committed before, that write released its payload already; again is harmless).
SUPERSEDED = ObjectEntry(0, '""', 0.0)


class UploadService:
    def __init__(
        self,
        buckets: BucketService,
        index: BucketIndex,
        objects: ObjectService,
        meta: Pool,
        data: Pool,
        *,
        stripe_size: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.buckets = buckets
        self.index = index
        self.objects = objects
        self.data = data
        self.payloads = objects.payloads
        self.stripe_size = stripe_size
        self.store = UploadStore(meta)
        self.registry = UploadRegistry(meta)

    # -- create -----------------------------------------------------------------

    async def create(self, bucket: BucketRef, key: str, new: NewUpload) -> UploadInfo:
        validate_key(key)
        tier = self.objects.tiers.for_class(new.storage_class)
        headers = placed_headers(new.headers, self.objects.tiers, tier, new.storage_class)
        record = await self.buckets.get(bucket)
        for attempt in range(2):
            if attempt:
                record = await self.buckets.refresh(bucket, record)
            info = UploadInfo(
                key, new_upload_id(self.clock.time()), self.clock.time(), new.owner,
                new.storage_class,
                new.checksum_algorithm, new.checksum_type,
            )
            meta = UploadMeta(
                info,
                new.content_type or "binary/octet-stream",
                dict(new.user_meta),
                headers,
                dict(new.tags),
            )
            await self.store.create(record.bucket_id, meta)
            try:
                await self.registry.add(record.bucket_id, info)
                return info
            except StaleBucket:
                await self.store.remove(record.bucket_id, info.upload_id)
        self.buckets.forget(bucket_name(bucket))
        raise NoSuchBucket(BucketName=bucket_name(bucket))

    # -- parts ------------------------------------------------------------------

    async def upload_part(
        self, bucket: BucketRef, key: str, upload_id: str, number: int, open_body: PartOpener
    ) -> PartRecord:
        """Store one part; a part uploaded again under the same number replaces the earlier.

        ``open_body`` is called once the upload is known to exist and be open.
        """
        _, snap = await self._find(bucket, key, upload_id, part=number)
        if snap.state is not UploadState.OPEN:
            raise NoSuchUpload(UploadId=upload_id)
        part = open_body(snap.meta.info)
        prefix = part_data_prefix(snap.bucket_id, upload_id, number)
        tier = self.objects.tiers.placed(snap.meta.headers)
        writer = PayloadWriter(
            self.data,
            prefix,
            inline_limit=0,
            stripe_size=self.stripe_size,
            chunked=self.objects.chunked_factory(bucket, prefix, tier),
        )
        await writer.consume(_at_most(part.body, MAX_PART_SIZE), part.size, part.content_md5)
        record = PartRecord(
            number,
            writer.size,
            writer.etag,
            self.clock.time(),
            writer.segment or Segment(prefix, 0, self.stripe_size, 0),
            part.checksums() if part.checksums is not None else {},
        )
        try:
            replaced = await self._commit_part(snap, record)
        except BaseException:
            await writer.discard()
            raise
        if replaced is not None:
            await self.payloads.release([replaced.segment])
        return record

    async def _commit_part(self, snap: UploadSnapshot, part: PartRecord) -> PartRecord | None:
        replaced_raw = snap.part_raw
        for _ in range(_RETRIES):
            try:
                await self.store.commit_part(snap.bucket_id, snap.upload_id, part, replaced_raw)
            except (GuardFailed, ObjectNotFound):
                fresh = await self.store.load(snap.bucket_id, snap.upload_id, part.number)
                if fresh is None or fresh.state is not UploadState.OPEN:
                    raise NoSuchUpload(UploadId=snap.upload_id) from None
                replaced_raw = fresh.part_raw  # a concurrent upload of this part won; replace it
                continue
            return PartRecord.decode(replaced_raw) if replaced_raw is not None else None
        raise RuntimeError(f"part {part.number} of upload {snap.upload_id}: too many conflicts")

    async def list_parts(
        self, bucket: BucketRef, key: str, upload_id: str, after: int, limit: int
    ) -> PartsPage:
        _, snap = await self._find(bucket, key, upload_id)
        if snap.state is not UploadState.OPEN:
            raise NoSuchUpload(UploadId=upload_id)
        parts = await self.store.list_parts(snap.bucket_id, upload_id, after, limit + 1)
        return PartsPage(snap, parts[:limit], len(parts) > limit)

    # -- complete ---------------------------------------------------------------

    async def complete(
        self,
        bucket: BucketRef,
        key: str,
        upload_id: str,
        requested: list[tuple[int, str]],
        object_checksums: ObjectChecksums | None = None,
    ) -> ObjectEntry:
        """Make the object from the named parts; the parts' stripes become its payload."""
        wanted = [(n, normalize_etag(tag)) for n, tag in requested]
        try:
            record, snap = await self._find(bucket, key, upload_id)
        except NoSuchUpload:
            made = await self._made_by(bucket, key, upload_id)
            if made is None:
                raise
            return made  # completed before: a repeated Complete answers the same object
        for _ in range(_RETRIES):
            if snap.state is UploadState.OPEN:
                parts = await self.store.all_parts(snap.bucket_id, upload_id)
                chosen = select_parts(wanted, {p.number: p for p in parts})
                entry = completed_entry(snap.meta, chosen)
                if object_checksums is not None:
                    entry.checksums = object_checksums(snap.meta, chosen)
                try:
                    current = await self.index.get(snap.bucket_id, key)
                except StaleBucket:
                    raise NoSuchBucket(BucketName=bucket_name(bucket)) from None
                manifest = Manifest(wanted, entry, entry_identity(current))
                if await self.store.freeze(snap, UploadState.COMPLETING, manifest):
                    await failpoints.hit("multipart.frozen")
                    return await self._finish(record, snap, manifest, committed=False)
            elif snap.manifest is not None and snap.manifest.requested == wanted:
                # A retry of a completion that stopped part way: resume it.
                committed = snap.state is UploadState.COMMITTED
                return await self._finish(record, snap, snap.manifest, committed)
            else:
                raise NoSuchUpload(UploadId=upload_id)
            fresh = await self.store.load(snap.bucket_id, upload_id)
            if fresh is None:
                raise NoSuchUpload(UploadId=upload_id)
            snap = fresh
        raise RuntimeError(f"upload {upload_id}: too many conflicts while completing")

    async def _finish(
        self, record: BucketRecord, snap: UploadSnapshot, manifest: Manifest, committed: bool
    ) -> ObjectEntry:
        entry = manifest.entry
        garbage: list[Segment] = []
        superseded = False
        if not committed:
            done = await self._commit_entry(record, snap.key, entry, manifest.replaces)
            superseded = done is SUPERSEDED
            await failpoints.hit("multipart.committed")
            await self.store.set_state(snap.bucket_id, snap.upload_id, UploadState.COMMITTED)
            if isinstance(done, Commit):
                garbage += done.garbage
                entry = done.entry or entry  # as stored: with its version id, if versioned
            elif isinstance(done, ObjectEntry) and done is not SUPERSEDED:
                entry = done  # committed before a crash: the entry the index holds
        await self.registry.remove(snap.bucket_id, snap.key, snap.upload_id)
        used = set() if superseded else {seg.data_prefix for seg in entry.segments}
        parts = await self.store.all_parts(snap.bucket_id, snap.upload_id)
        garbage += [p.segment for p in parts if p.segment.data_prefix not in used]
        await self.payloads.release(garbage)
        await self.store.remove(snap.bucket_id, snap.upload_id)
        return entry

    async def _commit_entry(
        self, record: BucketRecord, key: str, entry: ObjectEntry, replaces: str | None
    ) -> Commit | ObjectEntry:
        """Write the completed entry (the commit point); what the commit did, the entry a
        resumed completion finds already committed, or SUPERSEDED.

        Only over the entry the key held when the upload froze: anything else means
        a later write won (perhaps over this very entry, committed before a crash,
        whose payload that write then released), so the completion must not undo it.
        """
        found: list[ObjectEntry] = []

        def check(current: ObjectEntry | None) -> None:
            if current is not None and _same_payload(current, entry):
                found[:] = [current]
                raise _AlreadyCommitted
            if replaces is not None and entry_identity(current) != replaces:
                raise _Superseded

        for _ in range(3):
            try:
                return await self.objects.commit_entry(record, key, entry, check)
            except _AlreadyCommitted:
                return found[0]
            except _Superseded:
                return SUPERSEDED
            except StaleBucket:
                fresh = await self.buckets.get(record.name, use_cache=False)
                if fresh.bucket_id != record.bucket_id:
                    break  # deleted and re-created: this upload belonged to the old one
        raise NoSuchBucket(BucketName=record.name)

    # -- abort ------------------------------------------------------------------

    async def abort(self, bucket: BucketRef, key: str, upload_id: str) -> None:
        """Discard the upload and reclaim the data of every part uploaded to it."""
        _, snap = await self._find(bucket, key, upload_id)
        for _ in range(_RETRIES):
            if snap.state is UploadState.ABORTING:
                break
            if snap.state is not UploadState.OPEN:
                raise NoSuchUpload(UploadId=upload_id)  # completed (or completing)
            if await self.store.freeze(snap, UploadState.ABORTING):
                break
            fresh = await self.store.load(snap.bucket_id, upload_id)
            if fresh is None:
                raise NoSuchUpload(UploadId=upload_id)
            snap = fresh
        else:
            raise RuntimeError(f"upload {upload_id}: too many conflicts while aborting")
        await self._reclaim(snap.bucket_id, key, upload_id)

    async def purge_bucket(self, bucket_id: str) -> None:
        """Reclaim every upload of a bucket being deleted (as AWS, DeleteBucket discards them).

        Runs after the bucket's shard was switched to ``deleting``: no upload
        can be registered and no completion can commit any more.
        """
        for key, upload_id in await self.registry.all(bucket_id):
            await self.store.set_state(bucket_id, upload_id, UploadState.ABORTING)
            await self._reclaim(bucket_id, key, upload_id)

    async def _reclaim(self, bucket_id: str, key: str, upload_id: str) -> None:
        await self.registry.remove(bucket_id, key, upload_id)
        parts = await self.store.all_parts(bucket_id, upload_id)
        await self.payloads.release([p.segment for p in parts])
        await self.store.remove(bucket_id, upload_id)

    # -- listing and reading ------------------------------------------------------

    async def list_uploads(self, bucket: BucketRef, query: UploadsQuery) -> UploadsPage:
        record = await self.buckets.get(bucket)
        for attempt in range(2):
            if attempt:
                record = await self.buckets.refresh(bucket, record)
            try:
                return await self.registry.page(record.bucket_id, query)
            except StaleBucket:
                pass
        self.buckets.forget(bucket_name(bucket))
        raise NoSuchBucket(BucketName=bucket_name(bucket))

    async def open_part(
        self, bucket: BucketRef, key: str, number: int, version_id: str | None = None
    ) -> ObjectReader:
        """A reader for part ``number`` of an object (a simple object has one part)."""
        entry = await self.objects.head(bucket, key, version_id)
        sizes = [seg.size for seg in entry.segments] if entry.parts else [entry.size]
        if number > len(sizes):
            raise InvalidPartNumber(
                PartNumberRequested=str(number), ActualPartCount=str(len(sizes))
            )
        start = sum(sizes[: number - 1])
        return self.objects.reader(entry, start, start + sizes[number - 1])

    async def _made_by(self, bucket: BucketRef, key: str, upload_id: str) -> ObjectEntry | None:
        """The object ``key`` holds if that upload made it (its parts' data prefixes say so)."""
        if not _UPLOAD_ID.match(upload_id):
            return None
        record = await self.buckets.get(bucket)
        entry = await self.index.get(record.bucket_id, key)
        marker = f"{record.bucket_id}.{upload_id}."
        if entry is None or not entry.parts or not entry.segments:
            return None
        if all(seg.data_prefix.startswith(marker) for seg in entry.segments):
            return entry
        return None

    async def _find(
        self, bucket: BucketRef, key: str, upload_id: str, part: int | None = None
    ) -> tuple[BucketRecord, UploadSnapshot]:
        """The bucket and the upload of ``key`` with that id; NoSuchUpload otherwise."""
        if _UPLOAD_ID.match(upload_id):
            for use_cache in (True, False):
                record = await self.buckets.get(bucket, use_cache=use_cache)
                snap = await self.store.load(record.bucket_id, upload_id, part)
                if snap is not None:
                    if snap.key != key:
                        break
                    return record, snap
        else:
            await self.buckets.get(bucket)  # NoSuchBucket takes precedence
        raise NoSuchUpload(UploadId=upload_id)


def _same_payload(a: ObjectEntry, b: ObjectEntry) -> bool:
    return bool(a.segments) and [s.data_prefix for s in a.segments] == [
        s.data_prefix for s in b.segments
    ]


async def _at_most(body: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for piece in body:
        seen += len(piece)
        if seen > limit:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
        yield piece
