"""Buckets: create, look up, list and delete, with a lookup cache that is safe across gateways.

CreateBucket commits by exclusively creating ``bucket.<name>`` (exactly one of
any number of racing creators wins, in any gateway process). The index shard
is created first and the registry entry (used only for ListBuckets) last, so
a crash leaves at worst an unreferenced shard or an unlisted bucket that the
next create of the same name repairs.

Lookups are cached per process. That is safe because every index read or
write checks the shard header against the cached bucket id (see index.py);
a mismatch drops the cache entry and the caller retries once.
"""

from __future__ import annotations

import contextlib
import time
import uuid

from gateway.engine import layout
from gateway.engine.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    NoSuchBucket,
)
from gateway.engine.index import ACTIVE, DELETING, BucketIndex, StaleBucket
from gateway.engine.names import validate_bucket_name
from gateway.engine.records import BucketRecord
from storage import ObjectExists, ObjectNotFound, Pool, WriteOp


class BucketService:
    def __init__(self, meta: Pool, index: BucketIndex) -> None:
        self.meta = meta
        self.index = index
        self._cache: dict[str, BucketRecord] = {}

    async def create(self, name: str, owner: str, region: str = "us-east-1") -> BucketRecord:
        validate_bucket_name(name)
        record = BucketRecord(name, uuid.uuid4().hex, owner, time.time(), region)
        await self.index.create(record.bucket_id)
        try:
            op = WriteOp().create(exclusive=True).write_full(record.encode())
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

    async def get(self, name: str, use_cache: bool = True) -> BucketRecord:
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

    async def list(self, owner: str | None = None) -> list[BucketRecord]:
        """Buckets in name order (all of them when owner is None)."""
        out: list[BucketRecord] = []
        after = ""
        while True:
            try:
                page = await self.meta.omap_list(layout.BUCKET_REGISTRY, start_after=after)
            except ObjectNotFound:
                return out
            if not page:
                return out
            for _, raw in page:
                rec = BucketRecord.decode(raw)
                if owner is None or rec.owner == owner:
                    out.append(rec)
            after = page[-1][0]

    async def delete(self, name: str) -> None:
        """Delete an empty bucket; concurrent writers fail their index guard, never leak."""
        record = await self.get(name, use_cache=False)
        try:
            await self.index.set_state(record.bucket_id, ACTIVE, DELETING)
        except StaleBucket:
            raise NoSuchBucket(BucketName=name) from None
        if not await self.index.is_empty(record.bucket_id):
            await self.index.set_state(record.bucket_id, DELETING, ACTIVE)
            raise BucketNotEmpty(BucketName=name)
        with contextlib.suppress(ObjectNotFound):
            await self.meta.operate(layout.bucket_object(name), WriteOp().remove())
        self.forget(name)
        await self.meta.omap_rm(layout.BUCKET_REGISTRY, [name])
        await self.index.destroy(record.bucket_id)

    async def _register(self, record: BucketRecord) -> None:
        await self.meta.omap_set(layout.BUCKET_REGISTRY, {record.name: record.encode()})
