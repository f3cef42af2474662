"""Restore a backup run: make a bucket hold exactly what the run's catalogue lists.

The destination is the run's source bucket (re-created for its owner if it
is gone) or any other bucket. Keys whose current content already matches
the catalogue are left alone, so a restore cut short is resumed by running
it again; keys the catalogue does not list are deleted. From a bucket of
this deployment each copy is cloned back (no bytes move); from an S3
endpoint it is streamed in and its ETag checked on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from backup.catalog import SUCCEEDED, CatalogEntry, EtagCheck, RunRecord, content_headers
from backup.history import BackupHistory
from backup.runner import CopyNotVerified
from backup.targets import BucketTarget, StoredCopy, Target
from engine import (
    AuthorizedBucket,
    BucketAlreadyOwnedByYou,
    DeleteCondition,
    Engine,
    NoSuchBucket,
    NoSuchKey,
    ObjectEntry,
    Operation,
    PreconditionFailed,
    Principal,
    PutRequest,
    WriteCondition,
    bare_etag,
)

_PAGE = 1000


@dataclass(slots=True)
class RestoreSummary:
    run_id: str
    bucket: str
    restored: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0  # written by a client while the restore ran
    bytes: int = 0
    seconds: float = 0.0

    @property
    def objects_per_second(self) -> float:
        done = self.restored + self.unchanged + self.deleted
        return done / self.seconds if self.seconds > 0 else 0.0


def matches(entry: ObjectEntry, item: CatalogEntry) -> bool:
    """Whether a current entry already holds what the catalogue lists for its key."""
    return (entry.size, entry.etag, entry.content_type, entry.user_meta, entry.tags,
            content_headers(entry)) == (
        item.size, item.etag, item.content_type, item.user_meta, item.tags, item.headers
    )


def _unchanged(seen: ObjectEntry | None) -> WriteCondition:
    """The guard of a restore's write: the key still holds what the listing showed."""
    if seen is None:
        return WriteCondition(if_none_match_any=True)
    return WriteCondition(if_match=(bare_etag(seen.etag),))


class BackupRestorer:
    def __init__(self, engine: Engine, principal: Principal, concurrency: int = 16) -> None:
        self.engine = engine
        self.principal = principal
        self.history = BackupHistory(engine, principal)
        self.concurrency = concurrency

    async def restore(
        self,
        run_id: str,
        target: Target,
        to: str | None = None,
        progress: Callable[[RestoreSummary], None] | None = None,
    ) -> RestoreSummary:
        run = await self.history.run(run_id)
        if run.status != SUCCEEDED:
            raise ValueError(f"backup run {run_id} {run.status}: only a successful run restores")
        catalog = await self.history.catalog(run_id)
        started = time.monotonic()
        if isinstance(target, BucketTarget) and target.bucket == (to or run.bucket):
            raise ValueError(f"bucket {target.bucket} holds the backup: restore elsewhere")
        destination = await self._destination(run, to or run.bucket)
        summary = RestoreSummary(run_id, destination.name)
        slots = asyncio.Semaphore(self.concurrency)

        async def one(item: CatalogEntry | None, current: ObjectEntry | None, key: str) -> None:
            async with slots:
                try:
                    if item is None:
                        assert current is not None
                        etag = (bare_etag(current.etag),)
                        await destination.delete(key, DeleteCondition(if_match=etag))
                        summary.deleted += 1
                    elif current is not None and matches(current, item):
                        summary.unchanged += 1
                    else:
                        await self._put_back(target, item, destination, _unchanged(current))
                        summary.restored += 1
                        summary.bytes += item.size
                except (PreconditionFailed, NoSuchKey):
                    summary.skipped += 1  # a client wrote the key meanwhile: its write stays

        batch: list = []
        async for key, item, current in _merge(catalog, destination.entries()):
            batch.append(one(item, current, key))
            if len(batch) >= _PAGE:
                await asyncio.gather(*batch)
                batch = []
                if progress is not None:
                    progress(summary)
        await asyncio.gather(*batch)
        summary.seconds = time.monotonic() - started
        return summary

    async def _destination(self, run: RunRecord, name: str) -> AuthorizedBucket:
        try:
            return await self.engine.bucket(self.principal, name, Operation.PUT_OBJECT)
        except NoSuchBucket:
            pass
        with contextlib.suppress(BucketAlreadyOwnedByYou):
            await self.engine.create_bucket(self.principal, name, run.region, owner=run.owner)
        return await self.engine.bucket(self.principal, name, Operation.PUT_OBJECT)

    async def _put_back(
        self, target: Target, item: CatalogEntry, destination: AuthorizedBucket,
        condition: WriteCondition,
    ) -> None:
        copy = StoredCopy(item.target_key, item.target_version)
        if isinstance(target, BucketTarget):
            await target.clone_back(copy, destination, item.key, condition)
            return
        body = _checked(target.read(copy), EtagCheck(item.etag, item.part_sizes), item)
        request = PutRequest(body=body, size=item.size, content_type=item.content_type,
                             user_meta=dict(item.user_meta), headers=dict(item.headers),
                             tags=dict(item.tags), condition=condition)
        await destination.put(item.key, request)


async def _checked(
    pieces: AsyncIterator[bytes], check: EtagCheck, item: CatalogEntry
) -> AsyncIterator[bytes]:
    async for piece in pieces:
        check.update(piece)
        yield piece
    if check.size != item.size or not check.matches():
        raise CopyNotVerified(f"the backup copy of {item.key} does not match its catalogue")


async def _merge(
    catalog: list[CatalogEntry], current: AsyncIterator[tuple[str, ObjectEntry]]
) -> AsyncIterator[tuple[str, CatalogEntry | None, ObjectEntry | None]]:
    """(key, catalogue item or None, current entry or None) over both, in key order."""
    items = iter(catalog)
    item = next(items, None)
    now = await anext(current, None)
    while item is not None or now is not None:
        if now is None or (item is not None and item.key < now[0]):
            assert item is not None
            yield item.key, item, None
            item = next(items, None)
        elif item is None or now[0] < item.key:
            yield now[0], None, now[1]
            now = await anext(current, None)
        else:
            yield item.key, item, now[1]
            item, now = next(items, None), await anext(current, None)
