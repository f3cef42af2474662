"""Objects: streaming put, ranged get, head and delete over the bucket index and payload stripes.

Write order (crash safety): payload stripes first, then the index entry that
points at them (one atomic, guarded omap write: the commit point), then the
removal of the payload the entry replaced. A crash before the commit leaves
only unreferenced stripes; after it, the new object is complete. Each upload
writes under a fresh data prefix, so a PUT never modifies bytes that a
committed entry points at.

Conditional writes (``WriteCondition``) and read-modify-writes of an entry
(``update``, used for tags) go through ``BucketIndex.put_if``: the check of
the current entry and the write are one guarded operation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from engine.buckets import BucketRef, BucketService, bucket_name
from engine.chunked import ChunkedWriter
from engine.clock import SYSTEM_CLOCK, Clock
from engine.conditions import DeleteCondition, EntryChanged, SameEntry, WriteCondition
from engine.errors import ConcurrentUpdate, InvalidRange, NoSuchBucket, NoSuchKey
from engine.index import BucketIndex, ListPage, StaleBucket
from engine.names import validate_key
from engine.payload import ChunkedFactory, PayloadStore, PayloadWriter
from engine.records import BucketDedupe, BucketRecord, ObjectEntry

T = TypeVar("T")

UPDATE_RETRIES = 8
DELETE_CONCURRENCY = 16


@dataclass(slots=True)
class PutRequest:
    body: AsyncIterator[bytes]
    size: int | None  # Content-Length when known (None for chunked bodies)
    content_type: str | None = None
    user_meta: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    content_md5: bytes | None = None
    tags: dict[str, str] | None = None
    # Called once the body is consumed: checksums computed over it ({"CRC32": base64}).
    checksums: Callable[[], dict[str, str]] | None = None
    condition: WriteCondition | None = None  # checked atomically with the commit


@dataclass(slots=True)
class ObjectReader:
    """An entry plus the byte range to stream; ``body()`` yields the bytes."""

    entry: ObjectEntry
    start: int
    end: int  # exclusive
    _payloads: PayloadStore

    @property
    def length(self) -> int:
        return self.end - self.start

    async def body(self) -> AsyncIterator[bytes]:
        if self.length <= 0:
            return
        if self.entry.is_inline:
            yield self.entry.inline[self.start : self.end]
            return
        async for chunk in self._payloads.read(self.entry.segments, self.start, self.end):
            yield chunk

    async def start_body(self) -> AsyncIterator[bytes]:
        """The body with its first piece already read: a payload that fails its check
        (a corrupt chunk) raises here, before the response headers are sent."""
        pieces = self.body()
        first = await anext(pieces, None)
        return _prepend(first, pieces)


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
    ) -> None:
        self.clock = clock
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
        record = await self.buckets.get(bucket)
        if req.condition is not None:
            # Fail fast, before reading the body; the commit checks again, atomically.
            req.condition.check(await self._current(bucket, key), key)
        prefix = f"{record.bucket_id}.{uuid.uuid4().hex}"
        writer = PayloadWriter(
            self.data,
            prefix,
            inline_limit=self.inline_limit,
            stripe_size=self.stripe_size,
            chunked=self.chunked_factory(bucket, prefix),
        )
        await writer.consume(req.body, req.size, req.content_md5)
        entry = ObjectEntry(
            size=writer.size,
            etag=writer.etag,
            mtime=self.clock.time(),
            content_type=req.content_type or "binary/octet-stream",
            user_meta=req.user_meta or {},
            headers=req.headers or {},
            segments=[writer.segment] if writer.segment is not None else [],
            checksums=req.checksums() if req.checksums is not None else {},
            tags=dict(req.tags or {}),
            inline=writer.inline or b"",
        )
        condition = req.condition

        async def commit(rec: BucketRecord) -> ObjectEntry | None:
            if condition is not None:
                return await self.index.put_if(
                    rec.bucket_id, key, entry, lambda current: condition.check(current, key)
                )
            old = await self.index.get(rec.bucket_id, key)
            await self.index.put(rec.bucket_id, key, entry)
            return old

        try:
            old = await self._with_bucket(bucket, commit)
        except BaseException:
            await writer.discard()
            raise
        if old is not None:
            await self.payloads.release(old.segments)
        return entry

    def chunked_factory(self, bucket: BucketRef, data_prefix: str) -> ChunkedFactory | None:
        """How a body past the inline limit gets a dedupe writer (None: stripes).

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
            return ChunkedWriter(chunked, data_prefix, chunked.config_for(policy))

        return make

    async def head(self, bucket: BucketRef, key: str) -> ObjectEntry:
        validate_key(key)
        entry = await self._current(bucket, key)
        if entry is None:
            raise NoSuchKey(Key=key)
        return entry

    async def _current(self, bucket: BucketRef, key: str) -> ObjectEntry | None:
        async def lookup(rec: BucketRecord) -> ObjectEntry | None:
            return await self.index.get(rec.bucket_id, key)

        return await self._with_bucket(bucket, lookup)

    async def update(
        self, bucket: BucketRef, key: str, change: Callable[[ObjectEntry], ObjectEntry]
    ) -> ObjectEntry:
        """Replace key's entry with ``change(entry)`` (same payload: tags, metadata).

        Atomic against concurrent writers: the write is guarded on the entry
        being exactly the one ``change`` saw; otherwise it re-reads and retries.
        """
        validate_key(key)
        for _ in range(UPDATE_RETRIES):
            current = await self.head(bucket, key)
            new = change(current)
            try:
                await self._swap(bucket, key, current, new)
            except EntryChanged:
                continue
            return new
        raise ConcurrentUpdate(Key=key)

    async def _swap(
        self, bucket: BucketRef, key: str, current: ObjectEntry, new: ObjectEntry
    ) -> None:
        same = SameEntry(current, key)

        async def write(rec: BucketRecord) -> ObjectEntry | None:
            return await self.index.put_if(rec.bucket_id, key, new, same.check)

        await self._with_bucket(bucket, write)

    async def open(
        self, bucket: BucketRef, key: str, byte_range: tuple[int | None, int | None] | None
    ) -> ObjectReader:
        """An ObjectReader for the whole object or a single range (HTTP semantics).

        ``byte_range`` is (first, last) inclusive as in a Range header; (None, n)
        means the last n bytes, (n, None) from n to the end.
        """
        return self.read(await self.head(bucket, key), byte_range)

    def read(
        self, entry: ObjectEntry, byte_range: tuple[int | None, int | None] | None = None
    ) -> ObjectReader:
        """An ObjectReader for an entry already looked up (see ``open``)."""
        start, end = 0, entry.size
        if byte_range is not None:
            start, end = resolve_range(byte_range, entry.size)
        return ObjectReader(entry, start, end, self.payloads)

    async def delete(
        self,
        bucket: BucketRef,
        key: str,
        condition: WriteCondition | DeleteCondition | None = None,
    ) -> ObjectEntry | None:
        """Remove key; deleting a missing key succeeds (S3 semantics) unless a condition says no."""
        validate_key(key)

        async def remove(rec: BucketRecord) -> ObjectEntry | None:
            if condition is not None:
                return await self.index.put_if(
                    rec.bucket_id, key, None, lambda current: condition.check(current, key)
                )
            old = await self.index.get(rec.bucket_id, key)
            if old is not None:
                await self.index.remove(rec.bucket_id, key)
            return old

        old = await self._with_bucket(bucket, remove)
        if old is not None:
            await self.payloads.release(old.segments)
        return old

    async def delete_many(
        self,
        bucket: BucketRef,
        keys: list[str],
        conditions: Mapping[str, DeleteCondition] | None = None,
    ) -> list[tuple[str, Exception | None]]:
        """Delete each key (bounded concurrency, each under its condition if it has one);
        per key, the error it met or None."""
        await self.buckets.get(bucket)  # a missing bucket fails the whole request
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def one(key: str) -> tuple[str, Exception | None]:
            async with limit:
                try:
                    await self.delete(bucket, key, (conditions or {}).get(key))
                except NoSuchBucket:
                    raise
                except Exception as exc:  # reported per key, as S3 does
                    return key, exc
                return key, None

        return list(await asyncio.gather(*(one(k) for k in keys)))

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


async def _prepend(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is None:
        return
    yield first
    async for piece in rest:
        yield piece


def resolve_range(byte_range: tuple[int | None, int | None], size: int) -> tuple[int, int]:
    """[start, end) for an inclusive HTTP range; InvalidRange when unsatisfiable."""
    first, last = byte_range
    if first is None:
        if last is None or last == 0:
            raise InvalidRange(ActualObjectSize=str(size))
        return max(size - last, 0), size
    if first >= size:
        raise InvalidRange(ActualObjectSize=str(size))
    end = size if last is None else min(last + 1, size)
    return first, end
