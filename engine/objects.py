"""Objects: streaming put, ranged get, head and delete over the bucket index and payload stripes.

Write order (crash safety): payload stripes first, then the index entry that
points at them (one atomic, guarded omap write: the commit point), then the
removal of the payload the entry replaced. The commit is guarded on the
entry it replaces (``BucketIndex.put_if``), so of two racing overwrites each
releases exactly the payload it replaced and none is left unreferenced. A
crash before the commit leaves only unreferenced stripes (the collector
removes them once stale); after it, the new object is complete. Each upload
writes under a fresh data prefix, so a PUT never modifies bytes that a
committed entry points at.

Conditional writes (``WriteCondition``) and read-modify-writes of an entry
(``update``, used for tags) go through ``BucketIndex.put_if``: the check of
the current entry and the write are one guarded operation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from engine.buckets import BucketRef, BucketService, bucket_name
from engine.change_log import metadata_change
from engine.chunked import ChunkedWriter
from engine.clock import SYSTEM_CLOCK, Clock
from engine.conditions import DeleteCondition, EntryChanged, SameEntry, WriteCondition
from engine.errors import ConcurrentUpdate, NoSuchBucket
from engine.index import BucketIndex, ListPage, StaleBucket
from engine.names import validate_key
from engine.object_io import ObjectReader, PutRequest, resolve_range
from engine.object_lock import apply_lock
from engine.payload import ChunkedFactory, PayloadStore, PayloadWriter
from engine.records import BucketDedupe, BucketRecord, ObjectEntry
from engine.replica_commit import put_replica, replica_entry
from engine.tiers import (
    COLD_PACK_BYTES,
    DEFAULT_TIERS,
    STANDARD,
    TierMap,
    TierSettings,
    placed_headers,
    readable_segments,
)
from engine.version_listing import VersionsPage
from engine.versioning import Commit, Versioning, is_version, visible

T = TypeVar("T")

UPDATE_RETRIES = 8
# Unconditional overwrites retry while other writers of the key's slot win: with N
# racing writers of one key each round has a winner, so N rounds always suffice.
OVERWRITE_RETRIES = 256
DELETE_CONCURRENCY = 16


class ObjectService:
    def __init__(
        self,
        buckets: BucketService,
        index: BucketIndex,
        payloads: PayloadStore,
        *,
        inline_limit: int,
        stripe_size: int,
        dedupe: bool = True,
        bucket_defaults: dict[str, BucketDedupe] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        tiers: TierMap | None = None,
    ) -> None:
        self.clock = clock
        self.tiers = tiers or TierMap(DEFAULT_TIERS, "atonix")
        self.versioning = Versioning(buckets, index, clock)
        self.buckets = buckets
        self.index = index
        self.payloads = payloads
        self.data = payloads.data
        self.dedupe = dedupe
        # Per-bucket policies from the config file; a stored cfg.dedupe wins.
        self.bucket_defaults = bucket_defaults or {}
        self.inline_limit = inline_limit
        self.stripe_size = stripe_size

    async def _with_bucket(self, ref: BucketRef, fn: Callable[[BucketRecord], Awaitable[T]]) -> T:
        """Run fn with the bucket record, retrying once if the cached record was stale
        (never into a re-created bucket of another owner, nor into any re-created
        bucket when ``ref`` is pinned: see ``BucketService.refresh``)."""
        record = await self.buckets.get(ref)
        try:
            return await fn(record)
        except StaleBucket:
            record = await self.buckets.refresh(ref, record)
        try:
            return await fn(record)
        except StaleBucket:
            self.buckets.forget(bucket_name(ref))
        raise NoSuchBucket(BucketName=bucket_name(ref))

    async def put(self, bucket: BucketRef, key: str, req: PutRequest) -> ObjectEntry:
        validate_key(key)
        tier = self.tiers.for_class(req.storage_class)
        record = await self.buckets.get(bucket)
        if req.condition is not None:
            # Fail fast, before reading the body; the commit checks again, atomically.
            req.condition.check(visible_or_none(await self._current(bucket, key)), key)
        prefix = f"{record.bucket_id}.{uuid.uuid4().hex}"
        writer = PayloadWriter(
            self.data,
            prefix,
            inline_limit=self.inline_limit,
            stripe_size=self.stripe_size,
            chunked=self.chunked_factory(bucket, prefix, tier),
        )
        await writer.consume(req.body, req.size, req.content_md5)
        entry = ObjectEntry(
            size=writer.size,
            etag=writer.etag,
            mtime=self.clock.time(),
            content_type=req.content_type or "binary/octet-stream",
            user_meta=req.user_meta or {},
            headers=placed_headers(
                req.headers or {}, self.tiers, tier, req.storage_class or STANDARD
            ),
            segments=[writer.segment] if writer.segment is not None else [],
            checksums=req.checksums() if req.checksums is not None else {},
            tags=dict(req.tags or {}),
            inline=writer.inline or b"",
        )
        condition = req.condition

        def check(current: ObjectEntry | None) -> None:
            if condition is not None:
                condition.check(visible_or_none(current), key)

        if req.replica is not None:
            entry = replica_entry(entry, req.replica)

        async def commit(rec: BucketRecord) -> Commit:
            if req.replica is not None:
                return await put_replica(self.versioning, rec, key, entry)
            return await self.commit_entry(rec, key, entry, check)

        try:
            done = await self._with_bucket(bucket, commit)
        except BaseException:
            await writer.discard()
            raise
        if req.replica is not None and done.entry is not entry:
            await writer.discard()  # the same version, locked, was there already
        await self.payloads.release(done.garbage)
        assert done.entry is not None
        return done.entry

    async def commit_entry(
        self,
        record: BucketRecord,
        key: str,
        entry: ObjectEntry,
        check: Callable[[ObjectEntry | None], None] = lambda current: None,
    ) -> Commit:
        """Make ``entry`` the current version of ``key`` (the commit point of every write).

        ``check`` sees the current entry (a delete marker included) and may refuse.
        Unversioned, the replaced entry's payload is garbage; versioned, the replaced
        version stays (engine.versioning).
        """
        state = await self.versioning.state(record)
        lock = await self.versioning.lock_config(record) if state is not None else None
        entry = apply_lock(entry, lock, self.clock.time())
        if state is not None:
            return await self.versioning.put(record, key, entry, state, check)
        old = await self.index.put_if(
            record.bucket_id, key, entry, check, retries=OVERWRITE_RETRIES
        )
        return Commit(entry, old, list(old.stored_segments) if old is not None else [])

    def chunked_factory(
        self, bucket: BucketRef, data_prefix: str, tier: TierSettings | None = None,
        moving: frozenset[str] = frozenset(),
    ) -> ChunkedFactory | None:
        """How a body past the inline limit gets a dedupe writer (None: stripes),
        writing its chunks to ``tier`` (default: the hot tier); a chunk a hotter tier
        holds for an object other than ``moving``'s manifests is referenced there.

        The bucket's policy (``cfg.dedupe``) is read only then, so inline PUTs
        pay nothing for it.
        """
        chunked = self.payloads.chunked
        if not self.dedupe or chunked is None:
            return None

        async def make() -> ChunkedWriter | None:
            default = self.bucket_defaults.get(bucket_name(bucket))
            policy = await self.buckets.dedupe_policy(bucket, default)
            if not policy.enabled:
                return None
            config = chunked.config_for(policy)
            if tier is not None and tier.name != self.tiers.hot.name:
                # The bucket's own compression setting wins over the tier's level.
                level = tier.zstd_level if policy.compression_level is None else config.zstd_level
                store_name = await self.tiers.ready(tier)
                config = dataclasses.replace(
                    config, tier=store_name, zstd_level=level,
                    hotter_tiers=self.tiers.hotter_than(tier), moving_owners=moving,
                )
                if tier.write_once:
                    # Whole packs only: a delta is an object of its own, and every
                    # remote object costs a request.
                    packs = tier.pack_bytes or (
                        COLD_PACK_BYTES if tier.remote is not None else config.pack_bytes)
                    config = dataclasses.replace(config, delta_chunks=False, pack_bytes=packs)
            return ChunkedWriter(chunked, data_prefix, config)

        return make

    async def head(
        self, bucket: BucketRef, key: str, version_id: str | None = None
    ) -> ObjectEntry:
        """The current entry of ``key`` (a delete marker is NoSuchKey), or one version."""
        validate_key(key)
        if version_id is not None:
            return await self._with_bucket(
                bucket, lambda rec: self.versioning.get(rec, key, version_id)
            )
        return visible(await self._current(bucket, key), key)

    async def _current(self, bucket: BucketRef, key: str) -> ObjectEntry | None:
        async def lookup(rec: BucketRecord) -> ObjectEntry | None:
            return await self.index.get(rec.bucket_id, key)

        return await self._with_bucket(bucket, lookup)

    async def update(
        self,
        bucket: BucketRef,
        key: str,
        change: Callable[[ObjectEntry], ObjectEntry],
        version_id: str | None = None,
    ) -> ObjectEntry:
        """Replace key's entry with ``change(entry)`` (same payload: tags, metadata).

        Atomic against concurrent writers: the write is guarded on the entry
        being exactly the one ``change`` saw; otherwise it re-reads and retries.
        With ``version_id``, that version must be the current one (noncurrent
        versions are not changed in place here).
        """
        validate_key(key)
        for _ in range(UPDATE_RETRIES):
            current = await self.head(bucket, key)
            if version_id is not None and not is_version(current, version_id):
                return await self._with_bucket(
                    bucket,
                    lambda rec: self.versioning.update_version(rec, key, version_id, change),
                )
            new = change(current)
            try:
                await self._swap(bucket, key, current, new)
            except EntryChanged:
                continue
            return new
        raise ConcurrentUpdate(Key=key)

    async def update_version(
        self,
        bucket: BucketRef,
        key: str,
        version_id: str,
        change: Callable[[ObjectEntry], ObjectEntry],
    ) -> ObjectEntry:
        """Replace version ``version_id`` of ``key`` with ``change(it)`` where it is,
        current or not (guarded like ``update``)."""
        validate_key(key)
        return await self._with_bucket(
            bucket, lambda rec: self.versioning.update_version(rec, key, version_id, change)
        )

    async def _swap(
        self, bucket: BucketRef, key: str, current: ObjectEntry, new: ObjectEntry
    ) -> None:
        same = SameEntry(current, key)

        async def write(rec: BucketRecord) -> ObjectEntry | None:
            logged = await self.versioning.logs(rec, key)

            def log(old: ObjectEntry | None) -> dict[str, bytes]:
                return metadata_change(key, old, new, self.clock.time()) if logged else {}

            return await self.index.put_if(rec.bucket_id, key, new, same.check, sets=log)

        await self._with_bucket(bucket, write)

    async def open(
        self,
        bucket: BucketRef,
        key: str,
        byte_range: tuple[int | None, int | None] | None,
        version_id: str | None = None,
    ) -> ObjectReader:
        """An ObjectReader for the whole object or a single range (HTTP semantics).

        ``byte_range`` is (first, last) inclusive as in a Range header; (None, n)
        means the last n bytes, (n, None) from n to the end.
        """
        return self.read(await self.head(bucket, key, version_id), byte_range)

    def read(
        self, entry: ObjectEntry, byte_range: tuple[int | None, int | None] | None = None
    ) -> ObjectReader:
        """An ObjectReader for an entry already looked up (see ``open``)."""
        start, end = 0, entry.size
        if byte_range is not None:
            start, end = resolve_range(byte_range, entry.size)
        return self.reader(entry, start, end)

    def reader(self, entry: ObjectEntry, start: int, end: int) -> ObjectReader:
        """A reader of bytes [start, end) of ``entry`` (refusing an unrestored archive)."""
        segments = readable_segments(self.tiers, entry, self.clock.time())
        return ObjectReader(entry, start, end, self.payloads, segments)

    async def delete(
        self,
        bucket: BucketRef,
        key: str,
        condition: WriteCondition | DeleteCondition | None = None,
        version_id: str | None = None,
        bypass_governance: bool = False,
        expect: ObjectEntry | None = None,
    ) -> ObjectEntry | None:
        """Remove key; deleting a missing key succeeds (S3 semantics) unless a condition says no.
        ``expect`` (with ``version_id``): only if that version is still that entry.

        Unversioned: the entry removed. Versioned: without ``version_id`` the
        delete marker that became current, with it the version removed (None
        if the key had no such version).
        """
        validate_key(key)

        def check(current: ObjectEntry | None) -> None:
            if condition is not None:
                condition.check(visible_or_none(current), key)

        async def remove(rec: BucketRecord) -> Commit:
            if version_id is not None:
                return await self.versioning.delete_version(
                    rec, key, version_id, bypass_governance, expect
                )
            state = await self.versioning.state(rec)
            if state is not None:
                return await self.versioning.delete(rec, key, state, check)
            old = await self.index.put_if(rec.bucket_id, key, None, check, OVERWRITE_RETRIES)
            return Commit(old, old, list(old.stored_segments) if old is not None else [])

        done = await self._with_bucket(bucket, remove)
        await self.payloads.release(done.garbage)
        return done.entry

    async def delete_many(
        self,
        bucket: BucketRef,
        targets: list[tuple[str, str | None]],
        conditions: Mapping[str, DeleteCondition] | None = None,
        bypass_governance: bool = False,
    ) -> list[tuple[tuple[str, str | None], ObjectEntry | Exception | None]]:
        """Delete each (key, version id or None) with bounded concurrency, a key under its
        condition if it has one; per target what ``delete`` returned, or the error it met."""
        await self.buckets.get(bucket)  # a missing bucket fails the whole request
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def one(
            target: tuple[str, str | None],
        ) -> tuple[tuple[str, str | None], ObjectEntry | Exception | None]:
            key, version_id = target
            async with limit:
                try:
                    done = await self.delete(
                        bucket, key, (conditions or {}).get(key), version_id, bypass_governance
                    )
                except NoSuchBucket:
                    raise
                except Exception as exc:  # reported per key, as S3 does
                    return target, exc
                return target, done

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def list_versions(
        self,
        bucket: BucketRef,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionsPage:
        async def page(rec: BucketRecord) -> VersionsPage:
            return await self.versioning.list_versions(
                rec, prefix, delimiter, key_marker, version_marker, max_keys
            )

        return await self._with_bucket(bucket, page)

    async def list(
        self,
        bucket: BucketRef,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        async def page(rec: BucketRecord) -> ListPage:
            return await self.index.list(rec.bucket_id, prefix, delimiter, start_after, max_keys)

        return await self._with_bucket(bucket, page)


def visible_or_none(entry: ObjectEntry | None) -> ObjectEntry | None:
    """What conditions see: a delete marker is no object."""
    return None if entry is None or entry.delete_marker else entry
