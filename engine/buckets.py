"""Buckets: create, look up, list and delete, plus per-bucket configuration documents.

CreateBucket commits by exclusively creating ``bucket.<name>`` (exactly one of
any number of racing creators wins, in any gateway process). The index shard
is created first and the registry entry (used only for ListBuckets) last, so
a crash leaves at worst an unreferenced shard or an unlisted bucket that the
next create of the same name repairs.

Lookups are cached per process. That is safe because every index read or
write checks the shard header against the cached bucket id (see index.py);
a mismatch drops the cache entry and the caller retries once.

Configuration documents (tagging, CORS, versioning state) live in the omap of
the record object ``bucket.<name>``, one key each, beside a copy of the bucket
id written when the bucket is created. They are never cached: every read goes
to the backend, so a change is visible to all gateways at once. A write
replaces one key in one atomic operation guarded on the bucket id, so it can
never land in a bucket that was deleted and re-created behind this gateway's
back, and deleting the bucket's record removes its configuration with it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping

from engine import layout
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    NoSuchBucket,
)
from engine.index import ACTIVE, DELETING, BucketIndex, StaleBucket
from engine.names import validate_bucket_name
from engine.records import BucketDedupe, BucketRecord
from storage import GuardFailed, ObjectExists, ObjectNotFound, Pool, WriteOp

# Omap keys of ``bucket.<name>``: the bucket id (the guard of every config
# write) and one configuration document per item name.
CONFIG_ID_KEY = "id"
CONFIG_PREFIX = "cfg."
DEDUPE_CONFIG = "dedupe"  # JSON {"enabled": bool, "compression_level": int | null}
_REGISTRY_PAGE = 1000


# A bucket as engine services take it: a name (looked up, and retried once when a
# cached record proves stale), or the record an access decision was made for, which
# pins the call to exactly that bucket (its id): one deleted and re-created
# meanwhile, by anyone, answers NoSuchBucket instead of receiving a call decided
# for another.
BucketRef = str | BucketRecord


def bucket_name(ref: BucketRef) -> str:
    return ref.name if isinstance(ref, BucketRecord) else ref


def is_pinned(ref: BucketRef) -> bool:
    return isinstance(ref, BucketRecord)


class BucketService:
    def __init__(self, meta: Pool, index: BucketIndex, clock: Clock = SYSTEM_CLOCK) -> None:
        self.meta = meta
        self.index = index
        self.clock = clock
        self._cache: dict[str, BucketRecord] = {}
        # Run with the bucket id once a delete is certain (the bucket is empty and its
        # shard is "deleting"), before its records go: e.g. discard multipart uploads.
        self.before_destroy: list[Callable[[str], Awaitable[None]]] = []

    async def create(
        self,
        name: str,
        owner: str,
        region: str = "us-east-1",
        configs: Mapping[str, bytes] | None = None,
    ) -> BucketRecord:
        """Create the bucket, with its initial configuration ``configs`` (item -> document)."""
        validate_bucket_name(name)
        record = BucketRecord(name, uuid.uuid4().hex, owner, self.clock.time(), region)
        await self.index.create(record.bucket_id)
        try:
            op = (
                WriteOp()
                .create(exclusive=True)
                .write_full(record.encode())
                .omap_set(
                    {CONFIG_ID_KEY: record.bucket_id.encode()}
                    | {CONFIG_PREFIX + item: doc for item, doc in (configs or {}).items()}
                )
            )
            await self.meta.operate(layout.bucket_object(name), op)
        except ObjectExists:
            await self.index.destroy(record.bucket_id)
            existing = await self.get(name, use_cache=False)
            if existing.owner != owner:
                raise BucketAlreadyExists(BucketName=name) from None
            await self._register(existing)  # repairs a create that crashed before this step
            raise BucketAlreadyOwnedByYou(BucketName=name) from None
        await self._register(record)
        self._cache[name] = record
        return record

    async def get(self, ref: BucketRef, use_cache: bool = True) -> BucketRecord:
        if isinstance(ref, BucketRecord):
            if use_cache:
                return ref
            ref = ref.name
        name = ref
        if use_cache and (cached := self._cache.get(name)) is not None:
            return cached
        try:
            raw = await self.meta.read(layout.bucket_object(name))
        except ObjectNotFound:
            self._cache.pop(name, None)
            raise NoSuchBucket(BucketName=name) from None
        record = BucketRecord.decode(raw)
        self._cache[name] = record
        return record

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    async def refresh(self, ref: BucketRef, stale: BucketRecord) -> BucketRecord:
        """The current record after ``stale`` failed an index guard (deleted, maybe re-created).

        The request was authorised against ``stale``'s owner. A bucket of the same
        name with another owner is someone else's bucket: the request must not
        reach it, so the bucket it was meant for is reported gone.
        """
        name = bucket_name(ref)
        self.forget(name)
        if is_pinned(ref):
            raise NoSuchBucket(BucketName=name)  # the bucket access was decided for is gone
        fresh = await self.get(name, use_cache=False)
        if fresh.owner != stale.owner:
            self.forget(name)  # the next request authorises against the new owner
            raise NoSuchBucket(BucketName=name)
        return fresh

    async def list(self, owner: str | None = None) -> list[BucketRecord]:
        """Buckets in name order (all of them when owner is None)."""
        out: list[BucketRecord] = []
        after = ""
        while True:
            page, more = await self.list_page(owner, start_after=after, limit=_REGISTRY_PAGE)
            out += page
            if not more:
                return out
            after = page[-1].name

    async def list_page(
        self,
        owner: str | None = None,
        *,
        prefix: str = "",
        start_after: str = "",
        region: str | None = None,
        limit: int = _REGISTRY_PAGE,
    ) -> tuple[list[BucketRecord], bool]:
        """Up to ``limit`` buckets named > start_after, in name order, and whether more follow."""
        out: list[BucketRecord] = []
        after = start_after
        while True:
            try:
                page = await self.meta.omap_list(
                    layout.BUCKET_REGISTRY, start_after=after, prefix=prefix,
                    max_items=_REGISTRY_PAGE,
                )
            except ObjectNotFound:
                return out, False
            for _, raw in page:
                rec = BucketRecord.decode(raw)
                if (owner is None or rec.owner == owner) and region in (None, rec.region):
                    if len(out) == limit:
                        return out, True
                    out.append(rec)
            if len(page) < _REGISTRY_PAGE:
                return out, False
            after = page[-1][0]

    async def delete(self, name: str, expected: BucketRecord | None = None) -> None:
        """Delete an empty bucket; concurrent writers fail their index guard, never leak.

        With ``expected`` (the record the caller was authorised against) only that
        bucket is deleted, never one re-created under the same name meanwhile.
        """
        record = await self.get(name, use_cache=False)
        if expected is not None and record.bucket_id != expected.bucket_id:
            raise NoSuchBucket(BucketName=name)
        try:
            await self.index.set_state(record.bucket_id, ACTIVE, DELETING)
        except StaleBucket:
            raise NoSuchBucket(BucketName=name) from None
        if not await self.index.is_empty(record.bucket_id):
            await self.index.set_state(record.bucket_id, DELETING, ACTIVE)
            raise BucketNotEmpty(BucketName=name)
        for hook in self.before_destroy:
            await hook(record.bucket_id)
        with contextlib.suppress(ObjectNotFound):
            # Removes the bucket's configuration documents (its omap) with it.
            await self.meta.operate(layout.bucket_object(name), WriteOp().remove())
        self.forget(name)
        await self.meta.omap_rm(layout.BUCKET_REGISTRY, [name])
        await self.index.destroy(record.bucket_id)

    async def read_config(self, ref: BucketRef, item: str) -> tuple[BucketRecord, bytes | None]:
        """The bucket's record and its ``item`` document (None when unset), read afresh.

        The record comes from the cache only if its id matches the id stored
        beside the documents; otherwise it is re-read once (unless ``ref`` is pinned).
        """
        name = bucket_name(ref)
        for use_cache in (True, False):
            record = await self.get(ref, use_cache=use_cache)
            try:
                got = await self.meta.omap_get(
                    layout.bucket_object(name), [CONFIG_ID_KEY, CONFIG_PREFIX + item]
                )
            except ObjectNotFound:
                self.forget(name)
                raise NoSuchBucket(BucketName=name) from None
            stored_id = got.get(CONFIG_ID_KEY)
            # No stored id: a bucket made before configs existed; the fresh record stands.
            if stored_id == record.bucket_id.encode() or (stored_id is None and not use_cache):
                return record, got.get(CONFIG_PREFIX + item)
            self.forget(name)
            if is_pinned(ref):
                raise NoSuchBucket(BucketName=name)
        raise NoSuchBucket(BucketName=name)

    async def write_config(
        self,
        ref: BucketRef,
        item: str,
        value: bytes | None,
        authorize: Callable[[BucketRecord], None] = lambda record: None,
    ) -> BucketRecord:
        """Set (or, with None, remove) the ``item`` document; ``authorize`` may refuse.

        ``authorize`` sees the record the write is guarded on, so a caller
        checking ownership checks the bucket it actually writes to.
        """
        name = bucket_name(ref)
        for use_cache in (True, False):
            record = await self.get(ref, use_cache=use_cache)
            authorize(record)
            try:
                op = await self._config_guard(name, record, fresh=not use_cache)
                if value is None:
                    op.omap_rm([CONFIG_PREFIX + item])
                else:
                    op.omap_set({CONFIG_PREFIX + item: value})
                await self.meta.operate(layout.bucket_object(name), op)
                return record
            except ObjectNotFound:
                self.forget(name)
                raise NoSuchBucket(BucketName=name) from None
            except GuardFailed:
                self.forget(name)  # deleted and re-created elsewhere: retry on the new record
                if is_pinned(ref):
                    break  # ... unless access was decided for the old one
        raise NoSuchBucket(BucketName=name)

    async def swap_config(self, record: BucketRecord, item: str, old: bytes | None,
                          new: bytes) -> bool:
        """Set ``item`` to ``new`` if it still holds ``old`` (compare and swap on the
        pinned bucket); False if it changed meanwhile. An unset ``old`` is not guarded
        (a missing key never satisfies a guard): two first writers race."""
        op = WriteOp().omap_cmp(CONFIG_ID_KEY, record.bucket_id.encode())
        if old is not None:
            op.omap_cmp(CONFIG_PREFIX + item, old)
        op.omap_set({CONFIG_PREFIX + item: new})
        try:
            await self.meta.operate(layout.bucket_object(record.name), op)
        except ObjectNotFound:
            raise NoSuchBucket(BucketName=record.name) from None
        except GuardFailed:
            return False
        return True

    async def dedupe_policy(
        self, ref: BucketRef, default: BucketDedupe | None = None
    ) -> BucketDedupe:
        """The bucket's dedupe setting (``cfg.dedupe``), read afresh; ``default`` when unset."""
        _, raw = await self.read_config(ref, DEDUPE_CONFIG)
        if raw is None:
            return default or BucketDedupe()
        return decode_dedupe_policy(raw)

    async def set_dedupe_policy(self, ref: BucketRef, policy: BucketDedupe) -> None:
        await self.write_config(ref, DEDUPE_CONFIG, encode_dedupe_policy(policy))

    async def _config_guard(self, name: str, record: BucketRecord, fresh: bool) -> WriteOp:
        if fresh:
            got = await self.meta.omap_get(layout.bucket_object(name), [CONFIG_ID_KEY])
            if CONFIG_ID_KEY not in got:
                # A bucket made before configs existed has no id to guard on; the
                # record was just read, so only a delete in this instant can slip by.
                return WriteOp().assert_exists()
        return WriteOp().omap_cmp(CONFIG_ID_KEY, record.bucket_id.encode())

    async def _register(self, record: BucketRecord) -> None:
        await self.meta.omap_set(layout.BUCKET_REGISTRY, {record.name: record.encode()})


def encode_dedupe_policy(policy: BucketDedupe) -> bytes:
    doc = {"enabled": policy.enabled, "compression_level": policy.compression_level}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_dedupe_policy(raw: bytes) -> BucketDedupe:
    doc = json.loads(raw)
    return BucketDedupe(bool(doc.get("enabled", True)), doc.get("compression_level"))
